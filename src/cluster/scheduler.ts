/**
 * The cluster scheduler. Every scheduler campaigns in etcd's election (the
 * lowest-revision key under `election/` leads; keys are bound to a lease,
 * so a dead leader's key goes with its lease). The leader reads the cluster
 * view, places pending jobs, and deals with jobs whose host has gone.
 *
 * Exactly-once placement does not rest on there being one leader at a
 * time, which no lease can promise: every decision is an etcd transaction
 * that checks (1) the leader's own election key still exists, (2) the
 * job's status key has not changed since it was read, and (3) the host is
 * still the registration that was read. A deposed leader's writes fail
 * check 1, and two leaders racing on one job cannot both pass check 2.
 *
 * The leader also removes jobs that have been finished for long enough
 * (retention.ts), under the same guard.
 */
import type { Campaign, Etcd3 } from "etcd3";

import { errorMessage } from "../errors.js";
import type { Context } from "../log/index.js";
import { sleep } from "../sleep.js";
import type { ClusterKeys } from "./keys.js";
import { chooseHost, type Candidate } from "./placement.js";
import {
  isFinalState,
  type Assignment,
  type ClusterJob,
  type ClusterStatus,
} from "./records.js";
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
import { Txn, type TxnUnit } from "./txn.js";
import { readView, type ClusterView, type Entry } from "./view.js";

