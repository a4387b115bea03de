/**
 * `lorne run` and `lorne attach`: jobs in the foreground. `run` attaches
 * before it creates the job (the host holds the start until the attacher
 * is connected, so no output is missed), forwards stdin and signals, and
 * exits with the job's status; with a TTY (the default when stdin is a
 * terminal) the terminal is put in raw mode. `--detach` only creates the
 * job. `attach` follows a job and leaves it running on Ctrl-C.
 */
import type { Command } from "commander";

import { UnavailableError } from "../errors.js";
import type { HostClient } from "../host/client.js";
import { MAX_TCP_PORTS, newJobId, type JobSpec } from "../host/job.js";
import { client, withHost, type HostFlag } from "./jobs.js";
import { collect, parseCount, parseEnvPairs } from "./options.js";
import {
  attachTerminal,
  dieOfHangup,
  exitCodeOf,
  LEAVE_AFTER_INTERRUPTS,
  leaveCode,
  terminalHungUp,
  type AttachEnd,
  type LeaveReason,
} from "./terminal.js";

/** Exit status of `lorne run` and `lorne attach` when the job could not start. */
const EXIT_NOT_STARTED = 127;

interface RunFlags extends HostFlag {
  detach?: boolean;
  env: string[];
  ports: string;
  id?: string;
  workdir?: string;
  image?: string;
  tty?: boolean;
  /** Unset: attached, forward stdin; detached, the job gets none. */
  stdin?: boolean;
}

interface AttachFlags extends HostFlag {
  logs?: boolean;
  /** Unset: forward stdin when it is a terminal. */
  stdin?: boolean;
  sigProxy?: boolean;
}

/** What `lorne attach` and `lorne run` say when they leave a job running. */
const LEFT: Record<Exclude<LeaveReason, "broken_pipe">, string> = {
  SIGINT: "interrupted",
  SIGTERM: "terminated",
  SIGHUP: "hung up",
  detach_keys: "detached",
  interrupts: `interrupted ${LEAVE_AFTER_INTERRUPTS} times`,
};

export function register(program: Command): void {
  withHost(program.command("run"))
    .description(
      "run a job; attached, it streams output, stdin and signals and exits " +
        "with the job's status (a third Ctrl-C in 2 s leaves it running)",
    )
    .argument("<cmd...>", "command and its arguments")
    .passThroughOptions()
    .option("-d, --detach", "print the job id and return at once")
    .option("-e, --env <k=v>", "environment variable (repeatable)", collect, [])
    .option("-p, --ports <n>", "TCP ports to allocate", "0")
    .option("--id <id>", "job id (default: generated)")
    .option("-w, --workdir <dir>", "working directory on the host (absolute)")
    .option("-i, --image <ref>", "container image (docker backend)")
    .option(
      "-t, --tty",
      "give the job a terminal (default: when stdin is one, unless detached)",
    )
    .option("--no-tty", "no terminal, even when stdin is one")
    .option(
      "--stdin",
      "keep the job's stdin open (default when attached; with --detach, " +
        "for a later lorne attach --stdin)",
    )
    .option("--no-stdin", "do not forward stdin to the job")
    .action(async (cmd: string[], flags: RunFlags) => {
      process.exitCode = await run(cmd, flags);
    });

  withHost(program.command("attach"))
    .description(
      "attach to a job: stream its output until it ends; Ctrl-C leaves " +
        "it running (exit 130)",
    )
    .argument("<id>")
    .option("--logs", "replay the output written before attaching")
    .option(
      "--stdin",
      "forward stdin to the job; its end closes the job's stdin for " +
        "every attacher (default: only when stdin is a terminal)",
    )
    .option("--no-stdin", "do not forward stdin, even from a terminal")
    .option(
      "--sig-proxy",
      "pass SIGINT, SIGTERM, SIGHUP and SIGPIPE on to the job, as " +
        "lorne run does, instead of leaving",
    )
    .action(async (id: string, flags: AttachFlags) => {
      process.exitCode = await attach(id, flags);
    });
}

