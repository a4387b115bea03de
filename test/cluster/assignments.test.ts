/**
 * Following a host's assignments against a real one-node etcd: a watch
 * cancelled while it is still starting, or one whose `jobs/` half cannot
 * be created (the host's etcd user may not read `jobs/`), leaves nothing
 * watching behind.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import type { Etcd3 } from "etcd3";

import { AssignmentWatch } from "../../src/cluster/assignments.js";
import { openEtcd } from "../../src/cluster/etcd.js";
import { ClusterKeys } from "../../src/cluster/keys.js";
import { Context, MemoryLogger } from "../../src/log/index.js";
import { sleep } from "../../src/sleep.js";
import { waitFor } from "../helpers.js";
import { enableAuth, signIn } from "./auth.js";
import { etcdSkipReason, startEtcd, type EtcdCluster } from "./etcd.js";

/** How long events may take to reach a watch that is still there. */
const SETTLE_MS = 500;

describe("cluster assignments", { skip: etcdSkipReason() }, () => {
  let etcd: EtcdCluster;
  let client: Etcd3;
  const keys = new ClusterKeys();

  before(async () => {
    etcd = await startEtcd();
    client = openEtcd({ endpoints: etcd.endpoints });
  });

  after(async () => {
    client?.close();
    await etcd?.close();
  });

  /** A watch of host `h1` that records what it is handed. */
  function recordingWatch(
    seen: string[],
    watchClient: Etcd3 = client,
  ): AssignmentWatch {
    return new AssignmentWatch({
      client: watchClient,
      keys,
      hostId: "h1",
      log: new Context({ logger: new MemoryLogger() }),
      onAssigned: (jobId) => seen.push(`assigned ${jobId}`),
      onUnassigned: (jobId) => seen.push(`unassigned ${jobId}`),
      onJobChange: (jobId) => seen.push(`job ${jobId}`),
    });
  }

  test("assignments: a watch cancelled while starting hands nothing on", async () => {
    const cancelledSeen: string[] = [];
    const cancelled = recordingWatch(cancelledSeen);
    // The start is still reading the current assignments: no await yet.
    const starting = cancelled.start();
    await cancelled.cancel();
    await starting;

    const controlSeen: string[] = [];
    const control = recordingWatch(controlSeen);
    await control.start();
    try {
      await client.put(keys.job("j1")).value("{}");
      await client.put(keys.assignment("h1", "j1")).value("{}");
      await client.delete().key(keys.assignment("h1", "j1"));
      await waitFor(
        () => controlSeen.length === 3,
        "the control watch to see the changes",
      );
      assert.deepEqual(controlSeen.sort(), [
        "assigned j1",
        "job j1",
        "unassigned j1",
      ]);
      // Both watches share one stream: what reached one has reached both.
      await sleep(SETTLE_MS);
      assert.deepEqual(cancelledSeen, []);
    } finally {
      await control.cancel();
    }
  });

  test("assignments: a watch whose jobs/ half fails cancels its other half", async () => {
    // Auth stays on for good: this test has an etcd of its own.
    const own = await startEtcd();
    const hosts = own.endpoints;
    const admin = await enableAuth(hosts, "h1", [
      { permission: "Read", prefix: keys.assignments("h1") },
    ]);
    const limited = signIn(hosts, "h1");
    try {
      const failedSeen: string[] = [];
      await assert.rejects(
        recordingWatch(failedSeen, limited).start(),
        /permission denied/,
      );

      const controlSeen: string[] = [];
      const control = recordingWatch(controlSeen, admin);
      await control.start();
      try {
        await admin.put(keys.assignment("h1", "j2")).value("{}");
        await waitFor(
          () => controlSeen.length === 1,
          "the control watch to see the assignment",
        );
        await sleep(SETTLE_MS);
        assert.deepEqual(failedSeen, []);
      } finally {
        await control.cancel();
      }
    } finally {
      limited.close();
      admin.close();
      await own.close();
    }
  });
});
