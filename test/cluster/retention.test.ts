/**
 * Retention of finished cluster jobs against a real one-node etcd: the
 * leading scheduler removes jobs finished for longer than the retention
 * (with their leftover keys), keeps younger, running and pending ones,
 * removes the oldest first beyond the count bound, never removes a job
 * whose status changed since it was read, and only while it leads. Each
 * test has its own key prefix; the records are written directly, with
 * `updated_at` in the past, so no test waits for a retention to pass.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import type { Etcd3, Lease } from "etcd3";

import { emptyStatus } from "../../src/cluster/decisions.js";
import { openEtcd } from "../../src/cluster/etcd.js";
import { ClusterKeys } from "../../src/cluster/keys.js";
import {
  validateSubmission,
  type ClusterState,
  type HostRegistration,
} from "../../src/cluster/records.js";
import {
  chooseRemovals,
  RetentionSweeper,
  type FinishedJob,
  type SweepResult,
} from "../../src/cluster/retention.js";
import { Scheduler } from "../../src/cluster/scheduler.js";
import { Txn } from "../../src/cluster/txn.js";
import { Context, MemoryLogger } from "../../src/log/index.js";
import { runLorne, waitFor } from "../helpers.js";
import { etcdSkipReason, startEtcd, type EtcdCluster } from "./etcd.js";
import { TEST_LEASE_TTL_S } from "./hosts.js";

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
/** Bound of every wait: generous for a loaded CI machine. */
const WAIT_MS = 45_000;

interface JobSetup {
  id: string;
  state: ClusterState;
  /** How long ago the status was written. */
  agoMs: number;
  hostId?: string;
  session?: string;
  restart?: "never" | "on-host-loss";
  /** Also leave an assignment and a service instance behind. */
  leftovers?: boolean;
}

test("retention: the oldest go first, by age or beyond the count", () => {
  const now = Date.parse("2026-01-02T00:00:00Z");
  const job = (id: string, agoMs: number): FinishedJob => ({
    id,
    state: "done",
    finalSinceMs: now - agoMs,
    status: { key: `/s/${id}`, modRevision: "1" },
  });
  const finished = [
    job("young", MINUTE_MS),
    job("old", 2 * HOUR_MS),
    job("middle", 30 * MINUTE_MS),
    { ...job("undated", 0), finalSinceMs: NaN },
  ];
  const pick = (retentionMs: number, max: number) =>
    chooseRemovals(
      finished,
      { finishedRetentionMs: retentionMs, finishedMax: max },
      now,
    ).map((r) => `${r.job.id}:${r.reason}`);

  assert.deepEqual(pick(HOUR_MS, 10), ["old:age"]);
  assert.deepEqual(pick(HOUR_MS, 2), ["undated:count", "old:age"]);
  assert.deepEqual(pick(HOUR_MS, 1), [
    "undated:count",
    "old:age",
    "middle:count",
  ]);
  assert.deepEqual(pick(10 * MINUTE_MS, 10), ["old:age", "middle:age"]);
  // Exactly the retention is not longer than it.
  assert.deepEqual(pick(30 * MINUTE_MS, 10), ["old:age"]);
  assert.deepEqual(pick(0, 1), []);
});

