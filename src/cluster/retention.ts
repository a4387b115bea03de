/**
 * Retention of finished cluster jobs. etcd has a storage quota, and every
 * scheduler round, every host's watch and `lorne cluster ps --all` read
 * every job: finished jobs left in etcd for good would fill it, and then
 * every write fails. The leading scheduler sweeps them out, once when it
 * takes the lead and then every minute.
 *
 * A job is finished when its status is final (done, failed, crashed,
 * stopped, lost). It became final when that status was written: its
 * `updated_at`, by the writer's clock, so the hosts' and schedulers'
 * clocks are taken to agree within a small part of the retention. A status
 * whose `updated_at` is not a time counts as the oldest of all: the count
 * bound removes it first, the age bound never.
 *
 * Each removal is one guarded unit of a transaction (see txn.ts): the
 * leader's key exists, the status is unchanged since it was read (so a
 * job that is not final any more is never removed), and so is the job's
 * key (a stop request written meanwhile waits for the next sweep). It
 * deletes the job's `jobs/` and `status/` keys and any `assignments/` and
 * `services/` keys of the job left behind. A sweep removes at most
 * `maxRemovalsPerSweep` jobs, so it holds etcd only briefly; with more to
 * remove, the next sweep comes soon.
 */
import type { Etcd3 } from "etcd3";

import { errorMessage } from "../errors.js";
import type { Context } from "../log/index.js";
import type { ClusterKeys } from "./keys.js";
import {
  isFinalState,
  parseRetention,
  parseStatus,
  type ClusterState,
  type RetentionRecord,
} from "./records.js";
import { fitsOneTxn, type KeyGuard, type Txn, type TxnUnit } from "./txn.js";
import { checkId, type InvalidHandler } from "./view.js";

/** Time between two sweeps. */
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000;
/** Time before the next sweep when the last one left work behind. */
export const BACKLOG_SWEEP_MS = 1_000;
/** Most jobs one sweep removes. */
export const DEFAULT_MAX_REMOVALS_PER_SWEEP = 1_000;
/** Units handed to one commitAll, so a deposed leader stops between them. */
const CHUNK_UNITS = 100;

/** How long finished jobs stay; see settings.ts for the defaults. */
export interface RetentionPolicy {
  /** Finished longer than this, a job goes; 0 keeps finished jobs forever. */
  finishedRetentionMs: number;
  /** Beyond this many finished jobs, the oldest go first. */
  finishedMax: number;
}

export interface RetentionOptions extends RetentionPolicy {
  /** Default DEFAULT_SWEEP_INTERVAL_MS. */
  sweepIntervalMs?: number;
  /** Default DEFAULT_MAX_REMOVALS_PER_SWEEP. */
  maxRemovalsPerSweep?: number;
}

/** A finished job as a sweep sees it. */
export interface FinishedJob {
  id: string;
  state: ClusterState;
  /** When its status became final, in ms since the epoch; NaN: unknown. */
  finalSinceMs: number;
  status: KeyGuard;
}

/** Why a job is removed: finished for too long, or one too many. */
export type RemovalReason = "age" | "count";

/** A finished job due for removal, and why. */
export interface Removal {
  job: FinishedJob;
  reason: RemovalReason;
}

/** What a sweep found due, with the guarded units that remove it. */
export interface DueRemovals {
  finished: number;
  chosen: Removal[];
  more: boolean;
  units: TxnUnit[];
}

/** What one sweep did, for logs and tests. */
export interface SweepResult {
  /** Finished jobs seen. */
  finished: number;
  removed: number;
  /** Removals refused because the job or its status changed meanwhile. */
  conflicts: number;
  /** More were due than one sweep removes. */
  more: boolean;
  /** The leader's key was gone: the sweep stopped. */
  deposed: boolean;
}

/**
 * The finished jobs to remove, oldest first: those final for longer than
 * the retention, and the oldest beyond the count bound.
 */
