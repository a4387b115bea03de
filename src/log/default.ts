/**
 * The package-level context, for programs (not libraries) that want one
 * logger everywhere: it writes to stdout with `now=` until `setLogger`
 * replaces the logger. `newContext` snapshots it: later `addContext` calls
 * reach package-level `log` but not contexts made earlier.
 */
import type {
  Data,
  ErrorReporter,
  Logger,
  Statter,
  TimeUnit,
} from "./types.js";

import { Context } from "./context.js";
import { stdoutLogger } from "./stream.js";
import type { Timer } from "./timer.js";

let current = new Context({ logger: stdoutLogger() });

/** The package-level context itself. */
export function defaultContext(): Context {
  return current;
}

/** Logs through the package-level context. */
export function log(data?: Data): void {
  current.log(data);
}

/** Reports an error through the package-level context. */
export function report(err: unknown, data?: Data): void {
  current.report(err, data);
}

/** Counts through the package-level context. */
export function counter(
  sampleRate: number,
  bucket: string,
  ...n: number[]
): void {
  current.counter(sampleRate, bucket, ...n);
}

/** Times through the package-level context. */
export function timing(
  sampleRate: number,
  bucket: string,
  ...ms: number[]
): void {
  current.timing(sampleRate, bucket, ...ms);
}

/** Gauges through the package-level context. */
export function gauge(
  sampleRate: number,
  bucket: string,
  ...value: number[]
): void {
  current.gauge(sampleRate, bucket, ...value);
}

/** A snapshot of the package-level context merged with `data`. */
export function newContext(data?: Data): Context {
  return current.child(data);
}

/** Logs `at=start` with `data` and returns a Timer. */
export function newTimer(data?: Data): Timer {
  return current.timer(data);
}

/** Adds a key to the package-level context (not to earlier snapshots). */
export function addContext(key: string, value: unknown): void {
  current.add(key, value);
}

/** Removes a key from the package-level context. */
export function deleteContext(key: string): void {
  current.delete(key);
}

/** Replaces the package-level logger; returns the previous one. */
export function setLogger(logger: Logger | undefined): Logger {
  const previous = current.logger;
  current.setLogger(logger ?? stdoutLogger());
  return previous;
}

/** Sets the package-level statter (undefined: metrics become lines). */
export function setStatter(
  statter: Statter | undefined,
  sampleRate = 1,
  bucket = "",
): void {
  current.setStatter(statter, sampleRate, bucket);
}

/** Sets the unit of package-level timers' `elapsed`. */
export function setTimeUnit(unit: TimeUnit): void {
  current.setTimeUnit(unit);
}

/** Sets (or with undefined, removes) the package-level ErrorReporter. */
export function setErrorReporter(reporter: ErrorReporter | undefined): void {
  current.setErrorReporter(reporter);
}

/** Restores the package-level context to its start state (for tests). */
export function resetDefaultContext(): void {
  current = new Context({ logger: stdoutLogger() });
}
