/**
 * Runs the host's jobs through its backend: starts each one (or takes
 * over one an earlier daemon left running), stops it with a grace period,
 * and watches it to its end, recording how it ended and then freeing its
 * ports. It holds what the host keeps per job: the live handle (active.ts)
 * while the job runs, and the captured output until the job is removed.
 * Host (host.ts) decides what to run and answers the API.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";

import { errorMessage, NotFoundError } from "../errors.js";
import type { Context } from "../log/index.js";
import { ActiveJob } from "./active.js";
import type { Backend, RunningJob } from "./backend.js";
import { jobEnv, type HostAssignedEnv } from "./env.js";
import { isFinal, jobArgv, type JobRecord, type JobSpec } from "./job.js";
import { JobOutput } from "./output.js";
import type { PortPool } from "./ports.js";
import { EXIT_FILE } from "./shim/spec.js";
import { removeJobPid, writeJobPid } from "./statedir.js";
import type { ExitInfo, JobTable } from "./state.js";

/** Wait between attempts to record a job's exit in a failing store. */
const STATE_RETRY_MS = 1_000;

export interface RunnerOptions {
  backend: Backend;
  ports: PortPool;
  jobs: JobTable;
  /** `<state>/jobs`: one directory per job. */
  jobsDir: string;
  /** Time between the stop signal and SIGKILL. */
  graceMs: number;
  /** The host's log; lines about one job carry `job.id`. */
  log: Context;
  /** What every job's environment gets from the host (env.ts). */
  env: Omit<HostAssignedEnv, "jobId" | "ports">;
}

/** What `start()` starts. */
export interface RunRequest {
  spec: JobSpec;
  /** The job's record as added, with any ports given already. */
  record: JobRecord;
  /** Whether the ports are still to be allocated. */
  allocatePorts: boolean;
}

/** See the module comment. */
export class JobRunner {
  readonly #options: RunnerOptions;
  readonly #jobs: JobTable;
  readonly #active = new Map<string, ActiveJob>();
  readonly #outputs = new Map<string, JobOutput>();
  readonly #log: Context;
  #closing = false;

  constructor(options: RunnerOptions) {
    this.#options = options;
    this.#jobs = options.jobs;
    this.#log = options.log;
  }

  /** Set by close(): no new jobs, and exits are no longer retried. */
  get closing(): boolean {
    return this.#closing;
  }

  /** How many jobs are live (starting or running). */
  get activeCount(): number {
    return this.#active.size;
  }

  /** A live job's handle; undefined once it has ended. */
  active(id: string): ActiveJob | undefined {
    return this.#active.get(id);
  }

  /**
   * Opens a new job's output and makes it live. Throws when the output
   * files cannot be made; nothing is kept then.
   */
  open(id: string, log: Context): ActiveJob {
    const output = this.#openOutput(id, log);
    this.#outputs.set(id, output);
    const active = new ActiveJob(id, output, null);
    this.#active.set(id, active);
    return active;
  }

