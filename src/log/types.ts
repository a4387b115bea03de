/**
 * The shapes every part of `log` agrees on: a record of data, the sinks that
 * receive finished records, the metrics seam and the error-reporting seam.
 * Kept apart so that sinks, contexts and callers depend on types only.
 */

/**
 * Key/value data for one log line. Keys keep insertion order, except that
 * JavaScript objects always put integer-like keys ("1", "42") first.
 */
export type Data = Record<string, unknown>;

/** How values are quoted: `safe` (one record, one line) or `grohl`. */
export type FormatMode = "safe" | "grohl";

/** The unit of a timer's `elapsed` value. */
export type TimeUnit = "s" | "ms";

/**
 * A sink for finished records. `log` receives the final merged record, keys
 * already in order; it may keep the object (it is never reused).
 */
export interface Logger {
  log(data: Data): void;
}

/**
 * A metrics client in the shape of a StatsD client. Sampling is the
 * statter's job: it drops a call when a random number in [0, 1) is not
 * below `sampleRate`. `timing` takes milliseconds.
 */
export interface Statter {
  counter(sampleRate: number, bucket: string, ...n: number[]): void;
  timing(sampleRate: number, bucket: string, ...ms: number[]): void;
  gauge(sampleRate: number, bucket: string, ...value: number[]): void;
}

/**
 * Receives reported errors instead of the log. `data` holds the merged
 * context, error and call data plus `at=exception`, `class` and `message`.
 */
export interface ErrorReporter {
  report(err: unknown, data: Data): void;
}
