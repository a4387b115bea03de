/**
 * The `lorne` command line: one subcommand per file in this folder, each
 * exporting `register(program)`.
 */
import { Command } from "commander";

import { errorMessage } from "../errors.js";

import { register as registerHost } from "./host.js";
import { register as registerLogfmt } from "./logfmt.js";
import { register as registerJobs } from "./jobs.js";
import { register as registerRun } from "./run.js";

/** Builds the program; exported so tests can parse without exiting. */
export function buildProgram(): Command {
  const program = new Command("lorne")
    .description(
      "Run jobs on a host, log them as logfmt, and ship their logs over Lumberjack",
    )
    .showHelpAfterError()
    // Lets `lorne run ls -la` pass -la to the job rather than parse it.
    .enablePositionalOptions()
    .configureHelp({ sortSubcommands: false });
  registerHost(program);
  registerRun(program);
  registerJobs(program);
  registerLogfmt(program);
  return program;
}

/**
 * Entry point used by bin/lorne. Errors end the process with a one-line
 * message: exit status 2 for bad input, 1 for anything else.
 */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    process.stderr.write(`lorne: ${errorMessage(err)}\n`);
    process.exitCode = code === "validation_error" ? 2 : 1;
  }
}
