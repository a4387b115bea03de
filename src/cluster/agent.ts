/**
 * The host's side of the cluster. It registers the host under a lease kept
 * alive while the daemon runs (registration.ts), follows the host's own
 * assignments and the stop requests of its jobs (assignments.ts), runs
 * each assigned job through the in-process Host (no HTTP, so the API's
 * token does not apply), and writes each job's status back
 * (status-writer.ts).
 *
 * A registration is a session: the lease id is written into every
 * assignment, and an assignment for another session is not run. When the
 * lease is lost (etcd unreachable for longer than the TTL), the scheduler
 * treats this host's jobs as lost and may run them elsewhere, so the agent
 * stops them at once and registers again as a new session.
 */
import type { Etcd3, IKeyValue } from "etcd3";

import { errorMessage } from "../errors.js";
import type { JobEvent } from "../host/events.js";
import type { Host } from "../host/host.js";
import type { JobRecord } from "../host/job.js";
import type { Context } from "../log/index.js";
import { sleep } from "../sleep.js";
import {
  AssignmentWatch,
  readAssignedJob,
  type AssignedJob,
} from "./assignments.js";
import type { ClusterKeys } from "./keys.js";
import { parseAssignment, parseJob, type ClusterJob } from "./records.js";
import { hostRecord, Registration } from "./registration.js";
import { StatusWriter } from "./status-writer.js";
import { checkId } from "./view.js";

/** Wait between attempts to register again after losing the lease. */
const REREGISTER_MS = 1_000;

export interface AgentOptions {
  client: Etcd3;
  keys: ClusterKeys;
  host: Host;
  /** host:port where others reach this host's API. */
  advertise: string;
  /** Lease TTL of the registration, in seconds. */
  leaseTtlS: number;
  version: string;
  log: Context;
}

/** See the module comment. */
export class ClusterAgent {
  readonly #options: AgentOptions;
  readonly #log: Context;
  readonly #jobs = new Map<string, AssignedJob>();
  readonly #writer: StatusWriter;
  readonly #registration: Registration;
  #watch: AssignmentWatch | null = null;
  #unsubscribe: (() => void) | null = null;
  #paused = false;
  #closed: Promise<void> | null = null;
  /** Aborted by close: ends the attempts to register again. */
  readonly #closing = new AbortController();
  /** Whether the one loop registering again is running. */
  #reregistering = false;

