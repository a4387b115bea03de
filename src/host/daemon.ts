/**
 * The host daemon, assembled: validates the manifest before anything
 * starts, locks the state dir, opens the state file, deals with jobs an
 * earlier daemon left (`force`), serves the API, boots the manifest, and
 * shuts everything down in order on `close()`.
 */
import { hostname } from "node:os";
import { join } from "node:path";

import type { ClusterMember } from "../cluster/member.js";
import type { ClusterSettings } from "../cluster/settings.js";
import { errorMessage, ValidationError } from "../errors.js";
import type { Context } from "../log/index.js";
import { VERSION } from "../version.js";
import { ApiServer } from "./api/server.js";
import type { Backend } from "./backend.js";
import { DockerBackend } from "./backends/docker/backend.js";
import { ProcessBackend } from "./backends/process.js";
import { runManifest } from "./boot.js";
import { DEFAULT_GRACE_MS, Host } from "./host.js";
import { validateJobId } from "./job.js";
import { parseManifest, type ManifestService } from "./manifest/index.js";
import { PortPool, type PortRange } from "./ports.js";
import { isLoopback } from "./loopback.js";
import { Retention } from "./retention.js";
import { loadOrCreateToken, tokenPath } from "./token.js";
import {
  findLeftoverJobs,
  lockStateDir,
  stopLeftoverJobs,
} from "./statedir.js";
import { HostStore, STATE_FILE, type StateStoreKind } from "./store.js";

export interface DaemonOptions {
  /** Host id; default: the machine's hostname. */
  id?: string;
  stateDir: string;
  /**
   * `file` (default): jobs, events and ports in `<stateDir>/host.db`;
   * `memory`: forgotten when the daemon exits.
   */
  stateStore?: StateStoreKind;
  listenHost: string;
  /** 0 picks a free port (tests). */
  listenPort: number;
  portRange: PortRange;
  externalIp?: string;
  attributes?: Record<string, string>;
  /** Manifest text and where it came from, for error messages. */
  manifest?: { text: string; source: string };
  force?: boolean;
  graceMs?: number;
  /** Events kept for resuming with Last-Event-ID. */
  eventHistory?: number;
  log: Context;
  /** The environment templates see as `.Env`; default process.env. */
  env?: Record<string, string>;
  /** How jobs run; default process. */
  backend?: "process" | "docker";
  docker?: DockerSettings;
  /** Join a cluster through etcd (docs/cluster.md). */
  cluster?: ClusterSettings;
  /**
   * Require the state dir's token on TCP (default true). Turning it off is
   * allowed on a loopback address only.
   */
  auth?: boolean;
  /** Also listen on this Unix socket (mode 0600, no token). */
  socketPath?: string;
  /** Job starts in progress through the API before 429; default 32. */
  maxStartsInFlight?: number;
  /**
   * How long ended jobs are kept (retention.ts); default a day, 0 keeps
   * them all (the count bound too).
   */
  endedRetentionMs?: number;
  /** Most ended jobs kept, the oldest removed first; default 1000. */
  endedMax?: number;
}

/** Settings of the docker backend, from the command line or config. */
export interface DockerSettings {
  socketPath?: string;
  bindIp?: string;
  keepContainers?: boolean;
  pullTimeoutMs?: number;
}

/** A running daemon. */
export class Daemon {
  readonly host: Host;
  readonly url: string;
  /** The token TCP clients must send; null when auth is off. */
  readonly token: string | null;
  readonly #api: ApiServer;
  readonly #store: HostStore;
  readonly #unlock: () => void;
  readonly #log: Context;
  readonly #cluster: ClusterMember | null;
  readonly #retention: Retention;
  #closed: Promise<void> | null = null;

  private constructor(
    host: Host,
    api: ApiServer,
    url: string,
    store: HostStore,
    token: string | null,
    unlock: () => void,
    log: Context,
    cluster: ClusterMember | null,
    retention: Retention,
  ) {
    this.host = host;
    this.#api = api;
    this.url = url;
    this.#store = store;
    this.token = token;
    this.#unlock = unlock;
    this.#log = log;
    this.#cluster = cluster;
    this.#retention = retention;
  }