/** Shortest time between the starts of two placement rounds. */
export const DEFAULT_ROUND_INTERVAL_MS = 50;
/** A round runs at least this often, changes or not. */
export const DEFAULT_RESYNC_MS = 2_000;
/** Wait before campaigning again after an error. */
const RETRY_MS = 500;

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
  /**
   * Removal of finished jobs; default DEFAULT_FINISHED_RETENTION_MS and
   * DEFAULT_FINISHED_MAX, swept every minute.
   */
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
  readonly #retention: RetentionSweeper;
  #campaign: Campaign | null = null;
  #leading = false;
  #closing = false;
  #wake: (() => void) | null = null;
  #dirty = true;
  #running: Promise<void> | null = null;
  #markClosing!: () => void;
  readonly #closingSignal = new Promise<void>(
    (resolve) => (this.#markClosing = resolve),
  );

  constructor(options: SchedulerOptions) {
    this.id = options.id;
    this.#options = options;
    this.#log = options.log.child({ fn: "scheduler", "scheduler.id": this.id });
    this.#roundIntervalMs =
      options.roundIntervalMs ?? DEFAULT_ROUND_INTERVAL_MS;
    this.#resyncMs = options.resyncMs ?? DEFAULT_RESYNC_MS;
    this.#retention = new RetentionSweeper({
      client: options.client,
      keys: options.keys,
      retention: {
        ...options.retention,
        finishedRetentionMs:
          options.retention?.finishedRetentionMs ??
          DEFAULT_FINISHED_RETENTION_MS,
        finishedMax: options.retention?.finishedMax ?? DEFAULT_FINISHED_MAX,
      },
      log: this.#log,
      onInvalid: (key, err) => this.#reportInvalid(key, err),
    });
  }

  /** Starts campaigning; leads whenever elected, until closed. */
  start(): void {
    this.#running ??= this.#campaignLoop();
  }

  /** Whether this scheduler leads right now. */
  get leading(): boolean {
    return this.#leading;
  }

  /** Resigns (a follower is elected at once) and stops. Idempotent. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#markClosing();
    this.#wake?.();
    await this.#campaign?.resign().catch(() => undefined);
    await this.#running;
  }

  async #campaignLoop(): Promise<void> {
    const { client, keys } = this.#options;
    // etcd3 keeps candidates under <namespace>election/<name>/, which is
    // keys.election() + "scheduler/".
    const election = client
      .namespace(keys.prefix)
      .election("scheduler", this.#options.leaseTtlS);
    while (!this.#closing) {
      const campaign = election.campaign(this.id);
      this.#campaign = campaign;
      let lost = false;
      const deposed = new Promise<void>((resolve) =>
        campaign.on("error", (err) => {
          if (this.#leading) {
            this.#log.log({ at: "deposed", err: errorMessage(err) });
          } else if (!this.#closing) {
            this.#log.log({ at: "campaign_error", err: errorMessage(err) });
          }
          lost = true;
          this.#wake?.();
          resolve();
        }),
      );
      try {
        await Promise.race([
          new Promise<void>((resolve) => campaign.on("elected", resolve)),
          deposed,
          this.#closingSignal,
        ]);
        if (!lost && !this.#closing) {
          const leaderKey = await campaign.getCampaignKey();
          this.#leading = true;
          this.#log.log({ at: "elected", "election.key": leaderKey });
          await this.#lead(leaderKey, () => lost);
        }
      } catch (err) {
        this.#log.log({ at: "error", err: errorMessage(err) });
      } finally {
        this.#leading = false;
        await campaign.resign().catch(() => undefined);
      }
      if (this.#closing) break;
      await sleep(RETRY_MS);
    }
    this.#log.log({ at: "resigned" });
  }

  // Runs rounds until closing or deposed; a watch on the whole prefix
  // wakes it up, and the resync timer runs a round regardless.
  async #lead(leaderKey: string, isLost: () => boolean): Promise<void> {
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
    const retention = this.#retention;
    try {
      await retention.publish(leaderKey, this.id);
    } catch (err) {
      this.#log.log({ at: "publish_error", err: errorMessage(err) });
    }
    // The first sweep follows the first round.
    let nextSweepAt = retention.enabled ? 0 : Number.POSITIVE_INFINITY;
    const shouldStop = () => this.#closing || isLost();
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
        if (Date.now() >= nextSweepAt && !shouldStop()) {
          let delayMs = retention.sweepIntervalMs;
          try {
            const swept = await retention.sweep(txn, shouldStop);
            this.#options.onSweep?.(swept);
            if (swept.deposed) {
              this.#log.log({ at: "deposed", reason: "election key gone" });
              return;
            }
            if (swept.more) delayMs = Math.min(delayMs, BACKLOG_SWEEP_MS);
          } catch (err) {
            this.#log.log({ at: "sweep_error", err: errorMessage(err) });
          }
          nextSweepAt = Date.now() + delayMs;
        }
        const waitMs = this.#roundIntervalMs - (Date.now() - startedAt);
        if (waitMs > 0) await sleep(waitMs);
        if (!this.#dirty) {
          const untilSweepMs = Math.max(0, nextSweepAt - Date.now());
          await this.#nextWake(Math.min(this.#resyncMs, untilSweepMs));
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
    const result: RoundResult = {
      placed: 0,
      lost: 0,
      requeued: 0,
      stopped: 0,
      conflicts: 0,
    };
    const candidates = liveCandidates(view);
    const units: TxnUnit[] = [];
    const kinds: (keyof RoundResult)[] = [];
    const jobs = [...view.jobs.values()].sort(
      (a, b) =>
        a.value.submitted_at.localeCompare(b.value.submitted_at) ||
        a.value.id.localeCompare(b.value.id),
    );
    for (const job of jobs) {
      // A status nobody can read says nothing safe about where the job
      // runs: the job waits, reported, until the value is fixed.
      if (view.invalidStatuses.has(job.value.id)) continue;
      const status = view.statuses.get(job.value.id);
      const decision = this.#decide(job, status, view, candidates);
      if (decision) {
        units.push(decision.unit);
        kinds.push(decision.kind);
      }
    }
    const committed = await txn.commitAll(units);
    committed.forEach((ok, i) => {
      const kind = kinds[i] as keyof RoundResult;
      if (ok) result[kind]++;
      else result.conflicts++;
    });
    return result;
  }

  #decide(
    job: Entry<ClusterJob>,
    status: Entry<ClusterStatus> | undefined,
    view: ClusterView,
    candidates: Map<string, LiveCandidate>,
  ): { unit: TxnUnit; kind: keyof RoundResult } | null {
    const { keys } = this.#options;
    const spec = job.value;
    const s = status?.value;
    if (s && isFinalState(s.state)) return null;
    const statusGuard = status
      ? { key: status.key, modRevision: status.modRevision }
      : { key: keys.status(spec.id), modRevision: null };

    if (s === undefined || s.state === "pending") {
      if (spec.desired === "stop") {
        return {
          kind: "stopped",
          unit: this.#setStatus(statusGuard, spec.id, "stopped", s, null),
        };
      }
      // A job back to pending after a loss keeps the lost host's id.
      return this.#place(
        spec,
        statusGuard,
        (s?.attempt ?? 0) + 1,
        candidates,
        s?.host_id ?? undefined,
      );
    }

    // assigned, starting or running: is its host still the one it was?
    const hostId = s.host_id ?? "";
    const host = view.hosts.get(hostId);
    if (host && host.lease === s.session) return null;
    const error = `host "${hostId}" was lost (its lease ended)`;
    const goneGuard = { hostId, session: s.session ?? "" };
    if (spec.restart === "on-host-loss" && spec.desired === "run") {
      // Elsewhere: the lost host may be back under a new lease, with the
      // job's id still in its job table.
      const placed = this.#place(
        spec,
        statusGuard,
        s.attempt + 1,
        candidates,
        hostId,
      );
      if (placed) {
        placed.unit.hostGone = goneGuard;
        placed.unit.ops.push({ delete: keys.assignment(hostId, spec.id) });
        return { unit: placed.unit, kind: "requeued" };
      }
      const unit = this.#setStatus(statusGuard, spec.id, "pending", s, error);
      unit.hostGone = goneGuard;
      unit.ops.push({ delete: keys.assignment(hostId, spec.id) });
      return { unit, kind: "lost" };
    }
    const unit = this.#setStatus(statusGuard, spec.id, "lost", s, error);
    unit.hostGone = goneGuard;
    unit.ops.push({ delete: keys.assignment(hostId, spec.id) });
    return { unit, kind: "lost" };
  }

  #place(
    job: ClusterJob,
    statusGuard: TxnUnit["status"],
    attempt: number,
    candidates: Map<string, LiveCandidate>,
    excludeHostId?: string,
  ): { unit: TxnUnit; kind: keyof RoundResult } | null {
    const { keys } = this.#options;
    const chosen = chooseHost(
      job,
      [...candidates.values()].filter((c) => c.host.id !== excludeHostId),
    );
    if (!chosen) {
      this.#reportOnce(`no_host:${job.id}`, {
        at: "no_host",
        "job.id": job.id,
        constraints: JSON.stringify(job.constraints),
      });
      return null;
    }
    chosen.active++;
    const host = chosen.host;
    const session = candidates.get(host.id)?.lease ?? "";
    const now = new Date().toISOString();
    const assignment: Assignment = {
      job_id: job.id,
      host_id: host.id,
      session,
      attempt,
      scheduler: this.id,
      assigned_at: now,
    };
    const status: ClusterStatus = {
      ...emptyStatus(job.id, attempt, now),
      state: "assigned",
      host_id: host.id,
      session,
    };
    return {
      kind: "placed",
      unit: {
        status: statusGuard,
        hostAlive: { hostId: host.id, lease: session },
        ops: [
          { put: keys.assignment(host.id, job.id), value: assignment },
          { put: keys.status(job.id), value: status },
        ],
      },
    };
  }

  #setStatus(
    statusGuard: TxnUnit["status"],
    jobId: string,
    state: ClusterStatus["state"],
    previous: ClusterStatus | undefined,
    error: string | null,
  ): TxnUnit {
    const now = new Date().toISOString();
    const status: ClusterStatus = {
      ...(previous ?? emptyStatus(jobId, 0, now)),
      state,
      error,
      updated_at: now,
    };
    if (state === "pending") {
      status.session = null;
      status.pid = null;
    }
    return {
      status: statusGuard,
      ops: [{ put: this.#options.keys.status(jobId), value: status }],
    };
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

/** A blank status for a job, before any host has reported. */
export function emptyStatus(
  jobId: string,
  attempt: number,
  now: string,
): ClusterStatus {
  return {
    job_id: jobId,
    state: "pending",
    host_id: null,
    session: null,
    attempt,
    pid: null,
    ports: [],
    exit_status: null,
    signal: null,
    error: null,
    updated_at: now,
  };
}

/** A live host, with the lease its registration is bound to. */
type LiveCandidate = Candidate & { lease: string };

/** Live hosts with the count of active jobs each has. */
function liveCandidates(view: ClusterView): Map<string, LiveCandidate> {
  const out = new Map<string, LiveCandidate>();
  for (const [id, host] of view.hosts) {
    out.set(id, { host: host.value, active: 0, lease: host.lease });
  }
  for (const { value: s } of view.statuses.values()) {
    if (isFinalState(s.state) || s.host_id === null) continue;
    const candidate = out.get(s.host_id);
    if (candidate && candidate.lease === s.session) candidate.active++;
  }
  return out;
}
