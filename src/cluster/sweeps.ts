/**
 * When the leading scheduler sweeps out finished jobs (retention.ts)
 * between its rounds: the first sweep right after a new leader's first
 * round, then one every sweep interval, or sooner while a sweep leaves
 * work behind. The policy's defaults (settings.ts) are resolved here.
 */
import type { Etcd3 } from "etcd3";

import { errorMessage } from "../errors.js";
import type { Context } from "../log/index.js";
import type { ClusterKeys } from "./keys.js";
import {
  BACKLOG_SWEEP_MS,
  RetentionSweeper,
  type RetentionOptions,
  type SweepResult,
} from "./retention.js";
import {
  DEFAULT_FINISHED_MAX,
  DEFAULT_FINISHED_RETENTION_MS,
} from "./settings.js";
import type { Txn } from "./txn.js";
import type { InvalidHandler } from "./view.js";

export interface LeaderSweepsOptions {
  client: Etcd3;
  keys: ClusterKeys;
  /**
   * Default DEFAULT_FINISHED_RETENTION_MS and DEFAULT_FINISHED_MAX, swept
   * every minute.
   */
  retention?: Partial<RetentionOptions>;
  log: Context;
  onInvalid: InvalidHandler;
  /** Called after each sweep, for tests. */
  onSweep?: (result: SweepResult) => void;
}

/** See the module comment. */
export class LeaderSweeps {
  readonly #sweeper: RetentionSweeper;
  readonly #log: Context;
  readonly #onSweep: ((result: SweepResult) => void) | undefined;
  #nextSweepAt = Number.POSITIVE_INFINITY;

  constructor(options: LeaderSweepsOptions) {
    const { retention } = options;
    this.#sweeper = new RetentionSweeper({
      client: options.client,
      keys: options.keys,
      retention: {
        ...retention,
        finishedRetentionMs:
          retention?.finishedRetentionMs ?? DEFAULT_FINISHED_RETENTION_MS,
        finishedMax: retention?.finishedMax ?? DEFAULT_FINISHED_MAX,
      },
      log: options.log,
      onInvalid: options.onInvalid,
    });
    this.#log = options.log;
    this.#onSweep = options.onSweep;
  }

  /**
   * Starts a leader's term: publishes the policy for `lorne cluster ps
   * --all` (a failure is logged, not thrown) and makes the first sweep
   * due at once, unless sweeps remove nothing.
   */
  async begin(leaderKey: string, schedulerId: string): Promise<void> {
    try {
      await this.#sweeper.publish(leaderKey, schedulerId);
    } catch (err) {
      this.#log.log({ at: "publish_error", err: errorMessage(err) });
    }
    this.#nextSweepAt = this.#sweeper.enabled ? 0 : Number.POSITIVE_INFINITY;
  }

  /** Time until the next sweep is due; 0 when due, Infinity for never. */
  untilDueMs(): number {
    return Math.max(0, this.#nextSweepAt - Date.now());
  }

  /**
   * Sweeps when one is due and `shouldStop` does not say otherwise; a
   * failed sweep is logged. False when the sweep found the leader's key
   * gone.
   */
  async sweepIfDue(txn: Txn, shouldStop: () => boolean): Promise<boolean> {
    if (Date.now() < this.#nextSweepAt || shouldStop()) return true;
    let delayMs = this.#sweeper.sweepIntervalMs;
    try {
      const swept = await this.#sweeper.sweep(txn, shouldStop);
      this.#onSweep?.(swept);
      if (swept.deposed) return false;
      if (swept.more) delayMs = Math.min(delayMs, BACKLOG_SWEEP_MS);
    } catch (err) {
      this.#log.log({ at: "sweep_error", err: errorMessage(err) });
    }
    this.#nextSweepAt = Date.now() + delayMs;
    return true;
  }
}
