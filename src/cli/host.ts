/**
 * `lorne host`: the host daemon in the foreground. Flags override the
 * config file (`--config`), which overrides the defaults. SIGTERM, SIGINT
 * and SIGHUP stop every job, flush the log and exit 0; a second SIGTERM or
 * SIGINT exits 1 at once.
 */
import { readFileSync } from "node:fs";

import { Option, type Command } from "commander";

import {
  DEFAULT_FINISHED_MAX,
  DEFAULT_LEASE_TTL_S,
} from "../cluster/settings.js";
import { DEFAULT_PREFIX } from "../cluster/keys.js";
import { errorMessage, ValidationError } from "../errors.js";
import type { Daemon, DaemonOptions } from "../host/daemon.js";
import {
  DEFAULT_DOCKER_SOCKET,
  DEFAULT_PULL_TIMEOUT_MS,
} from "../host/backends/docker/defaults.js";
import { DEFAULT_MAX_STARTS_IN_FLIGHT } from "../host/api/starts.js";
import { DEFAULT_EVENT_HISTORY } from "../host/events.js";
import { DEFAULT_GRACE_MS } from "../host/host.js";
import {
  DEFAULT_ENDED_MAX,
  MAX_ENDED_MAX,
  MAX_ENDED_RETENTION_MS,
} from "../host/retention.js";
import { DEFAULT_PORT_RANGE, parsePortRange } from "../host/ports.js";
import { BufferedLogger, Context } from "../log/index.js";
import {
  clusterSettings,
  readConfig,
  type ClusterFlags,
  type HostConfigFile,
} from "./host-config.js";
import {
  collect,
  parseCount,
  parseDuration,
  parseEnvPairs,
  parseListen,
  parseMs,
} from "./options.js";
import { exitOnSignals, exitOnStartError } from "./signals.js";

const DEFAULT_LISTEN = "127.0.0.1:1113";
const DEFAULT_STATE = "/var/lib/lorne";

interface HostFlags extends ClusterFlags {
  listen?: string;
  state?: string;
  stateStore?: string;
  backend?: string;
  manifest?: string;
  id?: string;
  external?: string;
  attribute: string[];
  config?: string;
  ports?: string;
  force?: boolean;
  graceMs?: string;
  eventHistory?: string;
  endedRetention?: string;
  endedMax?: string;
  dockerSocket?: string;
  bind?: string;
  keepContainers?: boolean;
  pullTimeoutMs?: string;
  socket?: string;
  /** commander's --no-auth: false when given. */
  auth: boolean;
  maxStarts?: string;
}