export function chooseRemovals(
  finished: FinishedJob[],
  policy: RetentionPolicy,
  nowMs: number,
): Removal[] {
  if (policy.finishedRetentionMs === 0) return [];
  const sorted = [...finished].sort(
    (a, b) => sortTime(a) - sortTime(b) || a.id.localeCompare(b.id),
  );
  const overCount = sorted.length - policy.finishedMax;
  const out: Removal[] = [];
  sorted.forEach((job, i) => {
    if (nowMs - job.finalSinceMs > policy.finishedRetentionMs) {
      out.push({ job, reason: "age" });
    } else if (i < overCount) {
      out.push({ job, reason: "count" });
    }
  });
  return out;
}

/** Removes finished jobs for one leader; see the module comment. */
export class RetentionSweeper {
  readonly policy: RetentionPolicy;
  readonly sweepIntervalMs: number;
  readonly #client: Etcd3;
  readonly #keys: ClusterKeys;
  readonly #log: Context;
  readonly #onInvalid: InvalidHandler;
  readonly #maxRemovals: number;

  constructor(options: {
    client: Etcd3;
    keys: ClusterKeys;
    retention: RetentionOptions;
    log: Context;
    onInvalid: InvalidHandler;
  }) {
    const { retention } = options;
    this.policy = {
      finishedRetentionMs: retention.finishedRetentionMs,
      finishedMax: retention.finishedMax,
    };
    this.sweepIntervalMs =
      retention.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    this.#maxRemovals =
      retention.maxRemovalsPerSweep ?? DEFAULT_MAX_REMOVALS_PER_SWEEP;
    this.#client = options.client;
    this.#keys = options.keys;
    this.#log = options.log.child({ fn: "retention" });
    this.#onInvalid = options.onInvalid;
  }

  /** Whether sweeps remove anything at all (a retention of 0 does not). */
  get enabled(): boolean {
    return this.policy.finishedRetentionMs > 0;
  }

  /**
   * Writes the policy to `retention`, on the leader's lease and only while
   * its key exists, for `lorne cluster ps --all` to show.
   */
  async publish(leaderKey: string, schedulerId: string): Promise<void> {
    const leader = await this.#client.get(leaderKey).exec();
    const lease = leader.kvs[0]?.lease;
    if (lease === undefined) return;
    const record: RetentionRecord = {
      scheduler: schedulerId,
      finished_retention_ms: this.policy.finishedRetentionMs,
      finished_max: this.policy.finishedMax,
      published_at: new Date().toISOString(),
    };
    await this.#client
      .if(leaderKey, "Version", ">", 0)
      .then(
        this.#client
          .put(this.#keys.retention())
          .value(JSON.stringify(record))
          .lease(lease),
      )
      .commit();
  }

  /**
   * One sweep: reads the finished jobs, removes those due (at most
   * maxRemovalsPerSweep), and stops as soon as `shouldStop` says so or
   * the leader's key is gone.
   */
  async sweep(txn: Txn, shouldStop: () => boolean): Promise<SweepResult> {
    return this.remove(txn, await this.due(), shouldStop);
  }

  /** The first half of a sweep: what is due, as read now. */
  async due(): Promise<DueRemovals> {
    const finished = await this.#readFinished();
    const due = chooseRemovals(finished, this.policy, Date.now());
    const picked = due.slice(0, this.#maxRemovals);
    const all = picked.length === 0 ? [] : await this.#units(picked);
    // A job with more leftover keys than one transaction holds (only
    // values written by hand get there) is left, said, and the rest go.
    const chosen: Removal[] = [];
    const units: TxnUnit[] = [];
    picked.forEach((removal, i) => {
      const unit = all[i] as TxnUnit;
      if (fitsOneTxn(unit)) {
        chosen.push(removal);
        units.push(unit);
        return;
      }
      this.#log.log({
        at: "not_removed",
        "job.id": removal.job.id,
        keys: unit.ops.length,
        err: "more keys than one etcd transaction takes",
        resolution: "delete its assignments/ and services/ keys by hand",
      });
    });
    return {
      finished: finished.length,
      chosen,
      more: due.length > picked.length,
      units,
    };
  }

