/**
 * The seam between the host and what actually runs jobs. A backend starts
 * one job and hands back a handle; the host owns everything else (records,
 * ports, events, output files). Both the process backend and the docker
 * backend implement this, and the shared conformance tests run against
 * every implementation.
 */
import type { Context } from "../log/index.js";
import type { JobConfig, JobRecord } from "./job.js";
import type { JobOutput } from "./output.js";
import type { ExitInfo } from "./state.js";

export interface StartRequest {
  job: JobRecord;
  /** Full argv: entrypoint then cmd. May be empty for an image default. */
  argv: string[];
  /** The job's complete environment (the host built it). */
  env: Record<string, string>;
  /** Where the job's stdout and stderr go. */
  output: JobOutput;
  /** Terminal size for a TTY job (a resize sent before the start). */
  ttySize?: TtySize;
  log: Context;
}

export interface TtySize {
  rows: number;
  cols: number;
}

/** A job's standard input, when its config asks for one. */
export interface JobStdin {
  /**
   * Writes to the job's stdin; settles once the job can take more (so a
   * writer that waits never piles bytes up in the host). Never rejects.
   */
  write(chunk: Buffer): Promise<void>;
  /** Closes the job's stdin (a TTY job gets end-of-file, ^D). */
  end(): void;
}

/** One started job. */
export interface RunningJob {
  pid: number | null;
  /**
   * When the job started, ISO 8601, if the backend knows (a shim's spawn
   * time); otherwise the host stamps it when it hears of the start, which
   * for a job that ends at once may be after the job's own end.
   */
  startedAt?: string;
  /**
   * For backends that learn the pid after the start (a container's pid is
   * looked up off the start's critical path): resolves with it.
   */
  pidLater?: Promise<number | null>;
  /**
   * The address other jobs reach this one at, when it is not the host's
   * (a container's bridge address); manifests see it as `.InternalIP`.
   */
  address?: Promise<string | null>;
  /**
   * Settles once the job has ended and its output is complete (the
   * backend calls `output.end()` before resolving). Never rejects.
   */
  exited: Promise<ExitInfo>;
  /** Sends a signal to the job (its whole process group); never throws. */
  signal(signal: NodeJS.Signals): void;
  /** The signal that asks this job to stop; default SIGTERM. */
  stopSignal?: NodeJS.Signals;
  /** Present when the job was started with `config.stdin`. */
  stdin?: JobStdin;
  /** Present for TTY jobs: changes the terminal size. */
  resize?(size: TtySize): void;
}

/** Whether the backend can run jobs right now, for `GET /host`. */
export interface BackendStatus {
  ok: boolean;
  /** Why not, when not ok. */
  error?: string;
}

/** A job an earlier daemon started, as `adopt()` found it. */
export interface AdoptRequest {
  job: JobRecord;
  /** The job's directory (its output files). */
  dir: string;
  log: Context;
}

/**
 * What became of it: still running (the daemon takes it over), or ended
 * while no daemon watched (with how, as far as anyone knows).
 */
export type Adopted =
  | { running: RunningJob; output: JobOutput }
  | { exit: ExitInfo; output: JobOutput | null };

export interface Backend {
  readonly name: string;
  /**
   * True when the backend's jobs write their output files themselves (a
   * shim): the host then keeps only a view of them (JobOutput.view).
   */
  readonly externalOutput?: boolean;
  /**
   * Rejects a job config this backend cannot run (a ValidationError naming
   * the field), before the job is recorded.
   */
  validate(config: JobConfig): void;
  /**
   * Starts a job. Rejects when it cannot start (command not found, bad
   * working directory); the error message becomes the job's `error`.
   */
  start(request: StartRequest): Promise<RunningJob>;
  /**
   * Takes over a job an earlier daemon started and did not see end (after
   * a crash). Never rejects: what cannot be found has ended, unknown how.
   * Backends without it cannot keep jobs across restarts.
   */
  adopt?(request: AdoptRequest): Promise<Adopted>;
  /** Current health; a backend with nothing to report is always ok. */
  status(): BackendStatus;
  /** Releases the backend's own resources; jobs are stopped by the host. */
  close(): Promise<void>;
}

/** A JobStdin over a writable stream (a pipe, a hijacked socket). */
export function streamStdin(
  stream: NodeJS.WritableStream & {
    writableEnded?: boolean;
    destroyed?: boolean;
  },
): JobStdin {
  // The job may exit or close its stdin first: EPIPE is not our error.
  stream.on("error", () => undefined);
  return {
    write: (chunk) => {
      if (stream.writableEnded || stream.destroyed) return Promise.resolve();
      if (stream.write(chunk)) return Promise.resolve();
      return new Promise((resolve) => {
        const done = () => {
          stream.off("drain", done);
          stream.off("close", done);
          resolve();
        };
        stream.once("drain", done);
        stream.once("close", done);
      });
    },
    end: () => void stream.end(),
  };
}
