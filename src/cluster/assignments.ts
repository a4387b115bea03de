/**
 * How a host learns which cluster jobs are its own: it reads its current
 * assignments, then watches `assignments/<host>/` and `jobs/` from the
 * next revision, so that no change falls between the read and the watch.
 * It watches `jobs/` too, so that a stop request reaches the host even
 * when no scheduler leads. Also here: reading the job an assignment
 * names, tried again while etcd cannot be read.
 */
import type { Etcd3, IKeyValue, Watcher } from "etcd3";

import { errorMessage } from "../errors.js";
import type { Context } from "../log/index.js";
import { sleep } from "../sleep.js";
import type { ClusterKeys } from "./keys.js";
import { parseJob, type ClusterJob, type ServiceSpec } from "./records.js";
import { checkId } from "./view.js";

/** Attempts at reading a job that fails for lack of etcd. */
const READ_ATTEMPTS = 5;
/** Wait between attempts at reading a job. */
const READ_RETRY_MS = 500;

/** A cluster job this host runs. */
export interface AssignedJob {
  assignmentKey: string;
  /** The assignment key's create revision: a new placement is a new key. */
  createRevision: string;
  attempt: number;
  service: ServiceSpec | null;
}

export interface AssignmentWatchOptions {
  client: Etcd3;
  keys: ClusterKeys;
  hostId: string;
  log: Context;
  /** An assignment of this host's, current when read or put since. */
  onAssigned: (jobId: string, kv: IKeyValue) => void;
  /** An assignment of this host's was deleted. */
  onUnassigned: (jobId: string) => void;
  /** A job under `jobs/`, any host's, was put. */
  onJobChange: (jobId: string, kv: IKeyValue) => void;
}

export interface ReadJobOptions {
  client: Etcd3;
  keys: ClusterKeys;
  log: Context;
  /** Whether to give up early: no more attempts once it says so. */
  stopped: () => boolean;
}

/**
 * See the module comment. A cancel may come while the watch is starting:
 * the watches it has created are cancelled, and those it creates later
 * are cancelled as they come; nothing more is handed on.
 */
export class AssignmentWatch {
  readonly #options: AssignmentWatchOptions;
  readonly #watchers: Watcher[] = [];
  #cancelled = false;

  constructor(options: AssignmentWatchOptions) {
    this.#options = options;
  }

  /**
   * Reads the current assignments and hands each to `onAssigned`, then
   * watches both prefixes from the revision read. On failure the watches
   * created so far are cancelled. To be called once.
   */
  async start(): Promise<void> {
    const { client, keys, hostId } = this.#options;
    const prefix = keys.assignments(hostId);
    const current = await client.getAll().prefix(prefix).exec();
    if (this.#cancelled) return;
    const next = String(BigInt(current.header.revision) + 1n);
    for (const kv of current.kvs) {
      this.#options.onAssigned(kv.key.toString().slice(prefix.length), kv);
    }

    try {
      const assignments = await this.#watch(prefix, next);
      if (!assignments) return;
      assignments.on("put", (kv) =>
        this.#options.onAssigned(kv.key.toString().slice(prefix.length), kv),
      );
      assignments.on("delete", (kv) =>
        this.#options.onUnassigned(kv.key.toString().slice(prefix.length)),
      );
      const jobs = await this.#watch(keys.jobs(), next);
      if (!jobs) return;
      jobs.on("put", (kv) =>
        this.#options.onJobChange(
          kv.key.toString().slice(keys.jobs().length),
          kv,
        ),
      );
    } catch (err) {
      await this.cancel();
      throw err;
    }
  }

  /** Stops both watches, and a start in progress. Never rejects. */
  async cancel(): Promise<void> {
    this.#cancelled = true;
    await Promise.allSettled(this.#watchers.map((w) => w.cancel()));
  }

  // Watches a prefix from a revision; null when cancelled meanwhile (the
  // new watch is then cancelled at once).
  async #watch(prefix: string, revision: string): Promise<Watcher | null> {
    const watcher = await this.#options.client
      .watch()
      .prefix(prefix)
      .startRevision(revision)
      .create();
    if (this.#cancelled) {
      await watcher.cancel();
      return null;
    }
    watcher.on("error", (err) =>
      this.#options.log.log({ at: "watch_error", err: errorMessage(err) }),
    );
    this.#watchers.push(watcher);
    return watcher;
  }
}

/**
 * The job an assignment names: the job, an Error when it is missing or
 * malformed, or null when etcd could not be read (after retries).
 */
export async function readAssignedJob(
  jobId: string,
  options: ReadJobOptions,
): Promise<ClusterJob | Error | null> {
  const { client, keys, log } = options;
  for (let attempt = 1; ; attempt++) {
    let text: string | null;
    try {
      text = (await client.get(keys.job(jobId)).string()) ?? null;
    } catch (err) {
      log.log({
        at: "read_error",
        key: keys.job(jobId),
        attempt,
        err: errorMessage(err),
      });
      if (attempt >= READ_ATTEMPTS || options.stopped()) return null;
      await sleep(READ_RETRY_MS);
      continue;
    }
    if (text === null) return new Error(`${keys.job(jobId)} is missing`);
    try {
      return checkId(parseJob(text), jobId, "id");
    } catch (err) {
      return new Error(`${keys.job(jobId)}: ${errorMessage(err)}`);
    }
  }
}
