/**
 * The cluster as the `lorne cluster` commands, tests and benchmarks use
 * it: submit, list, stop, services and a feed of changes, all through
 * etcd. Malformed values met on the way go to `onInvalid` and are left
 * out. Any failure to talk to etcd becomes one UnavailableError naming the
 * endpoints.
 */
import type { Etcd3, IKeyValue, Watcher } from "etcd3";

import { ConflictError, LorneError, NotFoundError } from "../errors.js";
import { newJobId } from "../host/job.js";
import { checkEtcd, openEtcd, unreachable } from "./etcd.js";
import { ClusterKeys, DEFAULT_PREFIX, type KeyKind } from "./keys.js";
import {
  isFinalState,
  parseJob,
  parseStatus,
  validateSubmission,
  type ClusterJob,
  type ClusterState,
  type ClusterStatus,
  type HostRegistration,
  type RetentionRecord,
  type ServiceInstance,
} from "./records.js";
import { readRetention } from "./retention.js";
import {
  readServices,
  readView,
  type ClusterView,
  type InvalidHandler,
} from "./view.js";

export interface ClusterClientOptions {
  endpoints: string[];
  prefix?: string;
  callTimeoutMs?: number;
  /** Default: ignore. */
  onInvalid?: InvalidHandler;
}

/** A host as `lorne cluster hosts` shows it. */
export interface HostSummary {
  host: HostRegistration;
  /** Jobs placed on it that have not ended. */
  active: number;
}

/** A job with its status, as `lorne cluster ps` shows it. */
export interface JobSummary {
  job: ClusterJob;
  status: ClusterStatus | null;
  /** The status's state, or `pending` before the first placement. */
  state: ClusterState;
}

/** One change under the prefix, for `lorne cluster events`. */
export interface ClusterChange {
  revision: string;
  type: "put" | "delete";
  kind: KeyKind;
  /** The key's segments after its kind: [host id], [host, job], ... */
  parts: string[];
  /** The parsed JSON value of a put; null for deletes and bad JSON. */
  value: unknown;
}

/** See the module comment. */
export class ClusterClient {
  readonly keys: ClusterKeys;
  readonly endpoints: string[];
  readonly #etcd: Etcd3;
  readonly #onInvalid: InvalidHandler;

  private constructor(etcd: Etcd3, options: ClusterClientOptions) {
    this.#etcd = etcd;
    this.endpoints = options.endpoints;
    this.keys = new ClusterKeys(options.prefix ?? DEFAULT_PREFIX);
    this.#onInvalid = options.onInvalid ?? (() => undefined);
  }

  /** Opens a client and checks that etcd answers. */
  static async open(options: ClusterClientOptions): Promise<ClusterClient> {
    const keys = new ClusterKeys(options.prefix ?? DEFAULT_PREFIX);
    const etcd = openEtcd(options);
    try {
      await checkEtcd(etcd, options.endpoints);
    } catch (err) {
      etcd.close();
      throw err;
    }
    return new ClusterClient(etcd, { ...options, prefix: keys.prefix });
  }

  /**
   * Submits a job (see records.ts's validateSubmission for the body).
   * ConflictError when a job with its id exists.
   */
  async submit(body: unknown): Promise<ClusterJob> {
    const job = validateSubmission(body, newJobId());
    const key = this.keys.job(job.id);
    const res = await this.#call(() =>
      this.#etcd
        .if(key, "Version", "==", 0)
        .then(this.#etcd.put(key).value(JSON.stringify(job)))
        .commit(),
    );
    if (!res.succeeded) {
      throw new ConflictError(
        `Cannot submit job "${job.id}": it exists already`,
      );
    }
    return job;
  }

  /** Live hosts, sorted by id. */
  async hosts(): Promise<HostSummary[]> {
    const view = await this.#view();
    const active = activeCounts(view);
    return [...view.hosts.values()]
      .map((h) => ({ host: h.value, active: active.get(h.value.id) ?? 0 }))
      .sort((a, b) => a.host.id.localeCompare(b.host.id));
  }

  /** Every job with its status, oldest submission first. */
  async jobs(): Promise<JobSummary[]> {
    const view = await this.#view();
    return [...view.jobs.values()]
      .map(({ value: job }) => {
        const status = view.statuses.get(job.id)?.value ?? null;
        return { job, status, state: status?.state ?? "pending" };
      })
      .sort(
        (a, b) =>
          a.job.submitted_at.localeCompare(b.job.submitted_at) ||
          a.job.id.localeCompare(b.job.id),
      );
  }

