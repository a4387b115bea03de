/**
 * The host's job table: every job record, changed only through the status
 * machine in job.ts, with one event emitted per transition. It holds no
 * processes; the host drives it (host.ts, and runner.ts, recovery.ts and
 * removal.ts for starting, recovering and removing jobs).
 *
 * Each change is saved in the host store first, the record and its event
 * in one transaction; only then does the table change its map and publish
 * the event. A failed save throws and leaves memory as it was, so nothing
 * is ever reported that a restart would forget. Records an earlier daemon
 * saved are loaded at construction; an ended one may be replaced by a new
 * job with its id (a manifest's services keep their ids across restarts).
 */
import { ConflictError, NotFoundError } from "../errors.js";
import type { EventLog, JobEventType } from "./events.js";
import {
  canTransition,
  isFinal,
  type JobRecord,
  type JobSpec,
  type JobStatus,
} from "./job.js";
import type { HostStore } from "./store.js";

export interface ExitInfo {
  /** Exit code; null when the job was killed by a signal or is unknown. */
  exitStatus: number | null;
  signal: string | null;
  /** The kernel killed the job for using too much memory. */
  oomKilled?: boolean;
  /** Why the exit is unknown or odd (the container vanished). */
  error?: string;
  /** When the job ended, when known better than "now" (ISO 8601). */
  endedAt?: string;
  /**
   * When the job started, for a job the host recorded as starting but
   * never heard start (ISO 8601; the shim's exit.json says).
   */
  startedAt?: string;
}

/** See the module comment. */
export class JobTable {
  readonly #jobs = new Map<string, JobRecord>();
  readonly #events: EventLog;
  readonly #store: HostStore;
  readonly #hostId: string;
  /** Ids of the records an earlier daemon left. */
  readonly #inherited = new Set<string>();

  /** Loads every record the store holds, oldest first. */
  constructor(hostId: string, events: EventLog, store: HostStore) {
    this.#hostId = hostId;
    this.#events = events;
    this.#store = store;
    for (const record of store.jobs()) {
      this.#jobs.set(record.id, record);
      this.#inherited.add(record.id);
    }
  }

