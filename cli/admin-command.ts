// `rmq admin <subcommand> [-n host:9876] ...`: the mqadmin equivalent. Subcommand names and flags
// are mqadmin's, and names match case-insensitively (`rmq admin updatetopic` works) once rmq.ts has
// passed argv through normalizeAdminArgv. Success exits 0; a failure prints one line on stderr and
// exits non-zero (rmq.ts turns the RmqError into `rmq: <message>`).

import type { Command } from "commander";
import { registerClusterCommands } from "./admin/cluster-commands.ts";
import { registerConnectionCommands } from "./admin/connection-commands.ts";
import { registerGroupCommands } from "./admin/group-commands.ts";
import { registerMessageCommands } from "./admin/message-commands.ts";
import { registerTopicCommands } from "./admin/topic-commands.ts";
import { registerControllerAdminCommands } from "./admin-controller.ts";

export const ADMIN_COMMAND_NAME = "admin";

export function registerAdminCommand(program: Command): Command {
  const admin = program
    .command(ADMIN_COMMAND_NAME)
    .description("mqadmin equivalent: rmq admin <subcommand> -n host:9876 ... (names are case-insensitive)")
    // A wrong flag is one line (commander's error), not the error followed by the whole help.
    .showHelpAfterError(false);
  registerTopicCommands(admin);
  registerGroupCommands(admin);
  registerConnectionCommands(admin);
  registerClusterCommands(admin);
  registerMessageCommands(admin);
  registerControllerAdminCommands(admin);
  return admin;
}

/** The names (and aliases) of the subcommands registered under `rmq admin`. */
export function adminSubcommandNames(program: Command): string[] {
  const admin = program.commands.find((c) => c.name() === ADMIN_COMMAND_NAME);
  return admin === undefined ? [] : admin.commands.flatMap((c) => [c.name(), ...c.aliases()]);
}

/**
 * Rewrites `rmq admin <name>` so that <name> matches a known subcommand regardless of case, as
 * mqadmin's findSubCommand (equalsIgnoreCase) does. `argv` is process.argv (node, script, args...);
 * a new array is returned, everything else unchanged.
 */
export function normalizeAdminArgv(argv: readonly string[], knownNames: Iterable<string>): string[] {
  const out = [...argv];
  const byLower = new Map<string, string>();
  for (const n of knownNames) byLower.set(n.toLowerCase(), n);
  // The role subcommand is the first argument after node and the script that is not an option.
  const role = out.findIndex((a, i) => i >= 2 && !a.startsWith("-"));
  if (role < 0 || out[role] !== ADMIN_COMMAND_NAME) return out;
  const sub = role + 1;
  const name = out[sub];
  if (name === undefined || name.startsWith("-")) return out;
  const canonical = byLower.get(name.toLowerCase());
  if (canonical !== undefined) out[sub] = canonical;
  return out;
}
