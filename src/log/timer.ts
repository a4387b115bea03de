/**
 * Timer: measures work done under a context. `Context.timer(data)` makes a
 * child context from `data`, logs `at=start` through it, then starts the
 * clock; `finish()` logs `at=finish elapsed=0.123` (3 decimals, in the
 * context's time unit). When the context has a metrics bucket, each timer
 * line also reports its duration in ms to that bucket.
 */
import type { Context } from "./context.js";
import type { Data } from "./types.js";

import { copyData } from "./data.js";
import { float } from "./value.js";

/** A running clock bound to a child context; created by Context.timer. */
export class Timer {
  readonly #context: Context;
  readonly #clock: () => number;
  readonly #startedMs: number;

  /** Use `Context.timer(data)`, which also logs `at=start`. */
  constructor(context: Context, clock: () => number) {
    this.#context = context;
    this.#clock = clock;
    this.#startedMs = clock();
  }

  /**
   * Logs `data` through the timer's context, adding `elapsed` unless
   * `data` has one, and reports the duration to the bucket when set.
   */
  log(data?: Data): void {
    const ms = this.#clock() - this.#startedMs;
    const record: Data = copyData(data); // never throws, whatever data is
    if (!Object.hasOwn(record, "elapsed")) {
      record.elapsed = float(this.#inUnit(ms));
    }

    const context = this.#context;
    if (context.bucket.length > 0) {
      context.timing(context.sampleRate, "", ms);
    }
    context.log(record);
  }

  /** Adds a key to the timer's context, so later lines carry it. */
  add(key: string, value: unknown): void {
    this.#context.add(key, value);
  }

  /** Logs `at=finish` with the elapsed time. */
  finish(): void {
    this.log({ at: "finish" });
  }

  /** Time since the timer started, in the context's time unit. */
  elapsed(): number {
    return this.#inUnit(this.#clock() - this.#startedMs);
  }

  /** The child context the timer logs through. */
  get context(): Context {
    return this.#context;
  }

  #inUnit(ms: number): number {
    return this.#context.timeUnit === "ms" ? ms : ms / 1000;
  }
}
