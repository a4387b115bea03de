import assert from "node:assert/strict";
import { test } from "node:test";

import { sleep } from "../src/sleep.js";

// node:test's mock timers do not reach node:timers/promises on Node 20,
// so these measure real, short waits.
const LONG_MS = 10_000;

test("sleep: without a signal waits its full time", async () => {
  const startedAt = performance.now();
  await sleep(20);
  // A timer may fire up to a millisecond early by performance.now().
  assert.ok(performance.now() - startedAt >= 19);
});

test("sleep: an abort ends the wait early and resolves", async () => {
  const stop = new AbortController();
  const startedAt = performance.now();
  const waiting = sleep(LONG_MS, stop.signal);
  stop.abort();
  await waiting;
  assert.ok(performance.now() - startedAt < LONG_MS / 2);
});

test("sleep: a signal aborted before the wait resolves at once", async () => {
  const stop = new AbortController();
  stop.abort();
  const startedAt = performance.now();
  await sleep(LONG_MS, stop.signal);
  assert.ok(performance.now() - startedAt < LONG_MS / 2);
});