async function run(cmd: string[], flags: RunFlags): Promise<number> {
  const host = client(flags);
  const tty = flags.tty ?? process.stdin.isTTY;
  const spec: JobSpec = {
    id: flags.id ?? newJobId(),
    config: {
      cmd,
      env: parseEnvPairs(flags.env, "--env"),
      tcp_ports: parseCount(flags.ports, "--ports", MAX_TCP_PORTS),
    },
  };
  if (flags.workdir) spec.config.working_dir = flags.workdir;
  if (flags.image) spec.config.image = flags.image;

  if (flags.detach) {
    // Nobody is attached yet: a terminal or an open stdin only when asked,
    // for whoever attaches later.
    if (flags.tty === true) spec.config.tty = true;
    if (flags.stdin === true) spec.config.stdin = true;
    const job = await host.createJob(spec);
    if (job.status === "failed") return notStarted("run", job.error);
    process.stdout.write(`${job.id}\n`);
    return 0;
  }

  const stdin = flags.stdin ?? true;
  spec.config.stdin = stdin;
  if (tty) spec.config.tty = true;
  let created: Promise<void> | undefined;
  // A create that fails ends the wait for the job at once.
  const giveUp = new AbortController();
  const end = await attachTerminal({
    endpoint: host.endpoint,
    jobId: spec.id as string,
    stdin,
    tty,
    logs: true,
    forwardSignals: true,
    requireWaiting: true,
    signal: giveUp.signal,
    // The host now holds this attacher; create the job.
    onWaiting: () => {
      created = host.createJob(spec).then(
        () => undefined,
        (err: unknown) => {
          // The host was there a moment ago: it may have made the job
          // before the connection went.
          if (!(err instanceof UnavailableError)) throw err;
          throw new UnavailableError(
            `${err.message}; job "${spec.id}" may have been created all ` +
              `the same (lorne inspect ${spec.id})`,
            { cause: err },
          );
        },
      );
      created.catch((err: unknown) => giveUp.abort(err));
    },
  }).catch(async (err: unknown) => {
    await created; // a create error says more than the attach's
    throw err;
  });
  await created;
  return exitStatus("run", host, spec.id as string, end);
}

async function attach(id: string, flags: AttachFlags): Promise<number> {
  const host = client(flags);
  const job = await host.getJob(id);
  const takesStdin = job.config.stdin === true;
  const end = await attachTerminal({
    endpoint: host.endpoint,
    jobId: id,
    // From a terminal only, unless asked: an attacher's end of input
    // (</dev/null, cron, ssh -n) would close the stdin every attacher shares.
    stdin: flags.stdin ?? (process.stdin.isTTY === true && takesStdin),
    tty: job.config.tty === true && process.stdin.isTTY,
    logs: flags.logs ?? false,
    forwardSignals: flags.sigProxy ?? false,
  });
  return exitStatus("attach", host, id, end);
}

// The exit status of `lorne run` or `lorne attach` for how the session
// ended, with a line on stderr where it says more than the status.
async function exitStatus(
  command: string,
  host: HostClient,
  id: string,
  end: AttachEnd,
): Promise<number> {
  if (end.kind === "lost") {
    process.stderr.write(
      `lorne ${command}: lost the connection to the host before the job ended\n`,
    );
    return 1;
  }
  if (end.kind === "left") {
    // Nobody is left to read a message, and a normal exit would abort.
    if (end.reason === "SIGHUP" && terminalHungUp()) dieOfHangup();
    if (end.reason !== "broken_pipe") {
      process.stderr.write(
        `lorne ${command}: ${LEFT[end.reason]}; job "${id}" goes on ` +
          `(lorne attach ${id})\n`,
      );
    }
    return leaveCode(end.reason);
  }
  if (end.exit.status === "failed") {
    return notStarted(command, (await host.getJob(id)).error);
  }
  return exitCodeOf(end.exit);
}

function notStarted(command: string, error: string | null): number {
  process.stderr.write(`lorne ${command}: ${error ?? "job failed to start"}\n`);
  return EXIT_NOT_STARTED;
}
