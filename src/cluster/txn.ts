/**
 * The scheduler's writes, as guarded etcd transactions. Each decision is a
 * unit: the conditions it rests on (the job's status unchanged, the host
 * still there or still gone) and the puts and deletes it makes. Units are
 * committed many to a transaction, all guarded by the leader's election
 * key; when a batch fails, its units are tried one by one so that one
 * stale decision does not hold back the rest.
 */
import type { Etcd3 } from "etcd3";

import type { ClusterKeys } from "./keys.js";

/**
 * etcd refuses a transaction with more than 128 operations (its
 * --max-txn-ops default); a batch stays under it with room to spare.
 */
const MAX_BATCH_OPS = 120;

/** A key and its mod revision when read; null when it was absent. */
export interface KeyGuard {
  key: string;
  modRevision: string | null;
}

export type TxnOp = { put: string; value: unknown } | { delete: string };

/** One decision; see the module comment. */
export interface TxnUnit {
  /** The job's status key, and its mod revision when read (null: absent). */
  status: KeyGuard;
  /** The host must still be registered under this lease. */
  hostAlive?: { hostId: string; lease: string };
  /** The host must no longer be registered under this session. */
  hostGone?: { hostId: string; session: string };
  /** Other keys that must be unchanged since read (null: still absent). */
  unchanged?: KeyGuard[];
  ops: TxnOp[];
}

/** Commits units for one leader; see the module comment. */
export class Txn {
  readonly #client: Etcd3;
  readonly #keys: ClusterKeys;
  readonly #leaderKey: string;
  #deposed = false;

  constructor(client: Etcd3, keys: ClusterKeys, leaderKey: string) {
    this.#client = client;
    this.#keys = keys;
    this.#leaderKey = leaderKey;
  }

  /** Whether the leader's election key still exists. */
  async stillLeader(): Promise<boolean> {
    const res = await this.#client.get(this.#leaderKey).exec();
    return res.kvs.length > 0;
  }

  /**
   * Whether a failed batch found the leader's key gone: this leader is
   * deposed, and nothing it commits from now on can succeed.
   */
  get deposed(): boolean {
    return this.#deposed;
  }

  /**
   * Commits every unit; returns, per unit, whether it was applied. Once a
   * failed batch shows the leader deposed, the rest is not tried.
   */
  async commitAll(units: TxnUnit[]): Promise<boolean[]> {
    const results: boolean[] = [];
    for (const batch of batches(units)) {
      if (this.#deposed) {
        results.push(...batch.map(() => false));
        continue;
      }
      if (batch.length > 1) {
        if (await this.#commit(batch)) {
          results.push(...batch.map(() => true));
          continue;
        }
        if (!(await this.stillLeader())) {
          this.#deposed = true;
          results.push(...batch.map(() => false));
          continue;
        }
      }
      for (const unit of batch) results.push(await this.#commit([unit]));
    }
    return results;
  }

  async #commit(units: TxnUnit[]): Promise<boolean> {
    let txn = this.#client.if(this.#leaderKey, "Version", ">", 0);
    for (const unit of units) {
      txn =
        unit.status.modRevision === null
          ? txn.and(unit.status.key, "Version", "==", 0)
          : txn.and(unit.status.key, "Mod", "==", unit.status.modRevision);
      if (unit.hostAlive) {
        const key = this.#keys.host(unit.hostAlive.hostId);
        txn = txn.and(key, "Lease", "==", unit.hostAlive.lease);
      }
      if (unit.hostGone) {
        const key = this.#keys.host(unit.hostGone.hostId);
        txn = txn.and(key, "Lease", "!=", unit.hostGone.session);
      }
      for (const guard of unit.unchanged ?? []) {
        txn =
          guard.modRevision === null
            ? txn.and(guard.key, "Version", "==", 0)
            : txn.and(guard.key, "Mod", "==", guard.modRevision);
      }
    }
    const ops = units.flatMap((unit) =>
      unit.ops.map((op) =>
        "put" in op
          ? this.#client.put(op.put).value(JSON.stringify(op.value))
          : this.#client.delete().key(op.delete),
      ),
    );
    const res = await txn.then(...ops).commit();
    return res.succeeded;
  }
}

/** Operations and compares one unit takes in a transaction. */
function unitSize(unit: TxnUnit): number {
  return unit.ops.length + 3 + (unit.unchanged?.length ?? 0);
}

/**
 * Whether a unit fits in one transaction: etcd refuses a larger one
 * whole (`too many operations in txn request`).
 */
export function fitsOneTxn(unit: TxnUnit): boolean {
  return unitSize(unit) <= MAX_BATCH_OPS;
}

function* batches(units: TxnUnit[]): Generator<TxnUnit[]> {
  let batch: TxnUnit[] = [];
  let ops = 0;
  for (const unit of units) {
    const size = unitSize(unit);
    if (batch.length > 0 && ops + size > MAX_BATCH_OPS) {
      yield batch;
      batch = [];
      ops = 0;
    }
    batch.push(unit);
    ops += size;
  }
  if (batch.length > 0) yield batch;
}
