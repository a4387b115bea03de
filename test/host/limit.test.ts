import assert from "node:assert/strict";
import { test } from "node:test";

import { Semaphore } from "../../src/host/limit.js";

test("semaphore: never runs more than the limit at once, in arrival order", async () => {
  const limit = new Semaphore(2);
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  const gates = Array.from({ length: 5 }, () => {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
  });
  const tasks = gates.map((gate, i) =>
    limit.run(async () => {
      order.push(i);
      running++;
      peak = Math.max(peak, running);
      await gate.promise;
      running--;
    }),
  );
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, [0, 1]);
  for (const gate of gates) gate.resolve();
  await Promise.all(tasks);
  assert.equal(peak, 2);
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
});

test("semaphore: a failing task frees its slot", async () => {
  const limit = new Semaphore(1);
  await assert.rejects(
    limit.run(() => Promise.reject(new Error("boom"))),
    /boom/,
  );
  assert.equal(await limit.run(() => Promise.resolve(7)), 7);
});

test("semaphore: rejects a limit below 1", () => {
  assert.throws(() => new Semaphore(0), RangeError);
});
