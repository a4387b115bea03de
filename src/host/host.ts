/**
 * The host supervisor: takes job specs, allocates ports, builds each job's
 * environment, starts it through a backend, watches it end, and keeps the
 * job table and event log in step. Everything the API and the manifest
 * runner do to jobs goes through here.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";

import {
  ConflictError,
  errorMessage,
  NotFoundError,
  UnavailableError,
} from "../errors.js";
import type { Context } from "../log/index.js";
import { AttachWaiters } from "./attach/waiters.js";
import type { Backend, BackendStatus, RunningJob, TtySize } from "./backend.js";
import { jobEnv, redactSpec } from "./env.js";
import { EventLog } from "./events.js";
import {
  isFinal,
  jobArgv,
  newJobId,
  type JobRecord,
  type JobSpec,
} from "./job.js";
import { JobOutput } from "./output.js";
import type { PortPool } from "./ports.js";
import { EXIT_FILE } from "./shim/spec.js";
import { removeJobPid, writeJobPid } from "./statedir.js";
import { JobTable, type ExitInfo } from "./state.js";
import { HostStore } from "./store.js";
import { removeJobDir } from "./trash.js";

/** Default time between SIGTERM and SIGKILL when stopping a job. */
export const DEFAULT_GRACE_MS = 10_000;
/** Wait between attempts to record a job's exit in a failing store. */
const STATE_RETRY_MS = 1_000;

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
   * host); their names must be in job.ts's reserved set.
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

/**
 * Why a job is removed: asked for (`DELETE /jobs/:id?remove=1`), past the
 * retention period, or beyond the count of ended jobs kept.
 */
export type RemoveReason = "request" | "retention" | "max";

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

interface ActiveJob {
  running: RunningJob | null;
  output: JobOutput;
  stopRequested: boolean;
  /** The last terminal size asked for (TTY jobs). */
  ttySize?: TtySize;
  /** Settles once the backend's start has succeeded or failed. */
  started: Promise<void>;
  /** Settles when the job has reached a final status. */
  settled: Promise<void>;
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
  readonly #active = new Map<string, ActiveJob>();
  readonly #outputs = new Map<string, JobOutput>();
  readonly #leftoverIds = new Set<string>();
  readonly #options: HostOptions;
  readonly #graceMs: number;
  readonly #log: Context;
  #closing = false;

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
    mkdirSync(this.jobsDir, { recursive: true });
    this.#releaseEndedPorts();
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
    if (this.#closing) {
      throw new UnavailableError("Cannot create job: host is shutting down");
    }
    this.#options.backend.validate(spec.config);

    if (this.#leftoverIds.has(id)) {
      throw new ConflictError(
        `Cannot create job "${id}": a process an earlier daemon left running ` +
          "has this id; stop it or restart the host with --force",
      );
    }

