/**
 * The host client commands: `ps`, `run`, `inspect`, `logs`, `stop`,
 * `events`. Each talks to a host over HTTP (`--host URL`, else LORNE_HOST,
 * else http://127.0.0.1:1113).
 */
import { constants as osConstants } from "node:os";
import type { Writable } from "node:stream";

import type { Command } from "commander";

import { NotFoundError } from "../errors.js";
import { HostClient } from "../host/client.js";
import {
  isFinal,
  MAX_TCP_PORTS,
  newJobId,
  type JobRecord,
  type JobSpec,
} from "../host/job.js";
import type { OutputView } from "../host/output.js";
import { format } from "../log/index.js";
import { collect, hostUrl, parseCount, parseEnvPairs } from "./options.js";
import { printTable } from "./table.js";

/** Exit status of `lorne run` when the job could not start. */
const EXIT_NOT_STARTED = 127;

interface HostFlag {
  host?: string;
}

export function register(program: Command): void {
  const withHost = (cmd: Command) =>
    cmd.option(
      "--host <url>",
      "host API URL (default: $LORNE_HOST or http://127.0.0.1:1113)",
    );

  withHost(program.command("ps"))
    .description("list jobs (running ones unless --all)")
    .option("-a, --all", "include jobs that have ended")
    .option("--json", "print JSON")
    .action(async (flags: HostFlag & { all?: boolean; json?: boolean }) => {
      const jobs = await client(flags).listJobs();
      const shown = flags.all ? jobs : jobs.filter((j) => !isFinal(j.status));
      if (flags.json) return printJson(shown);
      printTable(
        ["ID", "STATUS", "PID", "PORTS", "CREATED", "COMMAND"],
        shown.map((j) => [
          j.id,
          j.status +
            (j.exit_status !== null && isFinal(j.status)
              ? ` (${j.exit_status})`
              : ""),
          j.pid === null ? "-" : String(j.pid),
          j.ports.join(",") || "-",
          j.created_at,
          [...(j.config.entrypoint ?? []), ...j.config.cmd].join(" "),
        ]),
      );
    });

  withHost(program.command("run"))
    .description(
      "run a job; in the foreground, print its output and exit with its status",
    )
    .argument("<cmd...>", "command and its arguments")
    .passThroughOptions()
    .option("-d, --detach", "print the job id and return at once")
    .option("-e, --env <k=v>", "environment variable (repeatable)", collect, [])
    .option("-p, --ports <n>", "TCP ports to allocate", "0")
    .option("--id <id>", "job id (default: generated)")
    .option("-w, --workdir <dir>", "working directory")
    .option("-i, --image <ref>", "container image (docker backend)")
    .action(async (cmd: string[], flags: RunFlags) => {
      process.exitCode = await run(cmd, flags);
    });

  withHost(program.command("inspect"))
    .description("print one job's record as JSON")
    .argument("<id>")
    .action(async (id: string, flags: HostFlag) => {
      printJson(await client(flags).getJob(id));
    });

  withHost(program.command("port"))
    .description("print the host port a job was given (the first, or number N)")
    .argument("<id>")
    .argument("[n]", "which of the job's ports, from 0", "0")
    .action(async (id: string, n: string, flags: HostFlag) => {
      const job = await client(flags).getJob(id);
      const port = job.ports[parseCount(n, "port number", MAX_TCP_PORTS)];
      if (port === undefined) {
        throw new NotFoundError(
          `Job "${id}" has no port ${n}; it has ${job.ports.length}`,
        );
      }
      process.stdout.write(`${port}\n`);
    });

  withHost(program.command("logs"))
    .description("print a job's output")
    .argument("<id>")
    .option("-f, --follow", "keep printing until the job ends")
    .option("--stream <name>", "stdout, stderr or all", "all")
    .action(
      async (
        id: string,
        flags: HostFlag & { follow?: boolean; stream: string },
      ) => {
        for await (const chunk of client(flags).logs(id, {
          follow: flags.follow ?? false,
          stream: flags.stream as OutputView,
        })) {
          await write(process.stdout, chunk);
        }
      },
    );

  withHost(program.command("stop"))
    .description("stop a job (SIGTERM, then SIGKILL after the grace period)")
    .argument("<id>")
    .action(async (id: string, flags: HostFlag) => {
      const job = await client(flags).stopJob(id);
      process.stdout.write(`${job.id} ${job.status}\n`);
    });

  withHost(program.command("signal"))
    .description("send a signal to a running job, e.g. HUP or SIGUSR1")
    .argument("<id>")
    .argument("<signal>")
    .action(async (id: string, signal: string, flags: HostFlag) => {
      await client(flags).signalJob(id, signal);
    });

  withHost(program.command("events"))
    .description("print the host's events as they happen, one logfmt line each")
    .option("--job <id>", "only this job's events")
    .option("--json", "print JSON lines")
    .action(async (flags: HostFlag & { job?: string; json?: boolean }) => {
      const events = client(flags).events({
        job: flags.job,
        after: 0,
        onNotice: (notice) =>
          process.stderr.write(`lorne events: ${notice.message}\n`),
      });
      for await (const event of events) {
        const line = flags.json
          ? JSON.stringify(event)
          : format({
              id: event.id,
              time: event.time,
              event: event.event,
              "job.id": event.job_id,
              status: event.job.status,
              exit_status: event.job.exit_status,
              signal: event.job.signal,
              error: event.job.error,
            });
        await write(process.stdout, `${line}\n`);
      }
    });
}

interface RunFlags extends HostFlag {
  detach?: boolean;
  env: string[];
  ports: string;
  id?: string;
  workdir?: string;
  image?: string;
}

async function run(cmd: string[], flags: RunFlags): Promise<number> {
  const host = client(flags);
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
  const job = await host.createJob(spec);
  if (job.status === "failed") {
    process.stderr.write(`lorne run: ${job.error ?? "job failed to start"}\n`);
    return EXIT_NOT_STARTED;
  }
  if (flags.detach) {
    process.stdout.write(`${job.id}\n`);
    return 0;
  }

  // Ctrl-C stops the job; its status still decides ours.
  const stop = () => void host.stopJob(job.id).catch(() => undefined);
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  const pump = async (stream: OutputView, out: Writable) => {
    for await (const chunk of host.logs(job.id, { stream, follow: true })) {
      await write(out, chunk);
    }
  };
  await Promise.all([
    pump("stdout", process.stdout),
    pump("stderr", process.stderr),
  ]);
  const ended = await waitForEnd(host, job.id);
  process.off("SIGINT", stop);
  process.off("SIGTERM", stop);
  return exitCode(ended);
}

// The output ends a moment before the host records the exit.
async function waitForEnd(host: HostClient, id: string): Promise<JobRecord> {
  for (;;) {
    const job = await host.getJob(id);
    if (isFinal(job.status)) return job;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The shell convention: the exit code, or 128 + signal number. */
export function exitCode(job: JobRecord): number {
  if (job.exit_status !== null) return job.exit_status;
  const signals = osConstants.signals as Record<string, number>;
  if (job.signal !== null && signals[job.signal] !== undefined) {
    return 128 + (signals[job.signal] as number);
  }
  return job.status === "done" ? 0 : 1;
}

function client(flags: HostFlag): HostClient {
  return new HostClient(hostUrl(flags.host));
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function write(out: Writable, chunk: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}
