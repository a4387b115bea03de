/**
 * The host supervisor: takes job specs, allocates ports, builds each job's
 * environment, starts it through a backend, watches it end, and keeps the
 * job table and event log in step. Everything the API and the manifest
 * runner do to jobs goes through here.
 *
 * This file checks requests and answers for jobs; the work is done by the
 * runner (runner.ts: start, stop, watch to the end; one handle per live
 * job in active.ts), recovery after a crash (recovery.ts) and the removal
 * of ended jobs (removal.ts).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { ConflictError, errorMessage, UnavailableError } from "../errors.js";
import type { Context } from "../log/index.js";
import type { ActiveJob } from "./active.js";
import { AttachWaiters } from "./attach/waiters.js";
import type { Backend, BackendStatus, RunningJob, TtySize } from "./backend.js";
import { redactSpec } from "./env.js";
import { EventLog } from "./events.js";
import { jobArgv, newJobId, type JobRecord, type JobSpec } from "./job.js";
import type { JobOutput } from "./output.js";
import type { PortPool } from "./ports.js";
import { recoverJobs } from "./recovery.js";
import { removeEndedJob, type Removed, type RemoveReason } from "./removal.js";
import { JobRunner } from "./runner.js";
import { JobTable } from "./state.js";
import { HostStore } from "./store.js";

export type { RemoveReason } from "./removal.js";

/** Default time between SIGTERM and SIGKILL when stopping a job. */
export const DEFAULT_GRACE_MS = 10_000;

export interface HostOptions {
  id: string;
  stateDir: string;
  backend: Backend;
  ports: PortPool;
  log: Context;
  /** Passed to every job as EXTERNAL_IP when set. */
  externalIp?: string;
  /**
   * More variables the host gives every job (LORNE_ETCD on a cluster
   * host); their names must be reserved (env.ts's RESERVED).
   */
  jobEnv?: Record<string, string>;
  attributes?: Record<string, string>;
  graceMs?: number;
  /** Events kept for resuming; default DEFAULT_EVENT_HISTORY. */
  eventHistory?: number;
  /**
   * Durable state: jobs, events and (through `ports`, which must have
   * been made with the same store) port holdings. Default: in memory.
   */
  store?: HostStore;
}

export interface CreateOptions {
  /** Ports allocated already (the manifest runner renders with them). */
  ports?: number[];
  /**
   * Replace an ended job of this id (a cluster job id submitted again
   * once the cluster forgot the old one); a job not ended is never
   * replaced.
   */
  replaceEnded?: boolean;
}

/** See the module comment. */
export class Host {
  readonly id: string;
  readonly events: EventLog;
  readonly attachWaiters = new AttachWaiters();
  readonly startedAt = new Date().toISOString();
  readonly attributes: Record<string, string>;
  readonly externalIp: string | undefined;
  readonly #jobs: JobTable;
  readonly #runner: JobRunner;
  readonly #leftoverIds = new Set<string>();
  readonly #options: HostOptions;
  readonly #graceMs: number;
  readonly #log: Context;

