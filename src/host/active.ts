/**
 * One job this daemon runs, from the moment its start is asked for until
 * its end is recorded: the backend's handle once started, its output,
 * whether a stop was asked for, and the promises that create, stop and
 * ended wait on. The runner (runner.ts) keeps one per live job.
 */
import type { RunningJob, TtySize } from "./backend.js";
import type { JobOutput } from "./output.js";

/** See the module comment. */
export class ActiveJob {
  readonly id: string;
  readonly output: JobOutput;
  /** The backend's handle; null until the backend has started the job. */
  running: RunningJob | null;
  stopRequested = false;
  /** The last terminal size asked for (TTY jobs). */
  ttySize?: TtySize;
  /** Settles once the backend's start has succeeded or failed. */
  readonly started: Promise<void>;
  /** Settles when the job has reached a final status. */
  readonly settled: Promise<void>;
  readonly #markStarted: () => void;
  readonly #settle: () => void;

  /**
   * A job about to be started, or, given `running`, one started already
   * (taken over from an earlier daemon).
   */
  constructor(id: string, output: JobOutput, running: RunningJob | null) {
    this.id = id;
    this.output = output;
    this.running = running;
    let markStarted!: () => void;
    let settle!: () => void;
    this.started = new Promise((resolve) => (markStarted = resolve));
    this.settled = new Promise((resolve) => (settle = resolve));
    this.#markStarted = markStarted;
    this.#settle = settle;
    if (running) markStarted();
  }

  /** The backend's start has succeeded or failed. */
  markStarted(): void {
    this.#markStarted();
  }

  /** The job's final status is recorded (or it never started). */
  settle(): void {
    this.#settle();
  }

  /**
   * Sets a TTY job's terminal size: at once when it runs; a job still
   * starting gets it from the runner once started.
   */
  resize(size: TtySize): void {
    this.ttySize = size;
    this.running?.resize?.(size);
  }

  /**
   * Sends the job its stop signal (SIGTERM unless the backend names
   * another), then SIGKILL if it has not ended `graceMs` later; `onKill`
   * hears of that. A job still starting is left alone: the runner calls
   * this again once the start is recorded.
   */
  terminate(graceMs: number, onKill: () => void): void {
    const running = this.running;
    if (!running) return;
    running.signal(running.stopSignal ?? "SIGTERM");
    const kill = setTimeout(() => {
      onKill();
      running.signal("SIGKILL");
    }, graceMs);
    void running.exited.then(() => clearTimeout(kill));
  }
}
