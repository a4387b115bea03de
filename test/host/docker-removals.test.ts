/**
 * Pending container removals: a removal the engine refuses (it was going
 * away) is tried again until the container is gone. The real engine case
 * is test/docker/dockerd-restart.test.ts; here a container stands in whose
 * refusals the test controls.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  PendingRemovals,
  type Removable,
} from "../../src/host/backends/docker/removals.js";
import { Context, MemoryLogger } from "../../src/log/index.js";
import { waitFor } from "../helpers.js";

// A container whose first `failures` removals fail with `statusCode`.
function container(id: string, failures: number, statusCode = 500) {
  let calls = 0;
  let removed = false;
  const fake: Removable & { calls(): number; removed(): boolean } = {
    id,
    remove: () => {
      calls += 1;
      if (calls <= failures) {
        return Promise.reject(
          Object.assign(new Error("connect ENOENT /var/run/docker.sock"), {
            statusCode,
          }),
        );
      }
      removed = true;
      return Promise.resolve();
    },
    calls: () => calls,
    removed: () => removed,
  };
  return fake;
}

function logger() {
  const memory = new MemoryLogger();
  return { memory, log: new Context({ logger: memory }) };
}

test("docker removals: removed at once nothing is left pending or logged", async () => {
  const { memory, log } = logger();
  const removals = new PendingRemovals();
  const c = container("a", 0);
  await removals.remove(c, log);
  assert.equal(c.removed(), true);
  assert.equal(removals.size, 0);
  assert.deepEqual(memory.records, []);
  removals.close();
});

test("docker removals: 404 means already gone", async () => {
  const { memory, log } = logger();
  const removals = new PendingRemovals();
  const c = container("a", 1, 404);
  await removals.remove(c, log);
  assert.equal(c.calls(), 1);
  assert.equal(removals.size, 0);
  assert.deepEqual(memory.records, []);
  removals.close();
});

test("docker removals: a refused removal is logged once and retried until it succeeds", async () => {
  const { memory, log } = logger();
  const removals = new PendingRemovals();
  const c = container("a", 2);
  await removals.remove(c, log);
  assert.equal(c.removed(), false);
  assert.equal(removals.size, 1);
  await waitFor(() => c.removed(), "the retried removal", 10_000);
  assert.equal(c.calls(), 3);
  assert.equal(removals.size, 0);
  assert.deepEqual(
    memory.records.map((r) => r.at),
    ["remove", "removed_later"],
  );
  assert.equal(memory.records[0]?.err, "connect ENOENT /var/run/docker.sock");
  removals.close();
});

test("docker removals: retryNow tries at once (the engine came back)", async () => {
  const { log } = logger();
  const removals = new PendingRemovals();
  const c = container("a", 1);
  await removals.remove(c, log);
  assert.equal(removals.size, 1);
  removals.retryNow();
  await waitFor(() => c.removed(), "the removal after retryNow", 200);
  removals.close();
});

test("docker removals: close stops retrying", async () => {
  const { log } = logger();
  const removals = new PendingRemovals();
  const c = container("a", 1);
  await removals.remove(c, log);
  removals.close();
  await new Promise((resolve) => setTimeout(resolve, 1_200));
  assert.equal(c.calls(), 1);
  assert.equal(removals.size, 1);
});
