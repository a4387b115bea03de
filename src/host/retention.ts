/**
 * Forgets ended jobs, so a host that runs many short jobs does not fill
 * its disk and its job list: a job that has ended (done, failed, crashed,
 * stopped) is removed (Host.remove: record, directory, everything in
 * memory) once it has been ended for longer than the retention period,
 * and beyond a count of ended jobs the oldest go first, however young.
 * A retention of 0 keeps every ended job: the count bound is off too, as
 * with the cluster's --finished-retention 0.
 *
 * Sweeps run at start (after recovery, before the API serves), then when
 * the next job is due (at most a minute apart), and soon after a job ends
 * when the count bound may be passed. One sweep removes at most
 * SWEEP_BATCH jobs and leaves the rest to the next, a moment later, so a
 * backlog (a first start with retention) never holds the event loop for
 * long. Host.remove logs each removal (`at=removed_ended`).
 */
import { errorMessage, NotFoundError } from "../errors.js";
import type { Context } from "../log/index.js";
import type { Host, RemoveReason } from "./host.js";
import { emptyTrash } from "./trash.js";

/** How long an ended job is kept by default: a day. */
export const DEFAULT_ENDED_RETENTION_MS = 86_400_000;
/** How many ended jobs are kept at most by default. */
export const DEFAULT_ENDED_MAX = 1000;
/** Longest retention accepted: 3650 days (not a timer, so past MAX_MS). */
export const MAX_ENDED_RETENTION_MS = 3650 * 86_400_000;
/** Largest count bound accepted. */
export const MAX_ENDED_MAX = 10_000_000;

/** Longest time between two sweeps. */
const SWEEP_INTERVAL_MS = 60_000;
/** Most jobs one sweep removes. */
const SWEEP_BATCH = 50;
/** Wait after a job ends before checking the count bound (coalesces). */
const COUNT_CHECK_MS = 200;

export interface RetentionOptions {
  host: Host;
  /** The state dir, whose trash is emptied at start (trash.ts). */
  stateDir: string;
  log: Context;
  /**
   * Default DEFAULT_ENDED_RETENTION_MS; 0 keeps every ended job (and turns
   * the count bound off).
   */
  endedRetentionMs?: number;
  /** Default DEFAULT_ENDED_MAX; at least 1. */
  endedMax?: number;
}

/** See the module comment. */
export class Retention {
  readonly #host: Host;
  readonly #stateDir: string;
  readonly #log: Context;
  readonly #retentionMs: number;
  readonly #max: number;
  #timer: NodeJS.Timeout | null = null;
  /** When the pending timer fires (ms since the epoch). */
  #timerAtMs = Infinity;
  /** Deletions of removed jobs' directories still running. */
  readonly #deleting = new Set<Promise<void>>();
  #unsubscribe: () => void = () => undefined;
  #closed = false;

  constructor(options: RetentionOptions) {
    this.#host = options.host;
    this.#stateDir = options.stateDir;
    this.#log = options.log.child({ fn: "retention" });
    this.#retentionMs = options.endedRetentionMs ?? DEFAULT_ENDED_RETENTION_MS;
    this.#max = options.endedMax ?? DEFAULT_ENDED_MAX;
  }

  /**
   * Empties the trash a crash left, runs the first sweep and keeps
   * sweeping until `close()`. Call once, after recovery.
   */
  start(): void {
    let trashed: number | string;
    try {
      trashed = emptyTrash(this.#stateDir);
    } catch (err) {
      // Left for the next start: it holds nothing any record names.
      trashed = "failed";
      this.#log.log({ at: "trash_error", err: errorMessage(err) });
    }
    this.#log.log({
      at: "start",
      ended_retention:
        this.#retentionMs === 0 ? "forever" : seconds(this.#retentionMs),
      ended_max: this.#retentionMs === 0 ? "none" : this.#max,
      trash_emptied: trashed,
    });
    if (this.#retentionMs === 0) return;
    this.#unsubscribe = this.#host.events.subscribe((event) => {
      if (event.event === "stop" || event.event === "error") this.#onEnd();
    });
    this.#sweep();
  }

  /** Stops sweeping and waits for deletions under way. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await Promise.all(this.#deleting);
  }

  // Removes what is due now (up to SWEEP_BATCH), then sets the timer for
  // the next job that will be.
  #sweep(): void {
    if (this.#closed) return;
    const nowMs = Date.now();
    const ended = this.#host
      .endedTimes()
      .map((job) => ({
        ...job,
        endedAtMs: Number.isFinite(job.endedAtMs) ? job.endedAtMs : nowMs,
      }))
      // Stable: jobs that ended in the same ms go in creation order.
      .sort((a, b) => a.endedAtMs - b.endedAtMs);
    const excess = ended.length - this.#max;

    let removed = 0;
    let next = 0;
    for (; next < ended.length && removed < SWEEP_BATCH; next++) {
      const job = ended[next]!;
      const endedForMs = nowMs - job.endedAtMs;
      const reason: RemoveReason | null =
        endedForMs > this.#retentionMs
          ? "retention"
          : next < excess
            ? "max"
            : null;
      // Sorted by end: once neither bound applies, none later does.
      if (reason === null) break;
      if (this.#remove(job.id, reason)) removed++;
    }

    if (next < ended.length && removed === SWEEP_BATCH) {
      this.#wakeAt(nowMs); // more are due: after whatever else waits
    } else if (next < ended.length) {
      this.#wakeAt(ended[next]!.endedAtMs + this.#retentionMs + 1);
    }
    this.#wakeAt(nowMs + SWEEP_INTERVAL_MS);
  }

  #remove(id: string, reason: RemoveReason): boolean {
    let deleted: Promise<void>;
    try {
      deleted = this.#host.remove(id, reason).deleted;
    } catch (err) {
      // Removed through the API meanwhile: nothing to say.
      if (err instanceof NotFoundError) return false;
      this.#log.log({
        at: "remove_error",
        "job.id": id,
        err: errorMessage(err),
        resolution: "retried at the next sweep",
      });
      return false;
    }
    this.#deleting.add(deleted);
    void deleted.then(() => this.#deleting.delete(deleted));
    return true;
  }

  // A job ended: it may pass the count bound (checked shortly, once for a
  // burst of ends), and its retention ends before any timer set so far.
  #onEnd(): void {
    const nowMs = Date.now();
    this.#wakeAt(nowMs + COUNT_CHECK_MS);
    this.#wakeAt(nowMs + this.#retentionMs + 1);
  }

  // Sets the timer to fire at `atMs` (or within SWEEP_INTERVAL_MS, which
  // also keeps it within what a Node timer holds), unless it fires sooner
  // already.
  #wakeAt(wantedMs: number): void {
    const atMs = Math.min(wantedMs, Date.now() + SWEEP_INTERVAL_MS);
    if (this.#closed || atMs >= this.#timerAtMs) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAtMs = atMs;
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        this.#timerAtMs = Infinity;
        this.#sweep();
      },
      Math.max(0, atMs - Date.now()),
    );
    this.#timer.unref();
  }
}

// A duration for the log, in seconds with ms precision: `ended_for=90.5s`.
function seconds(ms: number): string {
  return `${Math.round(ms) / 1000}s`;
}
