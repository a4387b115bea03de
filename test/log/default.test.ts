/**
 * The package-level context: snapshot semantics of newContext, the
 * setters, and its default of stdout with `now=` (in a child process).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { afterEach, beforeEach, test } from "node:test";

import {
  MemoryLogger,
  addContext,
  counter,
  deleteContext,
  gauge,
  log,
  newContext,
  newTimer,
  report,
  resetDefaultContext,
  setErrorReporter,
  setLogger,
  setStatter,
  setTimeUnit,
  stdoutLogger,
  timing,
  type Data,
} from "../../src/log/index.js";

let logger: MemoryLogger;

beforeEach(() => {
  logger = new MemoryLogger();
  setLogger(logger);
});

afterEach(() => {
  resetDefaultContext();
});

test("package: log writes through the package-level context", () => {
  addContext("app", "lorne");
  log({ at: "boot" });
  assert.deepEqual(logger.lines(), ["app=lorne at=boot"]);
});

test("package: newContext snapshots; later addContext does not reach it", () => {
  addContext("a", 1);
  const context = newContext({ b: 2 });
  addContext("x", 9);
  context.log({ c: 3 });
  log({ y: 1 });
  assert.deepEqual(logger.lines(), ["a=1 b=2 c=3", "a=1 x=9 y=1"]);
});

test("package: deleteContext removes a key from later lines", () => {
  addContext("a", 1);
  addContext("b", 2);
  deleteContext("a");
  log();
  assert.deepEqual(logger.lines(), ["b=2"]);
});

test("package: setLogger returns the logger it replaces", () => {
  const other = new MemoryLogger();
  assert.equal(setLogger(other), logger);
  assert.equal(setLogger(undefined), other);
  assert.equal(setLogger(logger), stdoutLogger());
});

test("package: newTimer logs at=start and uses setTimeUnit", () => {
  setTimeUnit("ms");
  const timer = newTimer({ job: "j" });
  timer.log({ at: "x", elapsed: 1 });
  assert.deepEqual(logger.lines(), ["job=j at=start", "job=j at=x elapsed=1"]);
  assert.ok(timer.elapsed() >= 0);
});

test("package: metrics become lines until setStatter sets one", () => {
  counter(1, "hits", 1);
  timing(1, "db", 2);
  gauge(1, "mem", 3);
  const calls: unknown[][] = [];
  setStatter(
    {
      counter: (...args) => calls.push(args),
      timing: (...args) => calls.push(args),
      gauge: (...args) => calls.push(args),
    },
    1,
    "app",
  );
  counter(0.5, "hits", 4);
  assert.deepEqual(logger.lines(), [
    "metric=hits count=1",
    "metric=db timing=2",
    "metric=mem gauge=3",
  ]);
  assert.deepEqual(calls, [[0.5, "app.hits", 4]]);
});

test("package: setErrorReporter takes reports away from the log", () => {
  const reports: Data[] = [];
  setErrorReporter({ report: (_err, data) => reports.push(data) });
  report(new Error("x"), { k: 1 });
  assert.deepEqual(logger.records, []);
  assert.deepEqual(reports, [
    { k: 1, at: "exception", class: "Error", message: "x" },
  ]);
});

test("package: by default writes to stdout with now= first", () => {
  const script = `
    const { addContext, log } = await import(${JSON.stringify(indexUrl())});
    addContext("a", 1);
    log({ b: "x y" });
  `;
  const result = spawnSync(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", script],
    { encoding: "utf8" },
  );
  assert.equal(result.stderr, "");
  assert.match(
    result.stdout,
    /^now=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000 a=1 b="x y"\n$/,
  );
});

function indexUrl(): string {
  return new URL("../../src/log/index.ts", import.meta.url).href;
}