  /** Starts a daemon; rejects (having cleaned up) if any step fails. */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const { id, services, auth } = checkDaemonOptions(options);
    const log = options.log.child({ "host.id": id });
    const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    if (!auth) {
      log.log({
        fn: "daemon",
        at: "auth_disabled",
        warning: "API on TCP needs no token: any local user can run jobs",
      });
    }
    const unlock = lockStateDir(options.stateDir);

    let store: HostStore | undefined;
    let host: Host | undefined;
    let api: ApiServer | undefined;
    let backend: Backend | undefined;
    let cluster: ClusterMember | null = null;
    let retention: Retention | undefined;
    try {
      store = openStore(options, log);
      const token = auth ? loadOrCreateToken(options.stateDir) : null;
      backend = await openBackend(options, id, log);
      host = new Host({
        id,
        stateDir: options.stateDir,
        backend,
        ports: new PortPool({ range: options.portRange, store }),
        log,
        externalIp: options.externalIp,
        attributes: options.attributes,
        graceMs,
        eventHistory: options.eventHistory,
        store,
        jobEnv: options.cluster
          ? { LORNE_ETCD: options.cluster.endpoints.join(",") }
          : undefined,
      });
      log.log({
        fn: "daemon",
        at: "state_loaded",
        jobs: host.list().length,
        unfinished: host.unfinished().length,
        last_event_id: host.events.lastId,
      });
      const adopted = await host.recover();
      log.log({ fn: "daemon", at: "recovered", adopted: adopted.length });
      // Jobs left running that no record explains (a state file started
      // afresh): stopped with --force, else their ids stay taken.
      host.refuseIds(
        await handleLeftovers(options, new Set(adopted), graceMs, log),
      );
      if (backend instanceof DockerBackend) {
        host.refuseIds(await cleanupContainers(backend, host, options));
      }
      // After recovery, so jobs that ended while no daemon ran count, and
      // before the API, so no client sees what this sweep removes.
      retention = new Retention({
        host,
        stateDir: options.stateDir,
        log,
        endedRetentionMs: options.endedRetentionMs,
        endedMax: options.endedMax,
      });
      retention.start();
      api = new ApiServer({
        host,
        log,
        version: VERSION,
        token,
        maxStartsInFlight: options.maxStartsInFlight,
      });
      // The socket first: once the URL is logged, every listener is up.
      if (options.socketPath !== undefined) {
        await api.listenSocket(options.socketPath);
        log.log({ fn: "daemon", at: "listening", socket: options.socketPath });
      }
      const address = await api.listen(options.listenPort, options.listenHost);
      const hostPart =
        address.family === "IPv6" ? `[${address.address}]` : address.address;
      const url = `http://${hostPart}:${address.port}`;
      log.log({
        fn: "daemon",
        at: "listening",
        url,
        backend: host.backendName,
        auth: auth ? "token" : "none",
        token_file: auth ? tokenPath(options.stateDir) : undefined,
      });

      // Before the manifest, so an unreachable etcd fails the start before
      // any job runs. Loaded here so a host outside a cluster does not load
      // etcd's client.
      cluster = options.cluster
        ? await (
            await import("../cluster/member.js")
          ).ClusterMember.start({
            settings: options.cluster,
            host,
            url,
            version: VERSION,
            log,
          })
        : null;

      if (services.length > 0) {
        await runManifest({
          host,
          services,
          env: options.env ?? stringEnv(process.env),
          externalIp: options.externalIp ?? "",
          internalIp: "127.0.0.1",
          log,
        });
      }
      return new Daemon(
        host,
        api,
        url,
        store,
        token,
        unlock,
        log,
        cluster,
        retention,
      );
    } catch (err) {
      await retention?.close();
      await cluster?.pause();
      if (host) await host.close();
      else await backend?.close();
      await cluster?.close();
      await api?.close();
      store?.close();
      unlock();
      throw err;
    }
  }

  /**
   * Stops every job, closes the API and the state file, releases the
   * state dir. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#log.log({ fn: "daemon", at: "shutdown" });
      // The cluster stops first: the jobs' exits below are not reported as
      // ends, and the lease goes after them (docs/cluster.md).
      await this.#retention.close();
      await this.#cluster?.pause();
      await this.host.close();
      await this.#cluster?.close();
      await this.#api.close();
      this.#store.close();
      this.#unlock();
      this.#log.log({ fn: "daemon", at: "stopped" });
    })();
    return this.#closed;
  }
}

function openStore(options: DaemonOptions, log: Context): HostStore {
  if (options.stateStore === "memory") return HostStore.memory();
  const store = HostStore.open(join(options.stateDir, STATE_FILE));
  log.log({ fn: "daemon", at: "state_open", "state.path": store.path });
  return store;
}

/**
 * What `Daemon.start` checks before it touches anything (the host id, the
 * manifest's services, the listen address without auth); throws
 * ValidationError. The CLI calls it first, so that bad input exits 2 and
 * a state dir or port it cannot use exits 1.
 */