  /**
   * Starts a job open() made live: allocates its ports unless given, has
   * the backend start it and records the start. Resolves with the record
   * once it runs, or has failed to start (status `failed`). Rejects when
   * the store refuses the start; the job is killed then.
   */
  async start(
    active: ActiveJob,
    request: RunRequest,
    log: Context,
  ): Promise<JobRecord> {
    const { id } = active;
    const { spec, record } = request;
    let ports = record.ports;
    try {
      if (request.allocatePorts) {
        ports = await this.#options.ports.allocateFor(
          id,
          spec.config.tcp_ports ?? 0,
        );
      }
      const env = jobEnv(spec, { jobId: id, ports, ...this.#options.env });
      const ttySize = active.ttySize;
      active.running = await this.#options.backend.start({
        job: { ...record, ports },
        argv: jobArgv(spec.config),
        env,
        output: active.output,
        ttySize,
        log,
      });
      // A resize that came in while the backend was starting the job.
      if (active.ttySize !== ttySize && active.ttySize) {
        active.running.resize?.(active.ttySize);
      }
    } catch (err) {
      this.release(ports, log);
      active.output.end();
      this.#active.delete(id);
      active.markStarted();
      active.settle();
      log.log({ at: "failed", err: errorMessage(err) });
      return structuredClone(this.#jobs.setFailed(id, errorMessage(err)));
    }

    const running = active.running;
    active.markStarted();
    this.#watchExit(active, running.exited, ports, log);
    let started: JobRecord;
    try {
      this.#jobs.setPorts(id, ports);
      started = this.#jobs.setRunning(id, running.pid, running.startedAt);
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
    writeJobPid(join(this.#options.jobsDir, id), running.pid);
    log.log({ at: "start", "job.pid": running.pid, "job.ports": ports });
    if (active.stopRequested) this.#terminate(active);
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

  /** Takes over a job that runs on from an earlier daemon. */
  adopt(
    job: JobRecord,
    running: RunningJob,
    output: JobOutput,
    log: Context,
  ): void {
    const active = new ActiveJob(job.id, output, running);
    this.#outputs.set(job.id, output);
    this.#active.set(job.id, active);
    // A job that was still `starting` had its ports saved in the pool but
    // not yet in its record: the pool knows what it holds.
    const ports = this.#options.ports.heldBy().get(job.id) ?? job.ports;
    if (job.status === "starting") {
      this.#jobs.setPorts(job.id, ports);
      this.#jobs.setRunning(job.id, running.pid, running.startedAt);
    }
    this.#watchExit(active, running.exited, ports, log);
    log.log({ at: "adopted", "job.pid": running.pid, "job.ports": ports });
  }

  /**
   * Stops a job: its stop signal, SIGKILL after the grace period.
   * Resolves with the final record once the job has ended; an ended job's
   * record at once.
   */
  async stop(id: string): Promise<JobRecord> {
    const record = this.#jobs.get(id);
    const active = this.#active.get(id);
    if (isFinal(record.status) || !active) return record;
    if (!active.stopRequested) {
      active.stopRequested = true;
      this.#log.log({
        at: "stop",
        "job.id": id,
        grace_ms: this.#options.graceMs,
      });
      this.#terminate(active);
    }
    await active.settled;
    return this.#jobs.get(id);
  }

  /** Stops every live job; from now on the runner is closing. */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all([...this.#active.keys()].map((id) => this.stop(id)));
  }

  /**
   * The captured output of a job: the one written here, else (a job that
   * ended under an earlier daemon) what its files hold. NotFoundError
   * when there is none.
   */
  output(record: JobRecord): JobOutput {
    const { id } = record;
    let output = this.#outputs.get(id);
    if (!output && isFinal(record.status)) {
      output = JobOutput.ended(join(this.#options.jobsDir, id)) ?? undefined;
      if (output) this.#outputs.set(id, output);
    }
    if (!output) throw new NotFoundError(`Job "${id}" has no captured output`);
    return output;
  }

  /** Keeps the output recovery found for a job that ended meanwhile. */
  keepOutput(id: string, output: JobOutput): void {
    this.#outputs.set(id, output);
  }

  /** Drops what is held for a removed job: its output and any ports. */
  forget(id: string): void {
    this.#outputs.get(id)?.end();
    this.#outputs.delete(id);
    const held = this.#options.ports.heldBy().get(id);
    if (held) this.release(held, this.#log);
  }

  /** Returns ports; a store that refuses keeps them held until a restart. */
  release(ports: readonly number[], log: Context): void {
    try {
      this.#options.ports.release(ports);
    } catch (err) {
      log.log({
        at: "state_error",
        err: errorMessage(err),
        "job.ports": ports,
      });
    }
  }

  /**
   * Ports saved as held by jobs that have ended or are unknown (a crash
   * between a job's end and its ports' release) go back to the pool.
   */
  releaseEnded(): void {
    for (const [jobId, ports] of this.#options.ports.heldBy()) {
      if (!this.#jobs.isActive(jobId)) this.release(ports, this.#log);
    }
  }

  // The backend's jobs may write their files themselves (shims): then
  // the host only watches them grow.
  #openOutput(id: string, log: Context): JobOutput {
    const dir = join(this.#options.jobsDir, id);
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
  #watchExit(
    active: ActiveJob,
    exited: Promise<ExitInfo>,
    ports: number[],
    log: Context,
  ): void {
    const { id } = active;
    void exited.then(async (exit) => {
      this.#active.delete(id);
      removeJobPid(join(this.#options.jobsDir, id));
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
      this.release(ports, log);
      active.settle();
    });
  }

  #terminate(active: ActiveJob): void {
    active.terminate(this.#options.graceMs, () =>
      this.#log.log({
        at: "kill",
        "job.id": active.id,
        reason: "grace_expired",
      }),
    );
  }
}
