#!/usr/bin/env node
// `rmq`: one executable, one subcommand per role (see DESIGN.md §2).

import { Command, CommanderError } from "commander";
import { isRmqError } from "../common/errors.ts";
import { adminSubcommandNames, normalizeAdminArgv, registerAdminCommand } from "./admin-command.ts";
import { registerBenchCommand } from "./bench-command.ts";
import { registerBrokerCommand } from "./broker-command.ts";
import { registerControllerCommand } from "./controller-command.ts";
import { registerLocalCommand } from "./local-command.ts";
import { registerNamesrvCommand } from "./namesrv-command.ts";
import { registerProxyCommand } from "./proxy-command.ts";

// `rmq admin topicList | head`: a closed pipe ends the command quietly, as it would for any Unix tool.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});

const program = new Command("rmq")
  .description("A RocketMQ-5-compatible messaging system")
  .showHelpAfterError()
  .exitOverride();

registerNamesrvCommand(program);
registerBrokerCommand(program);
registerProxyCommand(program);
registerLocalCommand(program);
registerControllerCommand(program);
registerAdminCommand(program);
registerBenchCommand(program);

try {
  await program.parseAsync(normalizeAdminArgv(process.argv, adminSubcommandNames(program)));
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  if (isRmqError(e)) {
    console.error(`rmq: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
