/**
 * Metrics through a Context: `metric=` lines when no statter is set,
 * sampling, bucket joining, and forwarding to a real statter.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Context,
  MemoryLogger,
  joinBucket,
  type Statter,
} from "../../src/log/index.js";

function setup(options: { bucket?: string; random?: number } = {}) {
  const logger = new MemoryLogger();
  const context = new Context({
    data: { a: 1 },
    logger,
    bucket: options.bucket,
    random: () => options.random ?? 0.5,
  });
  return { logger, context };
}

test("statter: counter logs one metric line per value", () => {
  const { logger, context } = setup();
  context.counter(1, "hits", 1, 2);
  assert.deepEqual(logger.lines(), [
    "a=1 metric=hits count=1",
    "a=1 metric=hits count=2",
  ]);
});

test("statter: timing logs whole milliseconds", () => {
  const { logger, context } = setup();
  context.timing(1, "db.query", 15.9, 0.2);
  assert.deepEqual(logger.lines(), [
    "a=1 metric=db.query timing=15",
    "a=1 metric=db.query timing=0",
  ]);
});

test("statter: gauge logs the value", () => {
  const { logger, context } = setup();
  context.gauge(1, "mem", 512, 0.25);
  assert.deepEqual(logger.lines(), [
    "a=1 metric=mem gauge=512",
    "a=1 metric=mem gauge=0.250",
  ]);
});

test("statter: joins the context bucket and the call bucket with .", () => {
  const { logger, context } = setup({ bucket: "app" });
  context.counter(1, "hits", 1);
  context.gauge(1, "", 3);
  assert.deepEqual(logger.lines(), [
    "a=1 metric=app.hits count=1",
    "a=1 metric=app gauge=3",
  ]);
});

test("statter: drops a call when the random number is not below the rate", () => {
  const { logger, context } = setup({ random: 0.7 });
  context.counter(0.5, "dropped", 1);
  context.counter(0.8, "kept", 1);
  assert.deepEqual(logger.lines(), ["a=1 metric=kept count=1"]);
});

test("statter: rate 1 always keeps and rate 0 always drops", () => {
  const { logger, context } = setup({ random: 0.999 });
  context.counter(1, "always", 1);
  const zero = setup({ random: 0 });
  zero.context.counter(0, "never", 1);
  assert.deepEqual(logger.lines(), ["a=1 metric=always count=1"]);
  assert.deepEqual(zero.logger.records, []);
});

test("statter: a set statter receives the calls instead of the log", () => {
  const calls: unknown[][] = [];
  const statter: Statter = {
    counter: (...args) => calls.push(["counter", ...args]),
    timing: (...args) => calls.push(["timing", ...args]),
    gauge: (...args) => calls.push(["gauge", ...args]),
  };
  const logger = new MemoryLogger();
  const context = new Context({ logger, statter, bucket: "svc" });
  context.counter(0.5, "hits", 1, 2);
  context.timing(1, "db", 15);
  context.gauge(1, "mem", 3);

  assert.deepEqual(logger.records, []);
  assert.deepEqual(calls, [
    ["counter", 0.5, "svc.hits", 1, 2],
    ["timing", 1, "svc.db", 15],
    ["gauge", 1, "svc.mem", 3],
  ]);
});

test("statter: a child keeps the statter settings; setStatter changes them", () => {
  const logger = new MemoryLogger();
  const context = new Context({ logger, bucket: "one" });
  const child = context.child();
  context.setStatter(undefined, 1, "two");
  child.counter(1, "x", 1);
  context.counter(1, "x", 1);
  assert.deepEqual(logger.lines(), [
    "metric=one.x count=1",
    "metric=two.x count=1",
  ]);
});

// [prefix, suffix, joined]
const buckets: [string, string, string][] = [
  ["abc", "def", "abc.def"],
  ["abc.", "def", "abc.def"],
  ["", "def", "def"],
  ["abc", "", "abc"],
  ["", "", ""],
];

for (const [prefix, suffix, joined] of buckets) {
  test(`joinBucket: joins "${prefix}" and "${suffix}" as "${joined}"`, () => {
    assert.equal(joinBucket(prefix, suffix), joined);
  });
}