describe("cluster retention", { skip: etcdSkipReason() }, () => {
  let etcd: EtcdCluster;
  let client: Etcd3;
  const schedulers: Scheduler[] = [];
  const leases: Lease[] = [];
  let prefixCount = 0;

  before(async () => {
    etcd = await startEtcd();
    client = openEtcd({ endpoints: etcd.endpoints });
  });

  after(async () => {
    await Promise.all(schedulers.map((s) => s.close()));
    await Promise.all(leases.map((l) => l.revoke()));
    client?.close();
    await etcd?.close();
  });

  function newKeys(): ClusterKeys {
    prefixCount++;
    return new ClusterKeys(`/rt${prefixCount}/`);
  }

  async function putJob(keys: ClusterKeys, setup: JobSetup): Promise<void> {
    const job = validateSubmission(
      {
        config: { cmd: ["true"] },
        restart: setup.restart ?? "never",
        constraints: setup.state === "pending" ? { zone: "nowhere" } : {},
      },
      setup.id,
    );
    await client.put(keys.job(setup.id)).value(JSON.stringify(job));
    if (setup.state === "pending") return;
    const status = {
      ...emptyStatus(
        setup.id,
        1,
        new Date(Date.now() - setup.agoMs).toISOString(),
      ),
      state: setup.state,
      host_id: setup.hostId ?? "h-gone",
      session: setup.session ?? "1",
    };
    await client.put(keys.status(setup.id)).value(JSON.stringify(status));
    if (setup.leftovers) {
      await client.put(keys.assignment("h-gone", setup.id)).value("{}");
      await client.put(keys.service("web", setup.id)).value("{}");
    }
  }

  /** A host registration on a live lease, so its running jobs stay. */
  async function registerHost(keys: ClusterKeys): Promise<string> {
    const lease = client.lease(30);
    leases.push(lease);
    const session = await lease.grant();
    const host: HostRegistration = {
      id: "h-live",
      url: "http://127.0.0.1:1",
      attributes: {},
      backend: "process",
      capacity: { ports: 10 },
      version: "test",
      started_at: new Date().toISOString(),
    };
    await lease.put(keys.host("h-live")).value(JSON.stringify(host));
    return session;
  }

  async function exists(key: string): Promise<boolean> {
    return (await client.get(key).exec()).kvs.length > 0;
  }

  async function jobKeys(keys: ClusterKeys): Promise<string[]> {
    const listed = await client.getAll().prefix(keys.jobs()).keys();
    return listed.map((k) => k.slice(keys.jobs().length)).sort();
  }

  function startScheduler(
    keys: ClusterKeys,
    id: string,
    retention: { finishedRetentionMs: number; finishedMax?: number },
  ) {
    const logger = new MemoryLogger();
    const sweeps: SweepResult[] = [];
    const scheduler = new Scheduler({
      client,
      keys,
      id,
      leaseTtlS: TEST_LEASE_TTL_S,
      log: new Context({ logger }),
      resyncMs: 200,
      retention: { ...retention, sweepIntervalMs: 100 },
      onSweep: (result) => sweeps.push(result),
    });
    schedulers.push(scheduler);
    scheduler.start();
    return { scheduler, logger, sweeps };
  }

  test("cluster retention: removes jobs finished longer ago, with their leftovers; keeps the rest", async () => {
    const keys = newKeys();
    const session = await registerHost(keys);
    await putJob(keys, {
      id: "old-done",
      state: "done",
      agoMs: 2 * HOUR_MS,
      leftovers: true,
    });
    await putJob(keys, { id: "old-lost", state: "lost", agoMs: 3 * HOUR_MS });
    await putJob(keys, { id: "young-done", state: "done", agoMs: MINUTE_MS });
    await putJob(keys, {
      id: "old-running",
      state: "running",
      agoMs: 5 * HOUR_MS,
      hostId: "h-live",
      session,
    });
    await putJob(keys, { id: "waiting", state: "pending", agoMs: 0 });
    // Its host is gone: placed again (not final), never removed.
    await putJob(keys, {
      id: "restartable",
      state: "running",
      agoMs: 5 * HOUR_MS,
      restart: "on-host-loss",
    });

    const { scheduler, logger, sweeps } = startScheduler(keys, "s1", {
      finishedRetentionMs: HOUR_MS,
    });
    await waitFor(
      async () =>
        !(await exists(keys.job("old-done"))) &&
        !(await exists(keys.job("old-lost"))),
      "the old finished jobs to go",
      WAIT_MS,
    );
    // One more sweep, after the restartable job was placed again.
    const seen = sweeps.length;
    await waitFor(() => sweeps.length > seen, "another sweep", WAIT_MS);
    await scheduler.close();

    assert.deepEqual(await jobKeys(keys), [
      "old-running",
      "restartable",
      "waiting",
      "young-done",
    ]);
    for (const key of [
      keys.status("old-done"),
      keys.assignment("h-gone", "old-done"),
      keys.service("web", "old-done"),
      keys.status("old-lost"),
    ]) {
      assert.equal(await exists(key), false, key);
    }
    const restartable = await client.get(keys.status("restartable")).json();
    assert.equal((restartable as { state: string }).state, "assigned");

    const removed = logger.records.filter((r) => r.at === "removed");
    assert.deepEqual(
      removed.map((r) => [r.fn, r["job.id"], r.state, r.reason]),
      [
        ["retention", "old-lost", "lost", "age"],
        ["retention", "old-done", "done", "age"],
      ],
    );
    for (const r of removed) {
      assert.ok((r.final_for_ms as number) > 2 * HOUR_MS, JSON.stringify(r));
    }
  });

  test("cluster retention: a job with more leftover keys than one transaction takes is left and said; the rest go", async () => {
    const keys = newKeys();
    await putJob(keys, { id: "crowded", state: "done", agoMs: 3 * HOUR_MS });
    for (let i = 0; i < 130; i++) {
      await client.put(keys.assignment(`h${i}`, "crowded")).value("{}");
    }
    await putJob(keys, { id: "plain", state: "done", agoMs: 2 * HOUR_MS });

    const { scheduler, logger } = startScheduler(keys, "s1", {
      finishedRetentionMs: HOUR_MS,
    });
    await waitFor(
      async () => !(await exists(keys.job("plain"))),
      "the other old job to go",
      WAIT_MS,
    );
    await scheduler.close();
    assert.deepEqual(await jobKeys(keys), ["crowded"]);
    const said = logger.records.find((r) => r.at === "not_removed");
    assert.equal(said?.["job.id"], "crowded");
    assert.equal(said?.keys, 132);
  });

  test("cluster retention: beyond the count bound the oldest finished jobs go first", async () => {
    const keys = newKeys();
    for (let i = 1; i <= 5; i++) {
      await putJob(keys, {
        id: `f${i}`,
        state: i % 2 ? "done" : "crashed",
        agoMs: (10 - i) * MINUTE_MS,
      });
    }
    const { scheduler } = startScheduler(keys, "s1", {
      finishedRetentionMs: HOUR_MS,
      finishedMax: 3,
    });
    await waitFor(
      async () => (await jobKeys(keys)).length === 3,
      "two jobs to go",
      WAIT_MS,
    );
    await scheduler.close();
    assert.deepEqual(await jobKeys(keys), ["f3", "f4", "f5"]);
  });

  test("cluster retention: a job whose status changed after the read is not removed", async () => {
    const keys = newKeys();
    await putJob(keys, {
      id: "back",
      state: "lost",
      agoMs: 2 * HOUR_MS,
      restart: "on-host-loss",
    });
    await putJob(keys, { id: "gone", state: "done", agoMs: 2 * HOUR_MS });
    const leaderKey = `${keys.election()}scheduler/test`;
    await client.put(leaderKey).value("test");
    const logger = new MemoryLogger();
    const sweeper = new RetentionSweeper({
      client,
      keys,
      retention: { finishedRetentionMs: HOUR_MS, finishedMax: 100 },
      log: new Context({ logger }),
      onInvalid: (key, err) => assert.fail(`${key}: ${err.message}`),
    });

    const due = await sweeper.due();
    assert.deepEqual(
      due.chosen.map((r) => r.job.id),
      ["back", "gone"],
    );
    // Placed again meanwhile: pending, not final any more.
    const status = (await client.get(keys.status("back")).json()) as object;
    await client
      .put(keys.status("back"))
      .value(JSON.stringify({ ...status, state: "pending" }));
    const result = await sweeper.remove(
      new Txn(client, keys, leaderKey),
      due,
      () => false,
    );

    assert.deepEqual(result, {
      finished: 2,
      removed: 1,
      conflicts: 1,
      more: false,
      deposed: false,
    });
    assert.deepEqual(await jobKeys(keys), ["back"]);
    assert.equal(await exists(keys.status("back")), true);
  });

  test("cluster retention: a deposed leader removes nothing and stops", async () => {
    const keys = newKeys();
    for (let i = 0; i < 150; i++) {
      await putJob(keys, { id: `d${i}`, state: "done", agoMs: 2 * HOUR_MS });
    }
    const leaderKey = `${keys.election()}scheduler/test`;
    await client.put(leaderKey).value("test");
    const sweeper = new RetentionSweeper({
      client,
      keys,
      retention: { finishedRetentionMs: HOUR_MS, finishedMax: 1_000 },
      log: new Context({ logger: new MemoryLogger() }),
      onInvalid: (key, err) => assert.fail(`${key}: ${err.message}`),
    });
    const due = await sweeper.due();
    assert.equal(due.chosen.length, 150);
    await client.delete().key(leaderKey);

    const txn = new Txn(client, keys, leaderKey);
    const result = await sweeper.remove(txn, due, () => false);

    assert.deepEqual(result, {
      finished: 150,
      removed: 0,
      conflicts: 0,
      more: false,
      deposed: true,
    });
    assert.equal((await jobKeys(keys)).length, 150);
  });

  test("cluster retention: a follower does not remove; it does once it leads", async () => {
    const keys = newKeys();
    await putJob(keys, { id: "ten-min", state: "done", agoMs: 10 * MINUTE_MS });
    // The leader keeps an hour; the follower would keep a second.
    const a = startScheduler(keys, "sa", { finishedRetentionMs: HOUR_MS });
    await waitFor(() => a.scheduler.leading, "sa to lead", WAIT_MS);
    const b = startScheduler(keys, "sb", { finishedRetentionMs: 1_000 });
    await waitFor(
      async () =>
        (await client.getAll().prefix(`${keys.election()}scheduler/`).keys())
          .length === 2,
      "sb to campaign",
      WAIT_MS,
    );
    const seen = a.sweeps.length;
    await waitFor(
      () => a.sweeps.length > seen + 1,
      "two sweeps by sa",
      WAIT_MS,
    );

    assert.equal(b.scheduler.leading, false);
    assert.deepEqual(await jobKeys(keys), ["ten-min"]);
    assert.equal(b.sweeps.length, 0);

    const ps = await runLorne([
      "cluster",
      "ps",
      "--all",
      "--etcd",
      etcd.endpoints.join(","),
      "--etcd-prefix",
      keys.prefix,
    ]);
    assert.equal(ps.code, 0, ps.stderr);
    assert.equal(
      ps.stderr,
      "Finished jobs are removed 1h after they end, and the oldest first " +
        'beyond 10000 (scheduler "sa")\n',
    );

    await a.scheduler.close();
    await waitFor(
      async () => (await jobKeys(keys)).length === 0,
      "sb to remove the job",
      WAIT_MS,
    );
    await b.scheduler.close();
    assert.ok(b.logger.records.some((r) => r.at === "removed"));
    assert.ok(!a.logger.records.some((r) => r.at === "removed"));
  });

  test("cluster retention: bad flag values name the flag", async () => {
    // Usage errors exit 2, lorne host's bad flag values too.
    const cases: [string[], string, number][] = [
      [
        ["scheduler", "--finished-retention", "1x"],
        'lorne: Invalid --finished-retention "1x": expected a duration such as 90s, 30m, 24h or 1d12h, up to 3650d, or 0 to keep finished jobs forever\n',
        2,
      ],
      [
        ["scheduler", "--finished-max", "0"],
        'lorne: Invalid --finished-max "0": expected a whole number of jobs from 1 to 10000000\n',
        2,
      ],
    ];
    for (const [flags, message] of [
      [["--finished-max", "5"], "Invalid --finished-max: needs --scheduler"],
      [
        ["--scheduler", "--finished-retention", "-1h"],
        'Invalid --finished-retention "-1h": expected a duration such as 90s, 30m, 24h or 1d12h, up to 3650d, or 0 to keep finished jobs forever',
      ],
    ] as const) {
      cases.push([["host", ...flags], `lorne host: ${message}\n`, 2]);
    }
    const runs = await Promise.all(
      cases.map(([args]) =>
        runLorne([...args, "--etcd", etcd.endpoints[0] ?? ""]),
      ),
    );
    runs.forEach((run, i) => {
      const [args, stderr, code] = cases[i] as (typeof cases)[number];
      assert.equal(run.stderr, stderr, args.join(" "));
      assert.equal(run.code, code, args.join(" "));
    });
  });
});