  /**
   * Adds a job in status `starting`; emits `create`. An ended job of the
   * same id is replaced when an earlier daemon left it, or when asked
   * (`replaceEnded`); any other existing id is a ConflictError.
   */
  add(
    id: string,
    spec: JobSpec,
    ports: number[],
    replaceEnded = false,
  ): JobRecord {
    const old = this.#jobs.get(id);
    const replaces =
      old !== undefined &&
      (replaceEnded ? isFinal(old.status) : this.replaceable(id));
    if (old !== undefined && !replaces) {
      throw new ConflictError(`Cannot create job "${id}": it exists already`);
    }
    const record: JobRecord = {
      id,
      host_id: this.#hostId,
      status: "starting",
      config: spec.config,
      metadata: spec.metadata ?? {},
      pid: null,
      ports,
      exit_status: null,
      signal: null,
      oom_killed: false,
      error: null,
      created_at: new Date().toISOString(),
      started_at: null,
      ended_at: null,
    };
    const event = this.#store.transaction(() => {
      if (replaces) this.#store.replaceJob(record);
      else this.#store.saveJob(record);
      return this.#events.append("create", record);
    });
    // A replaced record moves to the end of the creation order.
    this.#jobs.delete(id);
    this.#inherited.delete(id);
    this.#jobs.set(id, record);
    this.#events.publish(event);
    return record;
  }

  has(id: string): boolean {
    return this.#jobs.has(id);
  }

  /**
   * Whether a plain create of `id` would replace the job that has it: an
   * ended job an earlier daemon left.
   */
  replaceable(id: string): boolean {
    const job = this.#jobs.get(id);
    return job !== undefined && this.#inherited.has(id) && isFinal(job.status);
  }

  /** A copy of one job's record; NotFoundError when unknown. */
  get(id: string): JobRecord {
    return structuredClone(this.#live(id));
  }

  /** Copies of all records, oldest first. */
  list(): JobRecord[] {
    return [...this.#jobs.values()].map((job) => structuredClone(job));
  }

  /** Records that haven't reached a final status, oldest first. */
  unfinished(): JobRecord[] {
    return this.list().filter((job) => !isFinal(job.status));
  }

  /** Records the ports a starting job was given. */
  setPorts(id: string, ports: number[]): void {
    this.#save({ ...this.#live(id), ports: [...ports] });
  }

  /** Records a pid learned after the start; no event. */
  setPid(id: string, pid: number): void {
    this.#save({ ...this.#live(id), pid });
  }

  /** `starting` -> `running`; emits `start`. Started now unless told. */
  setRunning(id: string, pid: number | null, startedAt?: string): JobRecord {
    const job = this.#transition(id, "running");
    job.pid = pid;
    job.started_at = startedAt ?? new Date().toISOString();
    return this.#save(job, "start");
  }

  /** `starting` -> `failed` with the reason; emits `error`. */
  setFailed(id: string, error: string): JobRecord {
    const job = this.#transition(id, "failed");
    job.error = error;
    job.ended_at = new Date().toISOString();
    return this.#save(job, "error");
  }

  /**
   * Records how a running job ended; emits `stop`. The status follows from
   * the exit and whether somebody asked the job to stop.
   */
  setExited(id: string, exit: ExitInfo, stopRequested: boolean): JobRecord {
    const status: JobStatus = stopRequested
      ? "stopped"
      : exit.exitStatus === 0
        ? "done"
        : "crashed";
    const job = this.#transition(id, status);
    job.exit_status = exit.exitStatus;
    job.signal = exit.signal;
    job.oom_killed = exit.oomKilled ?? false;
    if (exit.error !== undefined) job.error = exit.error;
    // Never before the start: the two may come from different clocks (the
    // host's, a shim's or an engine's) that disagree by a little.
    const endedAt = exit.endedAt ?? new Date().toISOString();
    job.ended_at =
      job.started_at !== null &&
      Date.parse(endedAt) < Date.parse(job.started_at)
        ? job.started_at
        : endedAt;
    return this.#save(job, "stop");
  }

  /**
   * Forgets an ended job: its record leaves the store, then memory. No
   * event: the job's terminal event was its last. ConflictError when the
   * job has not ended.
   */
  remove(id: string): JobRecord {
    const job = this.#live(id);
    if (!isFinal(job.status)) {
      throw new ConflictError(
        `Cannot remove job "${id}": it is ${job.status}; stop it first`,
      );
    }
    this.#store.transaction(() => this.#store.removeJob(id));
    this.#jobs.delete(id);
    this.#inherited.delete(id);
    return job;
  }

  /**
   * When each ended job ended (ms since the epoch), oldest job first,
   * without copying the records: the retention sweep reads this often.
   */
  endedTimes(): { id: string; status: JobStatus; endedAtMs: number }[] {
    const out: { id: string; status: JobStatus; endedAtMs: number }[] = [];
    for (const job of this.#jobs.values()) {
      if (!isFinal(job.status)) continue;
      // A record without an end time (none is written so) counts from its
      // creation, so it is still removed in time.
      const endedAtMs = Date.parse(job.ended_at ?? job.created_at);
      out.push({ id: job.id, status: job.status, endedAtMs });
    }
    return out;
  }

  /** Whether a job exists and has not ended. */
  isActive(id: string): boolean {
    const job = this.#jobs.get(id);
    return job !== undefined && !isFinal(job.status);
  }

  #live(id: string): JobRecord {
    const job = this.#jobs.get(id);
    if (!job) throw new NotFoundError(`Job "${id}" not found`);
    return job;
  }

  // A copy of the record in its new status, for #save to store.
  #transition(id: string, to: JobStatus): JobRecord {
    const job = this.#live(id);
    if (!canTransition(job.status, to)) {
      throw new ConflictError(
        `Cannot move job "${id}" from ${job.status} to ${to}`,
      );
    }
    return { ...structuredClone(job), status: to };
  }

  // Stores the record (and its event) first, then takes it into the map
  // and publishes: a failed save changes nothing in memory.
  #save(job: JobRecord, event?: JobEventType): JobRecord {
    const stored = this.#store.transaction(() => {
      this.#store.saveJob(job);
      return event === undefined ? undefined : this.#events.append(event, job);
    });
    this.#jobs.set(job.id, job);
    if (stored !== undefined) this.#events.publish(stored);
    return job;
  }
}
