/**
 * Metric helpers shared by contexts and StatsD: bucket names, sampling, and
 * the number rules for metric values.
 */

/**
 * Joins a bucket prefix and suffix with `.`: `abc` + `def` -> `abc.def`;
 * either side may be empty, and a prefix ending in `.` adds none.
 */
export function joinBucket(prefix: string, suffix: string): string {
  if (prefix.length === 0) return suffix;
  if (suffix.length === 0) return prefix;
  return prefix.endsWith(".") ? prefix + suffix : prefix + "." + suffix;
}

/**
 * True when a call at `sampleRate` should be kept: always at 1 or more,
 * never at 0 or less, else when `random()` (in [0, 1)) is below the rate.
 */
export function sampled(sampleRate: number, random: () => number): boolean {
  // Not a number (a Proxy, a Symbol, an object whose valueOf throws):
  // like NaN, it samples nothing, and comparing it never runs its code.
  if (typeof sampleRate !== "number") return false;
  if (sampleRate >= 1) return true;
  if (!(sampleRate > 0)) return false;
  return random() < sampleRate;
}

/** Checks a sample rate given as an option: a number in [0, 1]. */
export function isSampleRate(value: unknown): value is number {
  return typeof value === "number" && value >= 0 && value <= 1;
}

/** Whole milliseconds, as grohl reports timings; NaN and Inf stay as is. */
export function wholeMs(ms: number): number {
  return Number.isFinite(ms) ? Math.trunc(ms) : ms;
}
