/**
 * The seam between the host and what actually runs jobs. A backend starts
 * one job and hands back a handle; the host owns everything else (records,
 * ports, events, output files). Both the process backend and the docker
 * backend implement this, and the shared conformance tests run against
 * every implementation.
 */
import type { Context } from "../log/index.js";
import type { JobRecord } from "./job.js";
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
  log: Context;
}

/** One started job. */
export interface RunningJob {
  pid: number | null;
  /**
   * Settles once the job has ended and its output is complete (the
   * backend calls `output.end()` before resolving). Never rejects.
   */
  exited: Promise<ExitInfo>;
  /** Sends a signal to the job (its whole process group); never throws. */
  signal(signal: NodeJS.Signals): void;
}

export interface Backend {
  readonly name: string;
  /**
   * Starts a job. Rejects when it cannot start (command not found, bad
   * working directory); the error message becomes the job's `error`.
   */
  start(request: StartRequest): Promise<RunningJob>;
  /** Releases the backend's own resources; jobs are stopped by the host. */
  close(): Promise<void>;
}
