/**
 * Context: default data plus where lines go (a Logger), the timer unit, an
 * optional ErrorReporter and metrics settings. Every line a context logs
 * holds its data first, in insertion order, then the call's data; a call key
 * the context already has replaces the context's value in place.
 *
 * No method throws for any data: data that is not an object (null, a
 * string) adds nothing, and values or keys that cannot be read are logged
 * as "[Throws]" (see data.ts). Only bad options are rejected.
 */
import type {
  Data,
  ErrorReporter,
  Logger,
  Statter,
  TimeUnit,
} from "./types.js";

import { ValidationError } from "../errors.js";
import { copyData, isObject, keyText, setKey } from "./data.js";
import { isReportable, reportRecords } from "./report.js";
import { isSampleRate, joinBucket, sampled, wholeMs } from "./statter.js";
import { stdoutLogger } from "./stream.js";
import { Timer } from "./timer.js";

/** Options of a Context; each default is listed once, here. */
export interface ContextOptions {
  /** Data on every line; copied. Default none. */
  data?: Data;
  /** Where records go; default a shared stdout StreamLogger with time. */
  logger?: Logger;
  /** Unit of timers' `elapsed`; default "s". */
  timeUnit?: TimeUnit;
  /** Receives reports instead of the logger; default none. */
  errorReporter?: ErrorReporter;
  /** Metrics client; default none: metrics become log lines. */
  statter?: Statter;
  /** Sample rate timers report with; default 1. */
  sampleRate?: number;
  /** Bucket prefix for metrics; timers report to it when set. Default "". */
  bucket?: string;
  /** Monotonic clock in ms for timers; default performance.now. */
  clock?: () => number;
  /** Random numbers in [0, 1) for sampling; default Math.random. */
  random?: () => number;
}

/** A logging context; children copy it, later changes stay apart. */
export class Context implements Statter {
  #data: Data;
  #logger: Logger;
  #timeUnit: TimeUnit;
  #errorReporter: ErrorReporter | undefined;
  #statter: Statter | undefined;
  #sampleRate: number;
  #bucket: string;
  readonly #clock: () => number;
  readonly #random: () => number;

  constructor(options?: ContextOptions) {
    const given = options ?? {};
    this.#data = copyData(given.data);
    this.#logger = given.logger ?? stdoutLogger();
    this.#timeUnit = checkTimeUnit(given.timeUnit ?? "s");
    this.#errorReporter = given.errorReporter;
    this.#statter = given.statter;
    this.#sampleRate = checkSampleRate(given.sampleRate ?? 1);
    this.#bucket = checkBucket(given.bucket ?? "");
    this.#clock = given.clock ?? (() => performance.now());
    this.#random = given.random ?? Math.random;
  }

  /** Logs the context's data overlaid by `data`. */
  log(data?: Data): void {
    this.#logger.log(this.merge(data));
  }

  /** A new context holding this one's data merged with `data`. */
  child(data?: Data): Context {
    return new Context({
      data: this.merge(data),
      logger: this.#logger,
      timeUnit: this.#timeUnit,
      errorReporter: this.#errorReporter,
      statter: this.#statter,
      sampleRate: this.#sampleRate,
      bucket: this.#bucket,
      clock: this.#clock,
      random: this.#random,
    });
  }

