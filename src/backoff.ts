/**
 * Exponential backoff with jitter: each wait is drawn from the upper half
 * of the current step, which doubles up to a maximum, so many clients
 * that failed together do not retry together. The shipper's senders use
 * it after a failed batch and its spooler when no file has anything new
 * (50 ms doubling to 5 s, the defaults); the host client between attempts
 * to reconnect a followed stream.
 */

export const BACKOFF_MIN_MS = 50;
export const BACKOFF_MAX_MS = 5000;

export class Backoff {
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #stepMs: number;

  constructor(
    minMs = BACKOFF_MIN_MS,
    maxMs = BACKOFF_MAX_MS,
    random: () => number = Math.random,
  ) {
    this.#minMs = minMs;
    this.#maxMs = maxMs;
    this.#random = random;
    this.#stepMs = minMs;
  }

  /** The next wait in ms; each call doubles the step up to the maximum. */
  next(): number {
    const step = this.#stepMs;
    this.#stepMs = Math.min(step * 2, this.#maxMs);
    return Math.round(step / 2 + (this.#random() * step) / 2);
  }

  /** Back to the shortest wait, after a success. */
  reset(): void {
    this.#stepMs = this.#minMs;
  }
}