  private constructor(options: AgentOptions) {
    this.#options = options;
    this.#log = options.log.child({ fn: "cluster_agent" });
    this.#registration = new Registration({
      client: options.client,
      keys: options.keys,
      record: hostRecord(options.host, options.advertise, options.version),
      leaseTtlS: options.leaseTtlS,
      onLost: (err) => this.#onLeaseLost(err),
      log: this.#log,
    });
    this.#writer = new StatusWriter({
      client: options.client,
      keys: options.keys,
      hostId: options.host.id,
      advertise: options.advertise,
      jobs: this.#jobs,
      session: () => this.#registration.session,
      onGone: (jobId) => this.#stopLocal(jobId),
      log: this.#log,
    });
  }

  /** Registers the host and starts following its assignments. */
  static async start(options: AgentOptions): Promise<ClusterAgent> {
    const agent = new ClusterAgent(options);
    agent.#unsubscribe = options.host.events.subscribe((event) =>
      agent.#onHostEvent(event),
    );
    try {
      await agent.#registration.register();
      await agent.#follow();
    } catch (err) {
      await agent.close();
      throw err;
    }
    return agent;
  }

  /** The lease id of the current registration. */
  get session(): string | null {
    return this.#registration.session;
  }

  /**
   * Stops following assignments and reporting statuses; the daemon calls
   * it before stopping its jobs, so that their exits are not reported as
   * ends: once the lease is revoked, the scheduler sees them as lost.
   */
  async pause(): Promise<void> {
    this.#paused = true;
    this.#writer.pause();
    await this.#cancelWatch();
    await this.#writer.settled();
  }

  /** Pauses, then revokes the lease (the registration and services go). */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing.abort();
      await this.pause();
      this.#unsubscribe?.();
      await this.#registration.revoke();
    })();
    return this.#closed;
  }

  async #follow(): Promise<void> {
    const { client, keys, host } = this.#options;
    if (this.#paused) return;
    // Current before it starts, so that a pause or close meanwhile (or a
    // lease lost) cancels it.
    const watch = new AssignmentWatch({
      client,
      keys,
      hostId: host.id,
      log: this.#log,
      onAssigned: (jobId, kv) => void this.#onAssignment(jobId, kv),
      onUnassigned: (jobId) => this.#onUnassigned(jobId),
      onJobChange: (jobId, kv) => this.#onJobChange(jobId, kv),
    });
    this.#watch = watch;
    try {
      await watch.start();
    } catch (err) {
      if (this.#watch === watch) this.#watch = null;
      throw err;
    }
  }

  async #onAssignment(jobId: string, kv: IKeyValue): Promise<void> {
    const { client, keys, host } = this.#options;
    const key = kv.key.toString();
    if (this.#paused || this.#jobs.has(jobId)) return;
    let attempt: number;
    try {
      const assignment = checkId(
        parseAssignment(kv.value.toString()),
        jobId,
        "job_id",
      );
      if (assignment.host_id !== host.id) {
        throw new Error(
          `Invalid host_id: "${assignment.host_id}" is not this host`,
        );
      }
      // An assignment for an earlier session: the scheduler sees it lost.
      if (assignment.session !== this.#registration.session) return;
      attempt = assignment.attempt;
    } catch (err) {
      this.#log.log({
        at: "invalid_value",
        key,
        err: errorMessage(err),
        resolution: "skipped",
      });
      return;
    }
    const job = await readAssignedJob(jobId, {
      client,
      keys,
      log: this.#log,
      stopped: () => this.#paused,
    });
    if (this.#paused || this.#jobs.has(jobId) || job === null) return;

    this.#jobs.set(jobId, {
      assignmentKey: key,
      createRevision: kv.create_revision,
      attempt,
      service: job instanceof Error ? null : job.service,
    });
    const log = this.#log.child({ "job.id": jobId, attempt });
    if (job instanceof Error) {
      // Placed, but not runnable: say so in its status, not only here.
      log.log({ at: "invalid_value", key: keys.job(jobId), err: job.message });
      this.#writer.report(jobId, {
        ...blankRecord(jobId, host.id),
        error: `Cannot run job: ${job.message}`,
      });
      return;
    }
    if (job.desired === "stop") {
      log.log({ at: "not_started", reason: "stop requested" });
      this.#writer.report(jobId, {
        ...blankRecord(jobId, host.id),
        status: "stopped",
      });
      return;
    }
    log.log({ at: "assigned" });
    try {
      // An ended job of this id is an earlier one the cluster has since
      // forgotten (retention): this assignment is the new one.
      await host.create({ ...job.spec, id: jobId }, { replaceEnded: true });
    } catch (err) {
      // The host refused the job outright (its id is running here).
      log.log({ at: "refused", err: errorMessage(err) });
      this.#writer.report(jobId, {
        ...blankRecord(jobId, host.id),
        status: "failed",
        error: errorMessage(err),
      });
    }
  }

  #onUnassigned(jobId: string): void {
    if (!this.#jobs.delete(jobId)) return;
    this.#log.log({ at: "unassigned", "job.id": jobId });
    this.#stopLocal(jobId);
  }

  #onJobChange(jobId: string, kv: IKeyValue): void {
    if (!this.#jobs.has(jobId)) return;
    let job: ClusterJob;
    try {
      job = checkId(parseJob(kv.value.toString()), jobId, "id");
    } catch (err) {
      this.#log.log({
        at: "invalid_value",
        key: kv.key.toString(),
        err: errorMessage(err),
        resolution: "skipped",
      });
      return;
    }
    if (job.desired === "stop") this.#stopLocal(jobId);
  }

  #stopLocal(jobId: string): void {
    const { host } = this.#options;
    if (!host.isActive(jobId)) return;
    host.stop(jobId).catch((err: unknown) =>
      this.#log.log({
        at: "stop_error",
        "job.id": jobId,
        err: errorMessage(err),
      }),
    );
  }

  #onHostEvent(event: JobEvent): void {
    if (this.#paused || !this.#jobs.has(event.job_id)) return;
    this.#writer.report(event.job_id, event.job);
  }

  #onLeaseLost(err: Error): void {
    if (this.#closed) return;
    const ids = [...this.#jobs.keys()];
    this.#log.log({
      at: "lease_lost",
      err: errorMessage(err),
      "job.ids": ids.join(","),
      resolution: "stopping cluster jobs, registering again",
    });
    this.#jobs.clear();
    this.#writer.clear();
    for (const id of ids) this.#stopLocal(id);
    // One loop at a time: it goes on until a registration holds.
    if (this.#reregistering) return;
    this.#reregistering = true;
    void this.#reregister().finally(() => (this.#reregistering = false));
  }

  async #reregister(): Promise<void> {
    const { signal } = this.#closing;
    await this.#cancelWatch();
    while (!signal.aborted) {
      await sleep(REREGISTER_MS, signal);
      if (signal.aborted) return;
      try {
        await this.#registration.register();
      } catch (err) {
        this.#log.log({ at: "register_error", err: errorMessage(err) });
        continue;
      }
      if (signal.aborted) {
        // Closed while registering: close's revoke may have come first.
        await this.#registration.revoke();
        return;
      }
      try {
        await this.#follow();
        return;
      } catch (err) {
        this.#log.log({ at: "register_error", err: errorMessage(err) });
        // Registered but following nothing: the next attempt takes a new
        // lease, so this one must not be kept alive.
        await this.#registration.revoke();
      }
    }
  }

  async #cancelWatch(): Promise<void> {
    const watch = this.#watch;
    this.#watch = null;
    await watch?.cancel();
  }
}

// A record for a job the host never created (refused or not started).
function blankRecord(id: string, hostId: string): JobRecord {
  const now = new Date().toISOString();
  return {
    id,
    host_id: hostId,
    status: "failed",
    config: { cmd: [] },
    metadata: {},
    pid: null,
    ports: [],
    exit_status: null,
    signal: null,
    oom_killed: false,
    error: null,
    created_at: now,
    started_at: null,
    ended_at: now,
  };
}