  /** The second half of a sweep: removes what `due` found, if unchanged. */
  async remove(
    txn: Txn,
    due: DueRemovals,
    shouldStop: () => boolean,
  ): Promise<SweepResult> {
    const startedAt = Date.now();
    const { chosen, units } = due;
    const result: SweepResult = {
      finished: due.finished,
      removed: 0,
      conflicts: 0,
      more: due.more,
      deposed: false,
    };
    if (chosen.length === 0) return result;

    for (let i = 0; i < chosen.length; i += CHUNK_UNITS) {
      if (shouldStop() || txn.deposed) break;
      const committed = await txn.commitAll(units.slice(i, i + CHUNK_UNITS));
      committed.forEach((ok, j) => {
        const { job, reason } = chosen[i + j] as Removal;
        if (!ok) {
          if (!txn.deposed) result.conflicts++;
          return;
        }
        result.removed++;
        this.#log.log({
          at: "removed",
          "job.id": job.id,
          state: job.state,
          reason,
          final_for_ms: Number.isFinite(job.finalSinceMs)
            ? startedAt - job.finalSinceMs
            : "unknown",
        });
      });
    }

    result.deposed = txn.deposed;
    this.#log.log({
      at: "sweep",
      finished: result.finished,
      removed: result.removed,
      conflicts: result.conflicts,
      more: result.more,
      elapsed_ms: Date.now() - startedAt,
    });
    return result;
  }

  async #readFinished(): Promise<FinishedJob[]> {
    const prefix = this.#keys.statuses();
    const res = await this.#client.getAll().prefix(prefix).exec();
    const out: FinishedJob[] = [];
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      const id = key.slice(prefix.length);
      try {
        const status = checkId(parseStatus(kv.value.toString()), id, "job_id");
        if (!isFinalState(status.state)) continue;
        out.push({
          id,
          state: status.state,
          finalSinceMs: Date.parse(status.updated_at),
          status: { key, modRevision: kv.mod_revision },
        });
      } catch (err) {
        this.#onInvalid(
          key,
          err instanceof Error ? err : new Error(String(err)),
        );
      }
    }
    return out;
  }

  // Reads the job keys and the leftover assignments and services of the
  // jobs to remove; one read of each prefix, not one per job.
  async #units(removals: Removal[]): Promise<TxnUnit[]> {
    const keys = this.#keys;
    const jobs = removals.map((r) => r.job);
    const ids = new Set(jobs.map((j) => j.id));
    const jobRes = await this.#client.getAll().prefix(keys.jobs()).exec();
    const jobRevisions = new Map<string, string>();
    for (const kv of jobRes.kvs) {
      const id = kv.key.toString().slice(keys.jobs().length);
      if (ids.has(id)) jobRevisions.set(id, kv.mod_revision);
    }
    const leftovers = new Map<string, string[]>();
    for (const prefix of [keys.assignments(), keys.services()]) {
      const found = await this.#client.getAll().prefix(prefix).keys();
      for (const key of found) {
        // assignments/<host>/<job> and services/<name>/<job>
        const parts = keys.parse(key)?.parts ?? [];
        const id = parts[1];
        if (parts.length !== 2 || id === undefined || !ids.has(id)) continue;
        leftovers.set(id, [...(leftovers.get(id) ?? []), key]);
      }
    }
    return jobs.map((job) => ({
      status: job.status,
      unchanged: [
        {
          key: keys.job(job.id),
          modRevision: jobRevisions.get(job.id) ?? null,
        },
      ],
      ops: [
        { delete: keys.job(job.id) },
        { delete: job.status.key },
        ...(leftovers.get(job.id) ?? []).map((key) => ({ delete: key })),
      ],
    }));
  }
}

/** Reads the leader's published retention; null when none is published. */
export async function readRetention(
  client: Etcd3,
  keys: ClusterKeys,
  onInvalid: InvalidHandler,
): Promise<RetentionRecord | null> {
  const text = await client.get(keys.retention()).string();
  if (text === null) return null;
  try {
    return parseRetention(text);
  } catch (err) {
    onInvalid(keys.retention(), new Error(errorMessage(err)));
    return null;
  }
}

// Unknown times sort first: the count bound removes them before the rest.
function sortTime(job: FinishedJob): number {
  return Number.isFinite(job.finalSinceMs)
    ? job.finalSinceMs
    : Number.NEGATIVE_INFINITY;
}