  /** Sets a key; an existing key keeps its place. */
  add(key: string, value: unknown): void {
    setKey(this.#data, keyText(key), value);
  }

  /** Removes a key. */
  delete(key: string): void {
    const name = keyText(key);
    if (!Object.hasOwn(this.#data, name)) return;
    // Rebuild rather than `delete`, which slows every later copy.
    const { [name]: _removed, ...rest } = this.#data;
    this.#data = rest;
  }

  /** A new record: the context's data overlaid by `data`. */
  merge(data?: Data): Data {
    // Object.assign is many times faster than `{ ...a, ...b }` in V8, but
    // it would hand an own `__proto__` key to the prototype setter.
    if (assignable(this.#data) && assignable(data)) {
      try {
        return Object.assign({}, this.#data, data);
      } catch {
        // A getter or a Proxy in `data` threw: copy key by key below.
      }
    }
    return copyData(this.#data, data);
  }

  /** Logs `at=start` through a child holding `data`, then starts a Timer. */
  timer(data?: Data): Timer {
    const context = this.child(data);
    context.log({ at: "start" });
    return new Timer(context, this.#clock);
  }

  /**
   * Reports an error: to the ErrorReporter when set, else as log lines
   * (see report.ts for their shape). Errors with `reportable: false` are
   * skipped.
   */
  report(err: unknown, data?: Data): void {
    if (!isReportable(err)) return;
    const records = reportRecords(this.#data, err, data);
    if (this.#errorReporter !== undefined) {
      this.#errorReporter.report(err, records[0] ?? {});
      return;
    }
    for (const record of records) this.#logger.log(record);
  }

  /** Counts to the statter, or logs `metric=<bucket> count=<n>` lines. */
  counter(sampleRate: number, bucket: string, ...n: number[]): void {
    const name = joinBucket(this.#bucket, bucketText(bucket));
    if (this.#statter !== undefined) {
      this.#statter.counter(sampleRate, name, ...n);
    } else if (sampled(sampleRate, this.#random)) {
      for (const count of n) this.log({ metric: name, count });
    }
  }

  /** Times to the statter, or logs `metric=<bucket> timing=<whole ms>`. */
  timing(sampleRate: number, bucket: string, ...ms: number[]): void {
    const name = joinBucket(this.#bucket, bucketText(bucket));
    if (this.#statter !== undefined) {
      this.#statter.timing(sampleRate, name, ...ms);
    } else if (sampled(sampleRate, this.#random)) {
      for (const t of ms) this.log({ metric: name, timing: wholeMs(t) });
    }
  }

  /** Gauges to the statter, or logs `metric=<bucket> gauge=<value>`. */
  gauge(sampleRate: number, bucket: string, ...value: number[]): void {
    const name = joinBucket(this.#bucket, bucketText(bucket));
    if (this.#statter !== undefined) {
      this.#statter.gauge(sampleRate, name, ...value);
    } else if (sampled(sampleRate, this.#random)) {
      for (const gauge of value) this.log({ metric: name, gauge });
    }
  }

  setLogger(logger: Logger): void {
    this.#logger = logger;
  }

  setTimeUnit(unit: TimeUnit): void {
    this.#timeUnit = checkTimeUnit(unit);
  }

  setErrorReporter(reporter: ErrorReporter | undefined): void {
    this.#errorReporter = reporter;
  }

  /** Sets (or with undefined, removes) the statter and its settings. */
  setStatter(statter: Statter | undefined, sampleRate = 1, bucket = ""): void {
    this.#sampleRate = checkSampleRate(sampleRate);
    this.#bucket = checkBucket(bucket);
    this.#statter = statter;
  }

  /** A copy of the context's own data. */
  get data(): Data {
    return { ...this.#data };
  }

  get logger(): Logger {
    return this.#logger;
  }

  get timeUnit(): TimeUnit {
    return this.#timeUnit;
  }

  get errorReporter(): ErrorReporter | undefined {
    return this.#errorReporter;
  }

  get statter(): Statter | undefined {
    return this.#statter;
  }

  get sampleRate(): number {
    return this.#sampleRate;
  }

  get bucket(): string {
    return this.#bucket;
  }
}

function checkTimeUnit(unit: unknown): TimeUnit {
  if (unit === "s" || unit === "ms") return unit;
  throw new ValidationError(
    `Invalid time unit "${String(unit)}": expected "s" or "ms"`,
    "timeUnit",
  );
}

function checkSampleRate(rate: unknown): number {
  if (isSampleRate(rate)) return rate;
  throw new ValidationError(
    `Invalid sample rate ${String(rate)}: expected a number from 0 to 1`,
    "sampleRate",
  );
}

/** A bucket given as any value: nothing when missing, else its text. */
function bucketText(bucket: unknown): string {
  return bucket === undefined || bucket === null ? "" : keyText(bucket);
}

function checkBucket(bucket: unknown): string {
  if (typeof bucket === "string") return bucket;
  throw new ValidationError(
    `Invalid bucket ${keyText(bucket)}: expected a string`,
    "bucket",
  );
}

/** True when Object.assign may copy `data`: no own `__proto__` key. */
function assignable(data: unknown): boolean {
  if (data === undefined) return true;
  if (!isObject(data)) return false; // not data: copyData skips it
  try {
    return !Object.hasOwn(data, "__proto__");
  } catch {
    return false; // a revoked Proxy: copyData reads what it can
  }
}
