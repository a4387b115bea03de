/**
 * The `lorne` command line: one subcommand per file in this folder, each
 * exporting `register(program)`.
 */
import { Command, CommanderError } from "commander";

import { errorMessage } from "../errors.js";
import { VERSION } from "../version.js";
import { register as registerHost } from "./host.js";
import { register as registerLogfmt } from "./logfmt.js";
import { register as registerJobs } from "./jobs.js";
import { watchBrokenPipe } from "./pipe.js";
import { register as registerReceive } from "./receive.js";
import { register as registerRun } from "./run.js";

/** Builds the program; exported so tests can parse without exiting. */
export function buildProgram(): Command {
  const program = new Command("lorne")
    .description(
      "Run jobs on a host, log them as logfmt, and ship their logs over Lumberjack",
    )
    .version(VERSION)
    // Usage errors: one line, exit status 2 (see main), for every command.
    .exitOverride()
    .configureOutput({
      outputError: (text, write) =>
        write(
          `lorne: ${text.replace(/^error: /, "").trimEnd()} (see --help)\n`,
        ),
    })
    // Lets `lorne run ls -la` pass -la to the job rather than parse it.
    .enablePositionalOptions()
    .configureHelp({ sortSubcommands: false });
  registerHost(program);
  registerRun(program);
  registerJobs(program);
  registerLogfmt(program);
  registerReceive(program);
  return program;
}

/**
 * Entry point used by bin/lorne. Errors end the process with a one-line
 * message: exit status 2 for bad input (flags, arguments, a validation
 * error from the host), 1 for anything else. A reader that goes away
 * (`lorne logs ID | head`) ends the command quietly.
 */
export async function main(argv: string[]): Promise<void> {
  watchBrokenPipe();
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version end here too; commander printed the message.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    const code = (err as { code?: unknown }).code;
    if (code === "EPIPE") return;
    process.stderr.write(`lorne: ${errorMessage(err)}\n`);
    process.exitCode = code === "validation_error" ? 2 : 1;
  }
}
