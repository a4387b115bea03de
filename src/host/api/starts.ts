/**
 * A bound on job starts in progress through the API. A start holds its
 * slot until the job runs or has failed; a request beyond the bound is
 * refused at once with 429 and `Retry-After` rather than queued, so a
 * flood of creates cannot pile up work (ports, output files, engine
 * calls) behind the ones already running.
 */
import { RateLimitedError } from "../../errors.js";

/** Default bound on starts in progress at once. */
export const DEFAULT_MAX_STARTS_IN_FLIGHT = 32;

/** What a refused client is told to wait, in seconds. */
const RETRY_AFTER_S = 1;

/** See the module comment. */
export class StartLimit {
  readonly #max: number;
  #inFlight = 0;

  constructor(max: number) {
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError(
        `Invalid maxStartsInFlight ${max}: must be a whole number >= 1`,
      );
    }
    this.#max = max;
  }

  /** Starts in progress right now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Runs `start` in a slot, or throws RateLimitedError when none is free. */
  async run<T>(start: () => Promise<T>): Promise<T> {
    if (this.#inFlight >= this.#max) {
      throw new RateLimitedError(
        `Cannot create job: the host's limit of ${this.#max} starts in ` +
          "progress is reached; " +
          `retry after ${RETRY_AFTER_S}s`,
        RETRY_AFTER_S,
      );
    }
    this.#inFlight++;
    try {
      return await start();
    } finally {
      this.#inFlight--;
    }
  }
}