    const preallocated = options.ports !== undefined;
    // Secret env values reach the backend only, never the record.
    const record = this.#jobs.add(
      id,
      redactSpec(spec),
      options.ports ?? [],
      options.replaceEnded === true,
    );
    let output: JobOutput;
    try {
      output = this.#openOutput(id, log);
    } catch (err) {
      this.#release(options.ports ?? [], log);
      const reason = `Cannot create output files for job "${id}": ${errorMessage(err)}`;
      log.log({ at: "failed", err: reason });
      const failed = structuredClone(this.#jobs.setFailed(id, reason));
      this.attachWaiters.created(id); // they learn of the failure
      return failed;
    }
    this.#outputs.set(id, output);
    let settle!: () => void;
    let markStarted!: () => void;
    const active: ActiveJob = {
      running: null,
      output,
      stopRequested: false,
      started: new Promise((resolve) => (markStarted = resolve)),
      settled: new Promise((resolve) => (settle = resolve)),
    };
    this.#active.set(id, active);
    // Attachers waiting for this id subscribe now, before any output.
    this.attachWaiters.created(id);
    log.log({ at: "create", "job.cmd": jobArgv(spec.config).join(" ") });

    let ports = record.ports;
    try {
      if (!preallocated) {
        ports = await this.ports.allocateFor(id, spec.config.tcp_ports ?? 0);
      }
      const env = jobEnv(spec, {
        jobId: id,
        hostId: this.id,
        ports,
        externalIp: this.externalIp,
        extra: this.#options.jobEnv,
      });
      const ttySize = active.ttySize;
      active.running = await this.#options.backend.start({
        job: { ...record, ports },
        argv: jobArgv(spec.config),
        env,
        output,
        ttySize,
        log,
      });
      // A resize that came in while the backend was starting the job.
      if (active.ttySize !== ttySize && active.ttySize) {
        active.running.resize?.(active.ttySize);
      }
    } catch (err) {
      this.#release(ports, log);
      output.end();
      this.#active.delete(id);
      markStarted();
      settle();
      log.log({ at: "failed", err: errorMessage(err) });
      return structuredClone(this.#jobs.setFailed(id, errorMessage(err)));
    }

    const running = active.running;
    markStarted();
    this.#recordExit(id, active, running.exited, ports, settle, log);
    let started: JobRecord;
    try {
      this.#jobs.setPorts(id, ports);
      started = this.#jobs.setRunning(id, running.pid);
    } catch (err) {
      // The state file refused the change: a job a restarted daemon could
      // not know of must not run on. If the failure is recorded, the job
      // is `failed`; else it stays `starting` for recovery to decide.
      log.log({
        at: "state_error",
        err: errorMessage(err),
        resolution: "kill",
      });
      running.signal("SIGKILL");
      try {
        this.#jobs.setFailed(
          id,
          `Cannot record the start: ${errorMessage(err)}`,
        );
      } catch {
        // The same store error; reported once, above and to the caller.
      }
      throw err;
    }
    writeJobPid(join(this.jobsDir, id), running.pid);
    log.log({ at: "start", "job.pid": running.pid, "job.ports": ports });
    if (active.stopRequested) this.#terminate(id, active);
    void running.pidLater?.then((pid) => {
      if (pid === null || !this.#jobs.isActive(id)) return;
      try {
        this.#jobs.setPid(id, pid);
      } catch (err) {
        log.log({ at: "state_error", err: errorMessage(err) });
      }
    });
    return structuredClone(started);
  }

  /**
   * The running job's handle once its start has been decided: null when it
   * failed or has ended. NotFoundError when unknown.
   */
  async running(id: string): Promise<RunningJob | null> {
    this.#jobs.get(id);
    const active = this.#active.get(id);
    if (!active) return null;
    await active.started;
    return this.#active.get(id)?.running ?? null;
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
    const active = this.#active.get(id);
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
    const active = this.#active.get(id);
    if (!active) return;
    active.ttySize = size;
    active.running?.resize?.(size);
  }

  /** Whether a job with this id exists (in any status). */
  has(id: string): boolean {
    return this.#jobs.has(id);
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
    const record = this.#jobs.get(id);
    let output = this.#outputs.get(id);
    // A job that ended under an earlier daemon: its files are still here.
    if (!output && isFinal(record.status)) {
      output = JobOutput.ended(join(this.jobsDir, id)) ?? undefined;
      if (output) this.#outputs.set(id, output);
    }
    if (!output) throw new NotFoundError(`Job "${id}" has no captured output`);
    return output;
  }

  /**
   * Refuses these ids for new jobs: processes an earlier daemon left
   * running that no record explains still use their directories.
   */
  refuseIds(ids: Iterable<string>): void {
    for (const id of ids) this.#leftoverIds.add(id);
  }

  /**
   * Decides every job an earlier daemon left unfinished (after a crash):
   * a job still running is taken over (its output, stop, attach and exit
   * work again, its ports stay held), a job that ended meanwhile is
   * recorded with how it ended, and a job that never got going is failed
   * with the reason. Called once, before the API serves. Resolves with
   * the ids of the jobs taken over.
   */
  async recover(): Promise<string[]> {
    const adopted: string[] = [];
    for (const job of this.#jobs.unfinished()) {
      const log = this.#log.child({ "job.id": job.id });
      const found = await this.#options.backend.adopt?.({
        job,
        dir: join(this.jobsDir, job.id),
        log,
      });
      if (found && "running" in found) {
        this.#adopt(job, found.running, found.output, log);
        adopted.push(job.id);
        continue;
      }
      if (found?.output) this.#outputs.set(job.id, found.output);
      this.#endUnwatched(job, found?.exit ?? null, log);
    }
    this.#releaseEndedPorts();
    return adopted;
  }

  /**
   * Stops a job: SIGTERM to its process group, SIGKILL after the grace
   * period. Resolves with the final record once the job has ended.
   * Idempotent: stopping an ended job returns its record.
   */
  async stop(id: string): Promise<JobRecord> {
    const record = this.#jobs.get(id);
    const active = this.#active.get(id);
    if (isFinal(record.status) || !active) return record;
    if (!active.stopRequested) {
      active.stopRequested = true;
      this.#log.log({ at: "stop", "job.id": id, grace_ms: this.#graceMs });
      this.#terminate(id, active);
    }
    await active.settled;
    return this.#jobs.get(id);
  }

  /**
   * Removes an ended job: its directory goes to the trash (trash.ts),
   * its record leaves the store and the table, and the host forgets its
   * output and ports; `deleted` settles once the directory is deleted
   * (never rejects: a failure is logged, and the next start retries).
   * ConflictError when the job has not ended; NotFoundError when unknown.
   * Logged as `at=removed_ended` with how long the job had been ended.
   *
   * Nothing waits for readers: an attach or `logs?follow=1` reader holds
   * the output files open and reads on to their end (a deleted file stays
   * readable through an open descriptor), and `ended()` callers already
   * hold the final record. The id is free for a new job at once.
   */
  remove(
    id: string,
    reason: RemoveReason = "request",
  ): { record: JobRecord; deleted: Promise<void> } {
    const record = this.#jobs.get(id);
    if (!isFinal(record.status) || this.#active.has(id)) {
      throw new ConflictError(
        `Cannot remove job "${id}": it is ${record.status}; stop it first`,
      );
    }
    const deleting = removeJobDir(
      this.#options.stateDir,
      join(this.jobsDir, id),
      () => this.#jobs.remove(id),
    );

    const endedAtMs = Date.parse(record.ended_at ?? record.created_at);
    this.#log.log({
      at: "removed_ended",
      "job.id": id,
      status: record.status,
      ended_for: `${(Date.now() - endedAtMs) / 1000}s`,
      reason,
    });
    this.#outputs.get(id)?.end();
    this.#outputs.delete(id);
    const held = this.ports.heldBy().get(id);
    if (held) this.#release(held, this.#log);
    const deleted = deleting.catch((err: unknown) => {
      this.#log.log({
        at: "trash_error",
        "job.id": id,
        err: errorMessage(err),
        resolution: "deleted at the next start",
      });
    });
    return { record, deleted };
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
    const running = this.#active.get(id)?.running;
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
    this.#closing = true;
    const timer = this.#log.timer({ fn: "close", jobs: this.#active.size });
    await Promise.all([...this.#active.keys()].map((id) => this.stop(id)));
    await this.#options.backend.close();
    timer.finish();
  }

  // Takes over a job that runs on from an earlier daemon.
  #adopt(
    job: JobRecord,
    running: RunningJob,
    output: JobOutput,
    log: Context,
  ): void {
    let settle!: () => void;
    const active: ActiveJob = {
      running,
      output,
      stopRequested: false,
      started: Promise.resolve(),
      settled: new Promise((resolve) => (settle = resolve)),
    };
    this.#outputs.set(job.id, output);
    this.#active.set(job.id, active);
    // A job that was still `starting` had its ports saved in the pool but
    // not yet in its record: the pool knows what it holds.
    const ports = this.ports.heldBy().get(job.id) ?? job.ports;
    if (job.status === "starting") {
      this.#jobs.setPorts(job.id, ports);
      this.#jobs.setRunning(job.id, running.pid);
    }
    this.#recordExit(job.id, active, running.exited, ports, settle, log);
    log.log({ at: "adopted", "job.pid": running.pid, "job.ports": ports });
  }

  // Records the end of a job no daemon saw end: how, when the backend
  // knows; else why not.
  #endUnwatched(job: JobRecord, exit: ExitInfo | null, log: Context): void {
    const known =
      exit !== null && (exit.exitStatus !== null || exit.signal !== null);
    if (job.status === "starting" && !known) {
      const reason =
        exit?.error ?? "The daemon stopped before the job had started";
      this.#jobs.setFailed(job.id, reason);
      log.log({ at: "failed", err: reason });
    } else {
      if (job.status === "starting") this.#jobs.setRunning(job.id, job.pid);
      const ended = this.#jobs.setExited(
        job.id,
        exit ?? {
          exitStatus: null,
          signal: null,
          error:
            `The job's exit status is unknown: the ${this.backendName} ` +
            "backend cannot take over jobs after a restart",
        },
        false,
      );
      log.log({
        at: "ended_while_down",
        status: ended.status,
        exit_status: ended.exit_status,
        signal: ended.signal,
        ...(ended.error === null ? {} : { err: ended.error }),
      });
    }
    removeJobPid(join(this.jobsDir, job.id));
  }

  // The backend's jobs may write their files themselves (shims): then
  // the host only watches them grow.
  #openOutput(id: string, log: Context): JobOutput {
    const dir = join(this.jobsDir, id);
    // A job replacing an ended one of the same id: how that one ended is
    // not how this one will.
    rmSync(join(dir, EXIT_FILE), { force: true });
    if (this.#options.backend.externalOutput) {
      mkdirSync(dir, { recursive: true });
      return JobOutput.view(dir);
    }
    return new JobOutput(dir, (err) =>
      log.log({
        at: "output_error",
        err: errorMessage(err),
        resolution: "dropping output",
      }),
    );
  }

  // Records a job's end, then frees its ports (a crash in between leaves
  // an ended job holding ports, which the next start releases). A store
  // that refuses the record is retried until it takes it or the host
  // closes, so a full disk delays the record instead of losing it.
  #recordExit(
    id: string,
    active: ActiveJob,
    exited: Promise<ExitInfo>,
    ports: number[],
    settle: () => void,
    log: Context,
  ): void {
    void exited.then(async (exit) => {
      this.#active.delete(id);
      removeJobPid(join(this.jobsDir, id));
      for (
        let attempt = 1;
        this.#jobs.get(id).status === "running";
        attempt++
      ) {
        try {
          const ended = this.#jobs.setExited(id, exit, active.stopRequested);
          log.log({
            at: "exit",
            status: ended.status,
            exit_status: exit.exitStatus,
            signal: exit.signal,
          });
        } catch (err) {
          log.log({ at: "state_error", err: errorMessage(err), attempt });
          if (this.#closing) break;
          await new Promise((resolve) => setTimeout(resolve, STATE_RETRY_MS));
        }
      }
      this.#release(ports, log);
      settle();
    });
  }

  // Returns ports; a store that refuses keeps them held until a restart.
  #release(ports: readonly number[], log: Context): void {
    try {
      this.ports.release(ports);
    } catch (err) {
      log.log({
        at: "state_error",
        err: errorMessage(err),
        "job.ports": ports,
      });
    }
  }

  // Ports saved as held by jobs that have ended or are unknown (a crash
  // between a job's end and its ports' release) go back to the pool.
  #releaseEndedPorts(): void {
    for (const [jobId, ports] of this.ports.heldBy()) {
      if (!this.#jobs.isActive(jobId)) this.#release(ports, this.#log);
    }
  }

  #terminate(id: string, active: ActiveJob): void {
    const running = active.running;
    if (!running) return; // still starting: create() calls us again
    running.signal(running.stopSignal ?? "SIGTERM");
    const kill = setTimeout(() => {
      this.#log.log({ at: "kill", "job.id": id, reason: "grace_expired" });
      running.signal("SIGKILL");
    }, this.#graceMs);
    void running.exited.then(() => clearTimeout(kill));
  }
}
