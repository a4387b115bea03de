/**
 * The cluster scheduler. Schedulers campaign for leadership (leadership.ts);
 * the leader reads the cluster view, places pending jobs, and deals with
 * jobs whose host has gone (decisions.ts decides, from the view alone).
 *
 * Exactly-once placement does not rest on there being one leader at a
 * time, which no lease can promise: every decision is an etcd transaction
 * that checks (1) the leader's own election key still exists, (2) the
 * job's status key has not changed since it was read, and (3) the host is
 * still the registration that was read. A deposed leader's writes fail
 * check 1, and two leaders racing on one job cannot both pass check 2.
 *
 * The leader also removes jobs that have been finished for long enough
 * (retention.ts, swept between rounds as sweeps.ts says), under the same
 * guard.
 */
import type { Etcd3 } from "etcd3";

import { errorMessage } from "../errors.js";
import type { Context } from "../log/index.js";
import { sleep } from "../sleep.js";
import { decideRound, type DecisionKind } from "./decisions.js";
import type { ClusterKeys } from "./keys.js";
import { Leadership } from "./leadership.js";
import type { RetentionOptions, SweepResult } from "./retention.js";
import { LeaderSweeps } from "./sweeps.js";
import { Txn } from "./txn.js";
import { readView } from "./view.js";

/** Shortest time between the starts of two placement rounds. */
export const DEFAULT_ROUND_INTERVAL_MS = 50;
/** A round runs at least this often, changes or not. */
export const DEFAULT_RESYNC_MS = 2_000;

export interface SchedulerOptions {
  client: Etcd3;
  keys: ClusterKeys;
  /** Who this scheduler is, in logs and in assignments. */
  id: string;
  /** Lease of the election key, in seconds. */
  leaseTtlS: number;
  log: Context;
  roundIntervalMs?: number;
  resyncMs?: number;
  /** Removal of finished jobs; sweeps.ts has the defaults. */
  retention?: Partial<RetentionOptions>;
  /** Called after each sweep of finished jobs, for tests. */
  onSweep?: (result: SweepResult) => void;
}

/** What one round did, for logs and tests. */
export interface RoundResult {
  placed: number;
  lost: number;
  requeued: number;
  stopped: number;
  conflicts: number;
}

/** See the module comment. */
export class Scheduler {
  readonly id: string;
  readonly #options: SchedulerOptions;
  readonly #log: Context;
  readonly #roundIntervalMs: number;
  readonly #resyncMs: number;
  readonly #reported = new Set<string>();
  readonly #sweeps: LeaderSweeps;
  readonly #leadership: Leadership;
  #wake: (() => void) | null = null;
  #dirty = true;

  constructor(options: SchedulerOptions) {
    this.id = options.id;
    this.#options = options;
    this.#log = options.log.child({ fn: "scheduler", "scheduler.id": this.id });
    this.#roundIntervalMs =
      options.roundIntervalMs ?? DEFAULT_ROUND_INTERVAL_MS;
    this.#resyncMs = options.resyncMs ?? DEFAULT_RESYNC_MS;
    this.#sweeps = new LeaderSweeps({
      client: options.client,
      keys: options.keys,
      retention: options.retention,
      log: this.#log,
      onInvalid: (key, err) => this.#reportInvalid(key, err),
      onSweep: options.onSweep,
    });
    this.#leadership = new Leadership({
      client: options.client,
      keys: options.keys,
      id: this.id,
      leaseTtlS: options.leaseTtlS,
      log: this.#log,
      lead: (leaderKey, shouldStop) => this.#lead(leaderKey, shouldStop),
      interrupt: () => this.#wake?.(),
    });
  }

  /** Starts campaigning; leads whenever elected, until closed. */
  start(): void {
    this.#leadership.start();
  }

  /** Whether this scheduler leads right now. */
  get leading(): boolean {
    return this.#leadership.leading;
  }

  /** Resigns (a follower is elected at once) and stops. Idempotent. */
  async close(): Promise<void> {
    await this.#leadership.close();
  }

  // Runs rounds until closing or deposed; a watch on the whole prefix
  // wakes it up, and the resync timer runs a round regardless.
  async #lead(leaderKey: string, shouldStop: () => boolean): Promise<void> {
    const { client, keys } = this.#options;
    const watcher = await client.watch().prefix(keys.prefix).create();
    const touch = () => {
      this.#dirty = true;
      this.#wake?.();
    };
    watcher.on("put", touch);
    watcher.on("delete", touch);
    watcher.on("error", (err) =>
      this.#log.log({ at: "watch_error", err: errorMessage(err) }),
    );
    const txn = new Txn(client, keys, leaderKey);
    const sweeps = this.#sweeps;
    await sweeps.begin(leaderKey, this.id);
    try {
      while (!shouldStop()) {
        const startedAt = Date.now();
        this.#dirty = false;
        try {
          const result = await this.#round(txn);
          if (result.placed + result.lost + result.requeued + result.stopped) {
            this.#log.log({ at: "round", ...result });
          }
          if (!(await txn.stillLeader())) {
            this.#log.log({ at: "deposed", reason: "election key gone" });
            return;
          }
        } catch (err) {
          this.#log.log({ at: "round_error", err: errorMessage(err) });
          this.#dirty = true;
        }
        if (!(await sweeps.sweepIfDue(txn, shouldStop))) {
          this.#log.log({ at: "deposed", reason: "election key gone" });
          return;
        }
        const waitMs = this.#roundIntervalMs - (Date.now() - startedAt);
        if (waitMs > 0) await sleep(waitMs);
        if (!this.#dirty) {
          await this.#nextWake(Math.min(this.#resyncMs, sweeps.untilDueMs()));
        }
      }
    } finally {
      await watcher.cancel().catch(() => undefined);
    }
  }

  /** One pass over the view; see the module comment. */
  async #round(txn: Txn): Promise<RoundResult> {
    const { client, keys } = this.#options;
    const view = await readView(client, keys, (key, err) =>
      this.#reportInvalid(key, err),
    );
    const { decisions, unplaced } = decideRound(view, {
      keys,
      schedulerId: this.id,
      now: () => new Date().toISOString(),
    });
    for (const job of unplaced) {
      this.#reportOnce(`no_host:${job.id}`, {
        at: "no_host",
        "job.id": job.id,
        constraints: JSON.stringify(job.constraints),
      });
    }
    const result: RoundResult = {
      placed: 0,
      lost: 0,
      requeued: 0,
      stopped: 0,
      conflicts: 0,
    };
    const committed = await txn.commitAll(decisions.map((d) => d.unit));
    committed.forEach((ok, i) => {
      const kind = decisions[i]?.kind as DecisionKind;
      if (ok) result[kind]++;
      else result.conflicts++;
    });
    return result;
  }

  #reportInvalid(key: string, err: Error): void {
    this.#reportOnce(`invalid:${key}:${err.message}`, {
      at: "invalid_value",
      key,
      err: err.message,
      resolution: "skipped",
    });
  }

  // Malformed keys and unplaceable jobs are seen every round; say so once.
  #reportOnce(tag: string, data: Record<string, string | number>): void {
    if (this.#reported.has(tag)) return;
    if (this.#reported.size > 10_000) this.#reported.clear();
    this.#reported.add(tag);
    this.#log.log(data);
  }

  #nextWake(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.#wake = done;
    });
  }
}