export function checkDaemonOptions(options: Omit<DaemonOptions, "log">): {
  id: string;
  services: ManifestService[];
  auth: boolean;
} {
  const id = validateJobId(options.id ?? hostname(), "id", "host id");
  const services = parseServices(options.manifest);
  const auth = options.auth ?? true;
  // Without a token, only this machine's users may reach the API.
  if (!auth && !isLoopback(options.listenHost)) {
    throw new ValidationError(
      `Invalid listen address "${options.listenHost}": without token auth ` +
        "the API may listen on a loopback address only",
      "listen",
    );
  }
  return { id, services, auth };
}

async function openBackend(
  options: DaemonOptions,
  hostId: string,
  log: Context,
): Promise<Backend> {
  if ((options.backend ?? "process") === "process") {
    return new ProcessBackend({ stateDir: options.stateDir });
  }
  const docker = new DockerBackend({ ...options.docker, hostId, log });
  await docker.open();
  return docker;
}

/**
 * After recovery, so the containers of jobs taken over are left alone: a
 * container is explained by an active job (adopted) or, with
 * keep-containers, by any job's record. Returns the job ids of the
 * unexplained containers left in place (without `force`).
 */
function cleanupContainers(
  docker: DockerBackend,
  host: Host,
  options: DaemonOptions,
): Promise<string[]> {
  const keep = options.docker?.keepContainers ?? false;
  return docker.cleanup(
    options.force ?? false,
    (jobId, running) =>
      host.isActive(jobId) || (keep && !running && host.has(jobId)),
  );
}

function parseServices(manifest: DaemonOptions["manifest"]): ManifestService[] {
  if (!manifest) return [];
  return parseManifest(manifest.text, manifest.source);
}

/**
 * Deals with jobs an earlier daemon left running on this state dir: stops
 * them with `force`, else reports them and returns their ids, which new
 * jobs may not take (their output files would be overwritten).
 */
async function handleLeftovers(
  options: DaemonOptions,
  adopted: ReadonlySet<string>,
  graceMs: number,
  log: Context,
): Promise<string[]> {
  const leftovers = findLeftoverJobs(options.stateDir).filter(
    (job) => !adopted.has(job.id),
  );
  if (leftovers.length === 0) return [];
  const ids = leftovers.map((j) => j.id).join(",");
  const hosts = [...new Set(leftovers.map((j) => j.hostId))].join(",");
  if (!options.force) {
    log.log({
      fn: "daemon",
      at: "leftover_jobs",
      count: leftovers.length,
      "job.ids": ids,
      "host.ids": hosts,
      resolution: "left running; restart with --force to stop them",
    });
    return leftovers.map((j) => j.id);
  }
  const timer = log.timer({
    fn: "stop_leftovers",
    "job.ids": ids,
    "host.ids": hosts,
  });
  try {
    await stopLeftoverJobs(options.stateDir, leftovers, graceMs);
  } catch (err) {
    log.log({ fn: "stop_leftovers", at: "error", err: errorMessage(err) });
  }
  timer.finish();
  return [];
}

function stringEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined) out[key] = value;
  }
  return out;
}