export function register(program: Command): void {
  program
    .command("host")
    .description("run the host daemon in the foreground")
    .option(
      "--listen <addr>",
      `API address host:port (default: ${DEFAULT_LISTEN})`,
    )
    .option("--state <dir>", `state directory (default: ${DEFAULT_STATE})`)
    .addOption(
      new Option(
        "--state-store <kind>",
        "where jobs, events and ports are kept: file (<state>/host.db, " +
          "survives restarts) or memory (default: file)",
      ).choices(["file", "memory"]),
    )
    .addOption(
      new Option("--backend <name>", "how jobs run (default: process)").choices(
        ["process", "docker"],
      ),
    )
    .option("--manifest <file>", "boot manifest to run at start; - for stdin")
    .option("--id <id>", "host id (default: the hostname)")
    .option("--external <ip>", "external IP, given to jobs as EXTERNAL_IP")
    .option("--attribute <k=v>", "host attribute (repeatable)", collect, [])
    .option("--config <file>", "JSON config file; flags override it")
    .option(
      "--ports <min-max>",
      `port range for jobs (default: ${DEFAULT_PORT_RANGE})`,
    )
    .option("--force", "stop jobs a previous daemon left running")
    .option(
      "--grace-ms <ms>",
      `time between SIGTERM and SIGKILL on stop (default: ${DEFAULT_GRACE_MS})`,
    )
    .option(
      "--event-history <n>",
      `events kept for resuming (default: ${DEFAULT_EVENT_HISTORY})`,
    )
    .option(
      "--ended-retention <duration>",
      "remove ended jobs after this long, e.g. 30s, 24h, 7d; 0 keeps them " +
        "all, --ended-max too (default: 24h)",
    )
    .option(
      "--ended-max <n>",
      "most ended jobs kept, the oldest removed first " +
        `(default: ${DEFAULT_ENDED_MAX})`,
    )
    .option(
      "--docker-socket <path>",
      `Docker engine socket (default: ${DEFAULT_DOCKER_SOCKET})`,
    )
    .option(
      "--bind <ip>",
      "address published container ports bind to (default: 127.0.0.1)",
    )
    .option("--keep-containers", "keep containers after their jobs end")
    .option(
      "--pull-timeout-ms <ms>",
      `deadline for an image pull (default: ${DEFAULT_PULL_TIMEOUT_MS})`,
    )
    .option(
      "--etcd <url,...>",
      "join a cluster through these etcd endpoints (docs/cluster.md)",
    )
    .option(
      "--advertise <host:port>",
      "API address other machines reach (default: the --listen address)",
    )
    .option("--scheduler", "also run a cluster scheduler (needs --etcd)")
    .option("--no-scheduler", "do not, even if the config file says so")
    .option(
      "--etcd-prefix <path>",
      `etcd key prefix (default: ${DEFAULT_PREFIX})`,
    )
    .option(
      "--lease-ttl-s <s>",
      `registration lease TTL in seconds (default: ${DEFAULT_LEASE_TTL_S})`,
    )
    .option(
      "--finished-retention <duration>",
      "with --scheduler: remove jobs finished longer ago than this, e.g. " +
        "24h, 7d; 0 keeps them forever (default: 24h)",
    )
    .option(
      "--finished-max <n>",
      "with --scheduler: keep at most this many finished jobs, the newest " +
        `(default: ${DEFAULT_FINISHED_MAX})`,
    )
    .option(
      "--socket <path>",
      "also serve the API on this Unix socket (mode 0600, no token)",
    )
    .option(
      "--no-auth",
      "serve TCP without a token (loopback only; any local user gets in)",
    )
    .option(
      "--max-starts <n>",
      `job starts in progress before 429 (default: ${DEFAULT_MAX_STARTS_IN_FLIGHT})`,
    )
    .action(async (flags: HostFlags) => {
      await runHost(flags);
    });
}

async function runHost(flags: HostFlags): Promise<void> {
  // A daemon must not stop while its log output is not being read.
  const logger = new BufferedLogger({ fd: 1, blockMs: 0 });
  const log = new Context({ data: { app: "lorne" }, logger });
  const main = log.child({ fn: "main" });
  let options: Omit<DaemonOptions, "log">;
  // Loaded here so client commands do not pay for the engine client.
  const { Daemon, checkDaemonOptions } = await import("../host/daemon.js");
  try {
    options = resolveOptions(flags);
    checkDaemonOptions(options);
  } catch (err) {
    // A bad flag, config value or manifest is bad input: exit status 2.
    const status = err instanceof ValidationError ? 2 : 1;
    exitOnStartError("host", main, logger, err, status);
  }
  let daemon: Daemon;
  try {
    daemon = await Daemon.start({ ...options, log });
  } catch (err) {
    // A state dir, port or engine it cannot use.
    exitOnStartError("host", main, logger, err);
  }

  exitOnSignals({
    log: log.child({ fn: "main" }),
    logger,
    close: () => daemon.close(),
  });
  // Node's default for SIGUSR1 opens its debugger on 127.0.0.1:9229: in a
  // daemon that runs jobs, that would let any local user run code in it.
  process.on("SIGUSR1", () =>
    log.log({ fn: "main", at: "signal", signal: "SIGUSR1" }),
  );
}