  /**
   * Asks for a job to stop: its host stops it, or the scheduler marks it
   * stopped if it was never placed. NotFoundError for an unknown id.
   */
  async stop(id: string): Promise<ClusterJob> {
    const key = this.keys.job(id);
    for (;;) {
      const res = await this.#call(() => this.#etcd.get(key).exec());
      const kv = res.kvs[0];
      if (!kv) throw new NotFoundError(`Job "${id}" not found`);
      const job = parseJob(kv.value.toString());
      if (job.desired === "stop") return job;
      const stopped: ClusterJob = { ...job, desired: "stop" };
      const put = await this.#call(() =>
        this.#etcd
          .if(key, "Mod", "==", kv.mod_revision)
          .then(this.#etcd.put(key).value(JSON.stringify(stopped)))
          .commit(),
      );
      if (put.succeeded) return stopped;
    }
  }

  /** One job's summary; NotFoundError when unknown. */
  async job(id: string): Promise<JobSummary> {
    const [jobRes, statusRes] = await this.#call(() =>
      Promise.all([
        this.#etcd.get(this.keys.job(id)).exec(),
        this.#etcd.get(this.keys.status(id)).exec(),
      ]),
    );
    const jobKv = jobRes.kvs[0];
    if (!jobKv) throw new NotFoundError(`Job "${id}" not found`);
    const job = parseJob(jobKv.value.toString());
    let status: ClusterStatus | null = null;
    const statusKv = statusRes.kvs[0];
    if (statusKv) {
      try {
        status = parseStatus(statusKv.value.toString());
      } catch (err) {
        this.#onInvalid(this.keys.status(id), err as Error);
      }
    }
    return { job, status, state: status?.state ?? "pending" };
  }

  /** Live instances of a service, or of every service. */
  services(name?: string): Promise<ServiceInstance[]> {
    return this.#call(() =>
      readServices(this.#etcd, this.keys, name, this.#onInvalid),
    );
  }

  /**
   * How long the leading scheduler keeps finished jobs; null when none
   * has said (no scheduler leads, or it is older than retention).
   */
  retention(): Promise<RetentionRecord | null> {
    return this.#call(() =>
      readRetention(this.#etcd, this.keys, this.#onInvalid),
    );
  }

  /** The scheduler that leads now, if any. */
  async leader(): Promise<string | null> {
    const res = await this.#call(() =>
      this.#etcd
        .getAll()
        .prefix(`${this.keys.election()}scheduler/`)
        .sort("Create", "Ascend")
        .limit(1)
        .exec(),
    );
    return res.kvs[0]?.value.toString() ?? null;
  }

  /**
   * Calls `onChange` for every change under the prefix from now on (or
   * after `afterRevision`). Resolves with the function that stops it.
   */
  async watch(
    onChange: (change: ClusterChange) => void,
    afterRevision?: string,
  ): Promise<() => Promise<void>> {
    let builder = this.#etcd.watch().prefix(this.keys.prefix);
    if (afterRevision !== undefined) {
      builder = builder.startRevision(String(BigInt(afterRevision) + 1n));
    }
    const watcher: Watcher = await this.#call(() => builder.create());
    const emit = (type: "put" | "delete") => (kv: IKeyValue) => {
      const parsed = this.keys.parse(kv.key.toString());
      if (!parsed || parsed.kind === "election") return;
      let value: unknown = null;
      if (type === "put") {
        try {
          value = JSON.parse(kv.value.toString());
        } catch {
          value = null;
        }
      }
      onChange({ revision: kv.mod_revision, type, ...parsed, value });
    };
    watcher.on("put", emit("put"));
    watcher.on("delete", emit("delete"));
    return () => watcher.cancel();
  }

  /** Waits until the job's state satisfies `done`, or the deadline. */
  async waitFor(
    id: string,
    done: (state: ClusterState) => boolean,
    timeoutMs: number,
  ): Promise<JobSummary> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const summary = await this.job(id);
      if (done(summary.state) || Date.now() >= deadline) return summary;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  close(): void {
    this.#etcd.close();
  }

  #view(): Promise<ClusterView> {
    return this.#call(() => readView(this.#etcd, this.keys, this.#onInvalid));
  }

  async #call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof LorneError) throw err;
      throw unreachable(this.endpoints, err);
    }
  }
}

function activeCounts(view: ClusterView): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { value: s } of view.statuses.values()) {
    if (isFinalState(s.state) || s.host_id === null) continue;
    if (view.hosts.get(s.host_id)?.lease !== s.session) continue;
    counts.set(s.host_id, (counts.get(s.host_id) ?? 0) + 1);
  }
  return counts;
}