  constructor(options: HostOptions) {
    this.id = options.id;
    this.attributes = { ...options.attributes };
    this.externalIp = options.externalIp;
    this.#options = options;
    this.#graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    const store = options.store ?? HostStore.memory();
    this.events = new EventLog({ history: options.eventHistory, store });
    this.#log = options.log.child({ fn: "host" });
    this.#jobs = new JobTable(options.id, this.events, store);
    this.#runner = new JobRunner({
      backend: options.backend,
      ports: options.ports,
      jobs: this.#jobs,
      jobsDir: this.jobsDir,
      graceMs: this.#graceMs,
      log: this.#log,
      env: {
        hostId: options.id,
        externalIp: options.externalIp,
        extra: options.jobEnv,
      },
    });
    mkdirSync(this.jobsDir, { recursive: true });
    this.#runner.releaseEnded();
  }

  get backendName(): string {
    return this.#options.backend.name;
  }

  get backendStatus(): BackendStatus {
    return this.#options.backend.status();
  }

  get graceMs(): number {
    return this.#graceMs;
  }

  get jobsDir(): string {
    return join(this.#options.stateDir, "jobs");
  }

  get ports(): PortPool {
    return this.#options.ports;
  }

  /**
   * Creates and starts a job. Resolves with its record once it is running,
   * or has failed to start (status `failed`, with `error`). Rejects only
   * for requests that never became a job (a duplicate id).
   */
  async create(spec: JobSpec, options: CreateOptions = {}): Promise<JobRecord> {
    const id = spec.id ?? newJobId();
    const log = this.#log.child({ "job.id": id });
    if (this.#runner.closing) {
      throw new UnavailableError("Cannot create job: host is shutting down");
    }
    this.#options.backend.validate(spec.config);

    if (this.#leftoverIds.has(id)) {
      throw new ConflictError(
        `Cannot create job "${id}": a process an earlier daemon left running ` +
          "has this id; stop it or restart the host with --force",
      );
    }

    // Secret env values reach the backend only, never the record.
    const record = this.#jobs.add(
      id,
      redactSpec(spec),
      options.ports ?? [],
      options.replaceEnded === true,
    );
    let active: ActiveJob;
    try {
      active = this.#runner.open(id, log);
    } catch (err) {
      this.#runner.release(options.ports ?? [], log);
      const reason = `Cannot create output files for job "${id}": ${errorMessage(err)}`;
      log.log({ at: "failed", err: reason });
      const failed = structuredClone(this.#jobs.setFailed(id, reason));
      this.attachWaiters.created(id); // they learn of the failure
      return failed;
    }
    // Attachers waiting for this id subscribe now, before any output.
    this.attachWaiters.created(id);
    log.log({ at: "create", "job.cmd": jobArgv(spec.config).join(" ") });

    return this.#runner.start(
      active,
      { spec, record, allocatePorts: options.ports === undefined },
      log,
    );
  }

  /**
   * The running job's handle once its start has been decided: null when it
   * failed or has ended. NotFoundError when unknown.
   */
  async running(id: string): Promise<RunningJob | null> {
    this.#jobs.get(id);
    const active = this.#runner.active(id);
    if (!active) return null;
    await active.started;
    return this.#runner.active(id)?.running ?? null;
  }

  /**
   * The address other jobs reach a running job at, when the backend gives
   * it one of its own (a container); null otherwise.
   */
  async address(id: string): Promise<string | null> {
    const running = await this.running(id);
    return (await running?.address) ?? null;
  }

  /**
   * Resolves with the job's final record once it has ended. The record is
   * read as the end settles, before a removal can run, so a caller that
   * asked while the job existed gets it even if the job is removed later.
   */
  async ended(id: string): Promise<JobRecord> {
    const record = this.#jobs.get(id);
    const active = this.#runner.active(id);
    if (!active) return record;
    await active.settled;
    return this.#jobs.get(id);
  }

  /**
   * Sets a TTY job's terminal size: at once when it runs, at its start
   * when it is still starting. Ignored for other jobs.
   */
  resize(id: string, size: TtySize): void {
    this.#jobs.get(id);
    this.#runner.active(id)?.resize(size);
  }

  /** Whether a job with this id exists (in any status). */
  has(id: string): boolean {
    return this.#jobs.has(id);
  }

  /**
   * Whether creating `id` would replace the job that has it (an ended job
   * of an earlier daemon, see JobTable.add) rather than be refused.
   */
  replaceable(id: string): boolean {
    return this.#jobs.replaceable(id);
  }

  /** Whether the job exists and has not ended. */
  isActive(id: string): boolean {
    return this.#jobs.isActive(id);
  }

  /** One job's record; NotFoundError when unknown. */
  get(id: string): JobRecord {
    return this.#jobs.get(id);
  }

  list(): JobRecord[] {
    return this.#jobs.list();
  }

  /**
   * Records an earlier daemon left in a status that is not final: the
   * jobs that recovery must re-adopt or end.
   */
  unfinished(): JobRecord[] {
    return this.#jobs.unfinished();
  }

  /** The captured output of a job; NotFoundError when unknown. */
  output(id: string): JobOutput {
    return this.#runner.output(this.#jobs.get(id));
  }

  /**
   * Refuses these ids for new jobs: processes an earlier daemon left
   * running that no record explains still use their directories.
   */
  refuseIds(ids: Iterable<string>): void {
    for (const id of ids) this.#leftoverIds.add(id);
  }

  /**
   * Decides every job an earlier daemon left unfinished (after a crash;
   * recovery.ts): taken over when still running, else recorded as ended
   * or failed. Called once, before the API serves. Resolves with the ids
   * of the jobs taken over.
   */
  async recover(): Promise<string[]> {
    const adopted = await recoverJobs({
      jobs: this.#jobs,
      backend: this.#options.backend,
      runner: this.#runner,
      jobsDir: this.jobsDir,
      log: this.#log,
    });
    this.#runner.releaseEnded();
    return adopted;
  }

  /**
   * Stops a job: SIGTERM to its process group, SIGKILL after the grace
   * period. Resolves with the final record once the job has ended.
   * Idempotent: stopping an ended job returns its record.
   */
  stop(id: string): Promise<JobRecord> {
    return this.#runner.stop(id);
  }

  /**
   * Removes an ended job (removal.ts): its directory, its record and what
   * the host holds for it; `deleted` settles once the directory is
   * deleted, and never rejects. ConflictError when the job has not ended;
   * NotFoundError when unknown.
   */
  remove(id: string, reason: RemoveReason = "request"): Removed {
    return removeEndedJob({
      id,
      reason,
      jobs: this.#jobs,
      runner: this.#runner,
      stateDir: this.#options.stateDir,
      jobsDir: this.jobsDir,
      log: this.#log,
    });
  }

  /**
   * When each ended job ended, oldest job first; see JobTable.endedTimes.
   */
  endedTimes(): ReturnType<JobTable["endedTimes"]> {
    return this.#jobs.endedTimes();
  }

  /**
   * Sends a signal to a running job. ConflictError when the job is not
   * running; the signal name must be one this system knows.
   */
  signal(id: string, signal: NodeJS.Signals): JobRecord {
    const record = this.#jobs.get(id);
    const running = this.#runner.active(id)?.running;
    if (record.status !== "running" || !running) {
      throw new ConflictError(
        `Cannot signal job "${id}": it is ${record.status}, not running`,
      );
    }
    this.#log.log({ at: "signal", "job.id": id, signal });
    running.signal(signal);
    return record;
  }

  /** Stops every job, then closes the backend. Idempotent. */
  async close(): Promise<void> {
    const timer = this.#log.timer({
      fn: "close",
      jobs: this.#runner.activeCount,
    });
    await this.#runner.close();
    await this.#options.backend.close();
    timer.finish();
  }
}
