/**
 * Context: key order, children, merge, add/delete, option checks, and the
 * timer (grohl.md's example included).
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { ValidationError } from "../../src/errors.js";
import { Context, MemoryLogger, type Statter } from "../../src/log/index.js";

/** A context on a MemoryLogger whose monotonic clock the test moves. */
function setup(data?: Record<string, unknown>, unit: "s" | "ms" = "s") {
  const logger = new MemoryLogger();
  const clock = { ms: 1000 };
  const context = new Context({
    data,
    logger,
    timeUnit: unit,
    clock: () => clock.ms,
  });
  return { logger, clock, context };
}

/** A statter that records its calls. */
function recordingStatter(): Statter & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  return {
    calls,
    counter: (...args) => calls.push(["counter", ...args]),
    timing: (...args) => calls.push(["timing", ...args]),
    gauge: (...args) => calls.push(["gauge", ...args]),
  };
}

test("context: logs context keys first, then call keys", () => {
  const { logger, context } = setup({ a: 1, b: 2 });
  context.log({ c: 3, d: 4 });
  assert.deepEqual(logger.lines(), ["a=1 b=2 c=3 d=4"]);
});

test("context: a call key replaces a context key in place", () => {
  const { logger, context } = setup({ a: 1, b: 2, c: 3 });
  context.log({ d: 4, b: "x" });
  assert.deepEqual(logger.lines(), ["a=1 b=x c=3 d=4"]);
});

test("context: logs its own data when called without data", () => {
  const { logger, context } = setup({ a: 1 });
  context.log();
  assert.deepEqual(logger.lines(), ["a=1"]);
});

test("context: hands the logger a new record each time", () => {
  const { logger, context } = setup({ a: 1 });
  const data = { b: 2 };
  context.log(data);
  context.log(data);
  assert.notEqual(logger.records[0], logger.records[1]);
  assert.notEqual(logger.records[0], data);
  assert.deepEqual(data, { b: 2 });
});

test("context: add keeps an existing key's place and appends new ones", () => {
  const { logger, context } = setup({ a: 1, b: 2 });
  context.add("a", 9);
  context.add("c", 3);
  context.log();
  assert.deepEqual(logger.lines(), ["a=9 b=2 c=3"]);
});

test("context: delete removes a key; adding it again appends it", () => {
  const { logger, context } = setup({ a: 1, b: 2, c: 3 });
  context.delete("b");
  context.delete("missing");
  context.log();
  context.add("b", 4);
  context.log();
  assert.deepEqual(logger.lines(), ["a=1 c=3", "a=1 c=3 b=4"]);
});

test("context: a child copies the data; later changes stay apart", () => {
  const { logger, context } = setup({ a: 1 });
  const child = context.child({ b: 2 });
  context.add("p", 1);
  child.add("c", 3);
  child.log({ d: 4 });
  context.log();
  assert.deepEqual(logger.lines(), ["a=1 b=2 c=3 d=4", "a=1 p=1"]);
});

test("context: a child overrides a parent key in place", () => {
  const { logger, context } = setup({ a: 1, b: 2 });
  context.child({ a: "x", c: 3 }).log();
  assert.deepEqual(logger.lines(), ["a=x b=2 c=3"]);
});

test("context: merge returns a new ordered record and changes nothing", () => {
  const { context } = setup({ a: 1, b: 2 });
  const merged = context.merge({ b: 3, c: 4 });
  assert.deepEqual(Object.entries(merged), [
    ["a", 1],
    ["b", 3],
    ["c", 4],
  ]);
  assert.deepEqual(context.data, { a: 1, b: 2 });
  assert.notEqual(context.merge(), context.merge());
});

test("context: merge keeps an own __proto__ key as data", () => {
  const { context } = setup({ a: 1 });
  const data = JSON.parse('{"__proto__": "x"}') as Record<string, unknown>;
  const merged = context.merge(data);
  assert.equal(Object.getPrototypeOf(merged), Object.prototype);
  assert.deepEqual(Object.keys(merged), ["a", "__proto__"]);
});

test("context: merge survives call data whose getter throws", () => {
  const { logger, context } = setup({ a: 1 });
  context.log({
    get b(): never {
      throw new Error("no");
    },
  });
  assert.deepEqual(logger.lines(), ["a=1 b=[Throws]"]);
});

test("context: rejects a bad time unit and a bad sample rate", () => {
  assert.throws(
    () => new Context({ timeUnit: "h" as "s" }),
    new ValidationError(
      'Invalid time unit "h": expected "s" or "ms"',
      "timeUnit",
    ),
  );
  assert.throws(
    () => new Context({ sampleRate: 2 }),
    new ValidationError(
      "Invalid sample rate 2: expected a number from 0 to 1",
      "sampleRate",
    ),
  );
});

test("timer: grohl's example logs at=start, then at=finish elapsed", () => {
  const { logger, context } = setup({ a: 1 });
  const timer = context.timer({ b: 2 });
  timer.add("c", 3);
  timer.finish();
  assert.deepEqual(logger.lines(), [
    "a=1 b=2 at=start",
    "a=1 b=2 c=3 at=finish elapsed=0.000",
  ]);
});

test("timer: reports elapsed in seconds with 3 decimals", () => {
  const { logger, clock, context } = setup();
  const timer = context.timer();
  clock.ms += 1250;
  assert.equal(timer.elapsed(), 1.25);
  timer.finish();
  assert.equal(logger.lines()[1], "at=finish elapsed=1.250");
});

test("timer: reports elapsed in milliseconds with the ms unit", () => {
  const { logger, clock, context } = setup({}, "ms");
  const timer = context.timer({ job: "x" });
  clock.ms += 15;
  timer.log({ at: "step" });
  assert.equal(timer.elapsed(), 15);
  assert.equal(logger.lines()[1], "job=x at=step elapsed=15.000");
});

test("timer: keeps an elapsed value the call provides", () => {
  const { logger, context } = setup();
  context.timer().log({ elapsed: "custom" });
  assert.equal(logger.lines()[1], "elapsed=custom");
});

test("timer: its additions stay out of the parent context", () => {
  const { logger, context } = setup({ a: 1 });
  context.timer().add("t", 1);
  context.log();
  assert.equal(logger.lines()[1], "a=1");
});

test("timer: reports its duration to the bucket when one is set", () => {
  const statter = recordingStatter();
  const clock = { ms: 0 };
  const context = new Context({
    logger: new MemoryLogger(),
    statter,
    sampleRate: 0.5,
    bucket: "jobs.start",
    clock: () => clock.ms,
  });
  const timer = context.timer();
  clock.ms = 42;
  timer.finish();
  assert.deepEqual(statter.calls, [["timing", 0.5, "jobs.start", 42]]);
});

test("timer: reports no metric without a bucket", () => {
  const statter = recordingStatter();
  const context = new Context({ logger: new MemoryLogger(), statter });
  context.timer().finish();
  assert.deepEqual(statter.calls, []);
});
