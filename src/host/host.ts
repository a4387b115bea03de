/**
 * The host supervisor: takes job specs, allocates ports, builds each job's
 * environment, starts it through a backend, watches it end, and keeps the
 * job table and event log in step. Everything the API and the manifest
 * runner do to jobs goes through here.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
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
import { redactSpec } from "./env.js";
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
import { JobTable } from "./state.js";

/** Default time between SIGTERM and SIGKILL when stopping a job. */
export const DEFAULT_GRACE_MS = 10_000;

export interface HostOptions {
  id: string;
  stateDir: string;
  backend: Backend;
  ports: PortPool;
  log: Context;
  /** Ids of jobs an earlier daemon left running; refused for new jobs. */
  leftoverIds?: Iterable<string>;
  /** Passed to every job as EXTERNAL_IP when set. */
  externalIp?: string;
  attributes?: Record<string, string>;
  graceMs?: number;
  /** Events kept for resuming; default DEFAULT_EVENT_HISTORY. */
  eventHistory?: number;
}

export interface CreateOptions {
  /** Ports allocated already (the manifest runner renders with them). */
  ports?: number[];
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
  readonly #leftoverIds: Set<string>;
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
    this.#leftoverIds = new Set(options.leftoverIds);
    this.events = new EventLog({ history: options.eventHistory });
    this.#log = options.log.child({ fn: "host" });
    this.#jobs = new JobTable(options.id, this.events);
    mkdirSync(this.jobsDir, { recursive: true });
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
    const record = this.#jobs.add(id, redactSpec(spec), options.ports ?? []);
    let output: JobOutput;
    try {
      output = new JobOutput(join(this.jobsDir, id), (err) =>
        log.log({
          at: "output_error",
          err: errorMessage(err),
          resolution: "dropping output",
        }),
      );
    } catch (err) {
      this.ports.release(options.ports ?? []);
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
        ports = await this.ports.allocate(spec.config.tcp_ports ?? 0);
      }
      const env = this.#jobEnv(id, spec, ports);
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
      this.ports.release(ports);
      output.end();
      this.#active.delete(id);
      markStarted();
      settle();
      log.log({ at: "failed", err: errorMessage(err) });
      return structuredClone(this.#jobs.setFailed(id, errorMessage(err)));
    }

    const running = active.running;
    markStarted();
    this.#jobs.setPorts(id, ports);
    const started = this.#jobs.setRunning(id, running.pid);
    this.#writePid(id, running.pid);
    log.log({ at: "start", "job.pid": running.pid, "job.ports": ports });
    if (active.stopRequested) this.#terminate(id, active);
    void running.pidLater?.then((pid) => {
      if (pid !== null && this.#jobs.isActive(id)) this.#jobs.setPid(id, pid);
    });
    void running.exited.then((exit) => {
      this.ports.release(ports);
      this.#active.delete(id);
      this.#removePid(id);
      const ended = this.#jobs.setExited(id, exit, active.stopRequested);
      log.log({
        at: "exit",
        status: ended.status,
        exit_status: exit.exitStatus,
        signal: exit.signal,
      });
      settle();
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

  /** Resolves with the job's final record once it has ended. */
  async ended(id: string): Promise<JobRecord> {
    this.#jobs.get(id);
    await this.#active.get(id)?.settled;
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

  /** The captured output of a job; NotFoundError when unknown. */
  output(id: string): JobOutput {
    this.#jobs.get(id);
    const output = this.#outputs.get(id);
    if (!output) throw new NotFoundError(`Job "${id}" has no captured output`);
    return output;
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

  #jobEnv(id: string, spec: JobSpec, ports: number[]): Record<string, string> {
    // The job's own env never overrides what the host assigns.
    const env: Record<string, string> = { ...spec.config.env };
    if (ports[0] !== undefined) env.PORT = String(ports[0]);
    ports.forEach((port, i) => (env[`PORT_${i}`] = String(port)));
    if (this.externalIp) env.EXTERNAL_IP = this.externalIp;
    env.LORNE_JOB_ID = id;
    env.LORNE_HOST_ID = this.id;
    return env;
  }

  // The pid file lets `lorne host --force` find jobs a crashed daemon left.
  #writePid(id: string, pid: number | null): void {
    if (pid === null) return;
    writeFileSync(join(this.jobsDir, id, "pid"), `${pid}\n`);
  }

  #removePid(id: string): void {
    rmSync(join(this.jobsDir, id, "pid"), { force: true });
  }
}
