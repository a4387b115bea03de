/**
 * The host's job table: every job record, changed only through the status
 * machine in job.ts, with one event emitted per transition. It holds no
 * processes; the supervisor (host.ts) drives it.
 */
import { ConflictError, NotFoundError } from "../errors.js";
import type { EventLog } from "./events.js";
import {
  canTransition,
  isFinal,
  type JobRecord,
  type JobSpec,
  type JobStatus,
} from "./job.js";

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
}

/** See the module comment. */
export class JobTable {
  readonly #jobs = new Map<string, JobRecord>();
  readonly #events: EventLog;
  readonly #hostId: string;

  constructor(hostId: string, events: EventLog) {
    this.#hostId = hostId;
    this.#events = events;
  }

  /** Adds a job in status `starting`; emits `create`. */
  add(id: string, spec: JobSpec, ports: number[]): JobRecord {
    if (this.#jobs.has(id)) {
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
    this.#jobs.set(id, record);
    this.#events.emit("create", record);
    return record;
  }

  has(id: string): boolean {
    return this.#jobs.has(id);
  }

  /** A copy of one job's record; NotFoundError when unknown. */
  get(id: string): JobRecord {
    return structuredClone(this.#live(id));
  }

  /** Copies of all records, oldest first. */
  list(): JobRecord[] {
    return [...this.#jobs.values()].map((job) => structuredClone(job));
  }

  /** Records the ports a starting job was given. */
  setPorts(id: string, ports: number[]): void {
    this.#live(id).ports = [...ports];
  }

  /** Records a pid learned after the start; no event. */
  setPid(id: string, pid: number): void {
    this.#live(id).pid = pid;
  }

  /** `starting` -> `running`; emits `start`. */
  setRunning(id: string, pid: number | null): JobRecord {
    const job = this.#transition(id, "running");
    job.pid = pid;
    job.started_at = new Date().toISOString();
    this.#events.emit("start", job);
    return job;
  }

  /** `starting` -> `failed` with the reason; emits `error`. */
  setFailed(id: string, error: string): JobRecord {
    const job = this.#transition(id, "failed");
    job.error = error;
    job.ended_at = new Date().toISOString();
    this.#events.emit("error", job);
    return job;
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
    job.ended_at = exit.endedAt ?? new Date().toISOString();
    this.#events.emit("stop", job);
    return job;
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

  #transition(id: string, to: JobStatus): JobRecord {
    const job = this.#live(id);
    if (!canTransition(job.status, to)) {
      throw new ConflictError(
        `Cannot move job "${id}" from ${job.status} to ${to}`,
      );
    }
    job.status = to;
    return job;
  }
}
