import assert from "node:assert/strict";
import { test } from "node:test";

import { Backoff } from "../src/backoff.js";

test("backoff: doubles from 50 ms to 5 s within the upper half of each step", () => {
  const high = new Backoff(50, 5000, () => 1);
  const waits = Array.from({ length: 9 }, () => high.next());
  assert.deepEqual(waits, [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  const low = new Backoff(50, 5000, () => 0);
  assert.deepEqual([low.next(), low.next(), low.next()], [25, 50, 100]);
});

test("backoff: reset starts again at the shortest wait", () => {
  const b = new Backoff(50, 5000, () => 1);
  b.next();
  b.next();
  b.reset();
  assert.equal(b.next(), 50);
});
