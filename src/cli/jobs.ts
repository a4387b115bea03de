/**
 * The host client commands: `ps`, `run`, `inspect`, `logs`, `stop`, `rm`,
 * `events`. Each talks to a host over HTTP (`--host URL`, else LORNE_HOST,
 * else http://127.0.0.1:1113) with its token, or over its Unix socket
 * (options.ts, hostEndpoint).
 */
import type { Writable } from "node:stream";

import { Option, type Command } from "commander";

import { errorMessage, NotFoundError } from "../errors.js";
import { HostClient } from "../host/client.js";
import { isFinal, MAX_TCP_PORTS } from "../host/job.js";
import type { OutputView } from "../host/output.js";
import type { ReconnectOptions } from "../host/reconnect.js";
import {
  hostEndpoint,
  parseCount,
  parseDuration,
  type EndpointFlags,
} from "./options.js";
import { printTable } from "./table.js";

export type HostFlag = EndpointFlags;

export function register(program: Command): void {
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
    .addOption(
      new Option("--stream <name>", "which output")
        .choices(["stdout", "stderr", "all"])
        .default("all"),
    )
    .option(...RECONNECT_OPTION)
    .action(
      async (
        id: string,
        flags: HostFlag & ReconnectFlag & { follow?: boolean; stream: string },
      ) => {
        for await (const chunk of client(flags).logs(id, {
          follow: flags.follow ?? false,
          stream: flags.stream as OutputView,
          reconnect: reconnectNotes("logs", flags),
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

  withHost(program.command("rm"))
    .description("remove an ended job: its record and its output files")
    .argument("<id>")
    .action(async (id: string, flags: HostFlag) => {
      const job = await client(flags).removeJob(id);
      process.stdout.write(`${job.id} removed\n`);
    });

  withHost(program.command("signal"))
    .description("send a signal to a running job, e.g. HUP or SIGUSR1")
    .argument("<id>")
    .argument("<signal>")
    .action(async (id: string, signal: string, flags: HostFlag) => {
      await client(flags).signalJob(id, signal);
    });

  withHost(program.command("events"))
    .description(
      "print the host's kept events, then new ones as they happen, one logfmt line each",
    )
    .option("--job <id>", "only this job's events")
    .option(
      "--since <n>",
      "only events after event number N (default: 0, all kept)",
      "0",
    )
    .option("--json", "print JSON lines")
    .option(...RECONNECT_OPTION)
    .action(
      async (
        flags: HostFlag &
          ReconnectFlag & { job?: string; json?: boolean; since: string },
      ) => {
        const events = client(flags).events({
          job: flags.job,
          after: parseCount(flags.since, "--since", Number.MAX_SAFE_INTEGER),
          onNotice: (notice) =>
            process.stderr.write(`lorne events: ${notice.message}\n`),
          reconnect: reconnectNotes("events", flags),
        });
        const { format } = await import("../log/format.js");
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
      },
    );
}

/**
 * `--reconnect-timeout` of the commands that follow a stream. No signal
 * handlers are installed for them: Ctrl-C or SIGTERM ends them at once,
 * also while they wait to reconnect.
 */
const RECONNECT_OPTION = [
  "--reconnect-timeout <duration>",
  "when the host goes away, keep trying this long to reconnect and " +
    "resume (e.g. 500ms, 60s, 5m; 0 = never)",
  "60s",
] as const;

interface ReconnectFlag {
  reconnectTimeout: string;
}

/** Reconnect options that note a lost connection and its return on stderr. */
function reconnectNotes(
  command: string,
  flags: ReconnectFlag,
): ReconnectOptions {
  return {
    timeoutMs: parseDuration(flags.reconnectTimeout, "--reconnect-timeout"),
    onLost: (err) =>
      process.stderr.write(
        `lorne ${command}: ${errorMessage(err)}; reconnecting\n`,
      ),
    onBack: () => process.stderr.write(`lorne ${command}: Reconnected\n`),
  };
}

/** Adds the options every client command takes to reach the host. */
export function withHost(cmd: Command): Command {
  return cmd
    .option(
      "--host <url>",
      "host API URL (default: $LORNE_HOST or http://127.0.0.1:1113)",
    )
    .option(
      "--token-file <path>",
      "file with the host's token (default: $LORNE_TOKEN, $LORNE_TOKEN_FILE, " +
        ".lorne-state/token, /var/lib/lorne/token)",
    )
    .option(
      "--socket <path>",
      "reach the host on its Unix socket instead (default: $LORNE_SOCKET)",
    );
}

/** A client for the host the flags (or the environment) name. */
export function client(flags: HostFlag): HostClient {
  return new HostClient(hostEndpoint(flags));
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function write(out: Writable, chunk: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}
