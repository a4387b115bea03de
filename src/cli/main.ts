/**
 * The `lorne` command line: one subcommand per file in this folder, each
 * exporting `register(program)`.
 */
import { Command, CommanderError } from "commander";

import { errorMessage } from "../errors.js";
import { VERSION } from "../version.js";
import { watchBrokenPipe } from "./pipe.js";

interface CommandModule {
  register(program: Command): void;
}

// Command files load on demand: `lorne run` should not pay for the
// Lumberjack or daemon code before it can start a job.
const host = () => import("./host.js");
const run = () => import("./run.js");
const jobs = () => import("./jobs.js");
const logfmt = () => import("./logfmt.js");
const receive = () => import("./receive.js");
const ship = () => import("./ship.js");
const cluster = () => import("./cluster.js");
const scheduler = () => import("./scheduler.js");
const shim = () => import("./shim.js");

/** Every command file, in the order `lorne --help` lists them. */
const ALL: (() => Promise<CommandModule>)[] = [
  host,
  run,
  jobs,
  logfmt,
  receive,
  ship,
  cluster,
  scheduler,
  shim,
];

const BY_COMMAND: Record<string, () => Promise<CommandModule>> = {
  host,
  run,
  attach: run,
  ps: jobs,
  inspect: jobs,
  port: jobs,
  logs: jobs,
  stop: jobs,
  signal: jobs,
  events: jobs,
  logfmt,
  receive,
  ship,
  cluster,
  scheduler,
  shim,
};

/**
 * Builds the program for `argv`: with a known subcommand only its file is
 * loaded, otherwise (help, --version, a typo) every command is.
 */
export async function buildProgram(argv: string[]): Promise<Command> {
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
  const name = argv[2] ?? "";
  const only = Object.hasOwn(BY_COMMAND, name) ? BY_COMMAND[name] : undefined;
  for (const load of only ? [only] : ALL) (await load()).register(program);
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
    await (await buildProgram(argv)).parseAsync(argv);
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
