#!/usr/bin/env node
// `rmq`: one executable, one subcommand per role (see DESIGN.md §2).

import { Command, CommanderError } from "commander";
import { isRmqError } from "../common/errors.ts";
import { registerNamesrvCommand } from "./namesrv-command.ts";

const program = new Command("rmq")
  .description("A RocketMQ-5-compatible messaging system")
  .showHelpAfterError()
  .exitOverride();

registerNamesrvCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  if (isRmqError(e)) {
    console.error(`rmq: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