function resolveOptions(flags: HostFlags): Omit<DaemonOptions, "log"> {
  const file = flags.config ? readConfig(flags.config) : {};
  const listen =
    flags.listen !== undefined
      ? parseListen(flags.listen)
      : parseListen(file.listen ?? DEFAULT_LISTEN, `config listen`);
  const manifestPath = path(flags.manifest, file.manifest, "manifest");
  const backend = flags.backend ?? file.backend ?? "process";
  if (backend !== "process" && backend !== "docker") {
    throw new ValidationError(
      `Invalid backend "${backend}": expected process or docker`,
      "backend",
    );
  }
  const stateStore = flags.stateStore ?? file.state_store ?? "file";
  if (stateStore !== "file" && stateStore !== "memory") {
    throw new ValidationError(
      `Invalid state_store "${stateStore}": expected file or memory`,
      "state_store",
    );
  }
  const pullTimeoutMs =
    flags.pullTimeoutMs !== undefined
      ? parseMs(flags.pullTimeoutMs, "--pull-timeout-ms")
      : file.pull_timeout_ms;
  return {
    id: flags.id ?? file.id,
    stateDir: path(flags.state, file.state, "state") ?? DEFAULT_STATE,
    stateStore,
    listenHost: listen.host,
    listenPort: listen.port,
    portRange:
      flags.ports !== undefined
        ? parsePortRange(flags.ports, "--ports")
        : parsePortRange(file.ports ?? DEFAULT_PORT_RANGE, "config ports"),
    externalIp: flags.external ?? file.external,
    attributes: { ...file.attributes, ...parseAttributes(flags.attribute) },
    manifest: manifestPath ? readManifest(manifestPath) : undefined,
    force: flags.force ?? false,
    graceMs:
      flags.graceMs !== undefined
        ? parseMs(flags.graceMs, "--grace-ms")
        : file.grace_ms,
    eventHistory:
      flags.eventHistory !== undefined
        ? parseCount(flags.eventHistory, "--event-history", 10_000_000, 1)
        : file.event_history,
    ...endedSettings(flags, file),
    backend,
    docker: {
      socketPath: flags.dockerSocket ?? file.docker_socket,
      bindIp: flags.bind ?? file.bind,
      keepContainers: flags.keepContainers ?? file.keep_containers,
      pullTimeoutMs,
    },
    auth: flags.auth,
    socketPath: path(flags.socket, file.socket, "socket"),
    maxStartsInFlight:
      flags.maxStarts !== undefined
        ? parseCount(flags.maxStarts, "--max-starts", 100_000, 1)
        : file.max_starts,
    cluster: clusterSettings(flags, file),
  };
}

// A path from the flag or else the config key; an empty one would mean
// the current directory (or nothing) without saying so.
function path(
  flag: string | undefined,
  key: string | undefined,
  name: string,
): string | undefined {
  const value = flag ?? key;
  if (value === "") {
    const source = flag !== undefined ? `--${name}` : `config ${name}`;
    throw new ValidationError(`Invalid ${source} "": expected a path`, name);
  }
  return value;
}

// The retention of ended jobs (host/retention.ts), each flag over its key.
function endedSettings(
  flags: HostFlags,
  file: HostConfigFile,
): Pick<DaemonOptions, "endedRetentionMs" | "endedMax"> {
  const retention =
    flags.endedRetention !== undefined
      ? { text: flags.endedRetention, source: "--ended-retention" }
      : file.ended_retention !== undefined
        ? { text: file.ended_retention, source: "config ended_retention" }
        : undefined;
  return {
    endedRetentionMs:
      retention &&
      parseDuration(retention.text, retention.source, MAX_ENDED_RETENTION_MS),
    endedMax:
      flags.endedMax !== undefined
        ? parseCount(flags.endedMax, "--ended-max", MAX_ENDED_MAX, 1)
        : file.ended_max === undefined
          ? undefined
          : parseCount(
              `${file.ended_max}`,
              "config ended_max",
              MAX_ENDED_MAX,
              1,
            ),
  };
}

function readManifest(path: string): { text: string; source: string } {
  try {
    const text = readFileSync(path === "-" ? 0 : path, "utf8");
    return { text, source: path === "-" ? "stdin" : path };
  } catch (err) {
    throw new ValidationError(
      `Cannot read manifest "${path}": ${errorMessage(err)}`,
      "manifest",
    );
  }
}

function parseAttributes(pairs: string[]): Record<string, string> {
  return parseEnvPairs(pairs, "--attribute");
}
