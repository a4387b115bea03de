/**
 * `lorne run` and `lorne attach`: jobs in the foreground. `run` attaches
 * before it creates the job (the host holds the start until the attacher
 * is connected, so no output is missed), forwards stdin, and exits with
 * the job's status; with a TTY (the default when stdin is a terminal) the
 * terminal is put in raw mode. `--detach` only creates the job.
 */
import type { Command } from "commander";

import type { ExitPayload } from "../host/attach/protocol.js";
import { MAX_TCP_PORTS, newJobId, type JobSpec } from "../host/job.js";
import { client, withHost, type HostFlag } from "./jobs.js";
import { collect, parseCount, parseEnvPairs } from "./options.js";
import { attachTerminal, exitCodeOf } from "./terminal.js";

/** Exit status of `lorne run` when the job could not start. */
const EXIT_NOT_STARTED = 127;

interface RunFlags extends HostFlag {
  detach?: boolean;
  env: string[];
  ports: string;
  id?: string;
  workdir?: string;
  image?: string;
  tty?: boolean;
  stdin: boolean;
}

export function register(program: Command): void {
  withHost(program.command("run"))
    .description(
      "run a job; attached, it streams output and stdin and exits with the job's status",
    )
    .argument("<cmd...>", "command and its arguments")
    .passThroughOptions()
    .option("-d, --detach", "print the job id and return at once")
    .option("-e, --env <k=v>", "environment variable (repeatable)", collect, [])
    .option("-p, --ports <n>", "TCP ports to allocate", "0")
    .option("--id <id>", "job id (default: generated)")
    .option("-w, --workdir <dir>", "working directory on the host (absolute)")
    .option("-i, --image <ref>", "container image (docker backend)")
    .option("-t, --tty", "give the job a terminal (default: when stdin is one)")
    .option("--no-tty", "no terminal, even when stdin is one")
    .option("--no-stdin", "do not forward stdin to the job")
    .action(async (cmd: string[], flags: RunFlags) => {
      process.exitCode = await run(cmd, flags);
    });

  withHost(program.command("attach"))
    .description(
      "attach to a job: stream its output (and stdin, if it takes it) until it ends",
    )
    .argument("<id>")
    .option("--logs", "replay the output written before attaching")
    .option("--no-stdin", "do not forward stdin")
    .action(
      async (
        id: string,
        flags: HostFlag & { logs?: boolean; stdin: boolean },
      ) => {
        const host = client(flags);
        const job = await host.getJob(id);
        const exit = await attachTerminal({
          endpoint: host.endpoint,
          jobId: id,
          stdin: flags.stdin && job.config.stdin === true,
          tty: job.config.tty === true && process.stdin.isTTY,
          logs: flags.logs ?? false,
        });
        process.exitCode = exit ? exitCodeOf(exit) : connectionLost("attach");
      },
    );
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
    const job = await host.createJob(spec);
    if (job.status === "failed") return notStarted(job.error);
    process.stdout.write(`${job.id}\n`);
    return 0;
  }

  spec.config.stdin = flags.stdin;
  if (tty) spec.config.tty = true;
  let created: Promise<void> | undefined;
  const exit: ExitPayload | null = await attachTerminal({
    endpoint: host.endpoint,
    jobId: spec.id as string,
    stdin: flags.stdin,
    tty,
    logs: true,
    requireWaiting: true,
    // The host now holds this attacher; create the job.
    onWaiting: () => {
      created = host.createJob(spec).then(() => undefined);
      created.catch(() => undefined);
    },
  }).catch(async (err: unknown) => {
    await created; // a create error says more than the attach's
    throw err;
  });
  await created;
  if (exit?.status === "failed") {
    return notStarted((await host.getJob(spec.id as string)).error);
  }
  return exit ? exitCodeOf(exit) : connectionLost("run");
}

function connectionLost(command: string): number {
  process.stderr.write(
    `lorne ${command}: lost the connection to the host before the job ended\n`,
  );
  return 1;
}

function notStarted(error: string | null): number {
  process.stderr.write(`lorne run: ${error ?? "job failed to start"}\n`);
  return EXIT_NOT_STARTED;
}
