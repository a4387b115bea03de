/**
 * How the client's long-lived streams (followed events and logs) ride out
 * a host that goes away: a restart, an upgrade, a crash. Only a lost or
 * refused connection (`unavailable`) is retried, with a delay that doubles
 * from 100 ms to 5 s (with jitter, so many clients of one host do not all
 * come back at once), until the host is back or the timeout since the
 * connection was lost has passed; a refused token or a missing job is
 * final at once. The caller resumes where it was (an event id, a byte
 * offset), so nothing comes twice and nothing is skipped.
 */
import { Backoff } from "../backoff.js";
import { formatDuration } from "../duration.js";
import { errorMessage, UnavailableError } from "../errors.js";
import { sleep } from "../sleep.js";

/** First delay before reconnecting. */
export const FIRST_RETRY_MS = 100;
/** Longest delay between two attempts. */
export const MAX_RETRY_MS = 5_000;
/** How long to keep trying after the connection was lost. */
export const DEFAULT_RECONNECT_TIMEOUT_MS = 60_000;
/**
 * How long a connection must have stood for the next loss to start again
 * from the first delay rather than carry on doubling.
 */
export const STABLE_MS = 10_000;

export interface ReconnectOptions {
  /**
   * Give up this long after the connection was lost; 0 never reconnects.
   * Default 60 s.
   */
  timeoutMs?: number;
  /** Called once when the connection is lost, with why. */
  onLost?: (err: Error) => void;
  /** Called when a new connection stands after a loss. */
  onBack?: () => void;
  /** The delays between attempts; for tests. */
  backoff?: Backoff;
}

/**
 * The state of one stream's reconnecting: `lost(err)` decides whether to
 * try again (and waits out the backoff) or throws the error to end with;
 * `back()` marks a connection that stands.
 *
 * A connection counts as back once the host answers the request, which
 * restarts the timeout. The delay starts again from 100 ms only after a
 * connection that stood for STABLE_MS: a host that answers and then drops
 * the stream at once, again and again, is retried without end, but at
 * most every 5 s, not in a tight loop.
 */
export class Reconnector {
  readonly #timeoutMs: number;
  readonly #options: ReconnectOptions;
  readonly #signal: AbortSignal | undefined;
  readonly #backoff: Backoff;
  #lostAt: number | null = null;
  #backAt: number | null = null;

  constructor(options: ReconnectOptions, signal?: AbortSignal) {
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_RECONNECT_TIMEOUT_MS;
    if (!Number.isInteger(this.#timeoutMs) || this.#timeoutMs < 0) {
      throw new RangeError(
        `Invalid reconnect timeoutMs ${this.#timeoutMs}: expected a whole number of ms from 0`,
      );
    }
    this.#options = options;
    this.#signal = signal;
    this.#backoff =
      options.backoff ?? new Backoff(FIRST_RETRY_MS, MAX_RETRY_MS);
  }

  /** A connection stands: a later loss starts a new timeout. */
  back(): void {
    this.#backAt = Date.now();
    if (this.#lostAt === null) return;
    this.#lostAt = null;
    this.#options.onBack?.();
  }

  /**
   * The connection failed with `err`. Resolves after the backoff when it
   * is worth another try; rejects with `err` when it is not retryable, and
   * with an UnavailableError once the timeout has passed.
   */
  async lost(err: unknown): Promise<void> {
    if (!(err instanceof UnavailableError) || this.#signal?.aborted) {
      throw err;
    }
    if (this.#timeoutMs === 0) throw err;
    const now = Date.now();
    if (this.#lostAt === null) {
      this.#lostAt = now;
      if (this.#backAt !== null && now - this.#backAt >= STABLE_MS) {
        this.#backoff.reset();
      }
      this.#options.onLost?.(err);
    }
    const leftMs = this.#lostAt + this.#timeoutMs - now;
    if (leftMs <= 0) {
      throw new UnavailableError(
        `Gave up reconnecting after ${formatDuration(this.#timeoutMs)}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    await sleep(Math.min(this.#backoff.next(), leftMs), this.#signal);
    // An abort ends the wait with the signal's reason, as the follower's
    // own requests do.
    this.#signal?.throwIfAborted();
  }
}

/** An error for a stream the host ended while it should have gone on. */
export function endedEarly(url: string): UnavailableError {
  return new UnavailableError(`Lorne host at ${url} closed the stream`);
}
