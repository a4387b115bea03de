/**
 * Context.report: grohl.md's example, stack sites, the error's own data,
 * the cause chain, the not-reportable flag and the ErrorReporter seam.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { ValidationError } from "../../src/errors.js";
import {
  Context,
  MemoryLogger,
  type Data,
  type ErrorReporter,
} from "../../src/log/index.js";

function setup(data?: Data) {
  const logger = new MemoryLogger();
  return { logger, context: new Context({ data, logger }) };
}

/** An error with a known stack, so site lines can be asserted exactly. */
function withStack<T extends Error>(err: T, ...frames: string[]): T {
  err.stack = [String(err), ...frames.map((f) => `    at ${f}`)].join("\n");
  return err;
}

test("report: grohl's example merges data and forces at/class/message", () => {
  const { logger, context } = setup({ a: 1, b: 1 });
  context.report(new Error("Test"), { b: 2, c: 3, at: "x" });

  const lines = logger.lines();
  assert.equal(lines[0], "a=1 b=2 c=3 at=exception class=Error message=Test");
  assert.ok(lines.length > 1, "one line per stack frame follows");
  for (const line of lines.slice(1)) {
    assert.ok(line.startsWith(lines[0] + " site="), line);
  }
});

test("report: writes one site line per stack frame", () => {
  const { logger, context } = setup({ a: 1 });
  const err = withStack(new Error("boom"), "one (a.js:1:2)", "b.js:3:4");
  context.report(err);
  assert.deepEqual(logger.lines(), [
    "a=1 at=exception class=Error message=boom",
    'a=1 at=exception class=Error message=boom site="one (a.js:1:2)"',
    "a=1 at=exception class=Error message=boom site=b.js:3:4",
  ]);
});

test("report: a multi-line message stays on one line, never a site", () => {
  const { logger, context } = setup();
  context.report(withStack(new Error("a\n    at fake"), "real (r.js:1:1)"));
  assert.deepEqual(logger.lines(), [
    'at=exception class=Error message="a\\n    at fake"',
    'at=exception class=Error message="a\\n    at fake" site="real (r.js:1:1)"',
  ]);
});

test("report: names the error's class and merges its own data", () => {
  const { logger, context } = setup({ a: 1, b: 1 });
  const err = withStack(new ValidationError("bad port", "port"));
  Object.assign(err, { data: { job: "j1", b: 5 } });
  context.report(err, { c: 3 });
  assert.deepEqual(logger.lines(), [
    'a=1 b=5 job=j1 c=3 at=exception class=ValidationError message="bad port"',
  ]);
});

test("report: call data wins over the error's own data", () => {
  const { logger, context } = setup();
  const err = Object.assign(withStack(new Error("x")), { data: { k: 1 } });
  context.report(err, { k: 2 });
  assert.deepEqual(logger.lines(), ["k=2 at=exception class=Error message=x"]);
});

test("report: follows the cause chain with cause=<depth>", () => {
  const { logger, context } = setup({ a: 1 });
  const root = withStack(new TypeError("root"), "r (r.js:1:1)");
  const middle = withStack(new Error("middle", { cause: root }));
  Object.assign(middle, { data: { step: "read" } });
  const outer = withStack(new Error("outer", { cause: middle }), "o.js:2:2");
  context.report(outer);
  assert.deepEqual(logger.lines(), [
    "a=1 at=exception class=Error message=outer",
    "a=1 at=exception class=Error message=outer site=o.js:2:2",
    "a=1 step=read at=exception cause=1 class=Error message=middle",
    "a=1 step=read at=exception cause=2 class=TypeError message=root",
    'a=1 step=read at=exception cause=2 class=TypeError message=root site="r (r.js:1:1)"',
  ]);
});

test("report: stops at a cause cycle", () => {
  const { logger, context } = setup();
  const a = withStack(new Error("a"));
  const b = withStack(new Error("b", { cause: a }));
  Object.assign(a, { cause: b });
  context.report(a);
  assert.deepEqual(logger.lines(), [
    "at=exception class=Error message=a",
    "at=exception cause=1 class=Error message=b",
  ]);
});

test("report: a non-Error cause is reported by its type", () => {
  const { logger, context } = setup();
  context.report(withStack(new Error("x", { cause: "disk full" })));
  assert.deepEqual(logger.lines(), [
    "at=exception class=Error message=x",
    'at=exception cause=1 class=String message="disk full"',
  ]);
});

test("report: describes thrown values that are not errors", () => {
  const { logger, context } = setup();
  context.report("oops");
  context.report(42);
  context.report(null);
  context.report({ code: 7 });
  assert.deepEqual(logger.lines(), [
    "at=exception class=String message=oops",
    "at=exception class=Number message=42",
    "at=exception class=null message=null",
    'at=exception class=Object message="{\\"code\\":7}"',
  ]);
});

test("report: logs nothing for an error marked reportable: false", () => {
  const { logger, context } = setup();
  context.report(Object.assign(new Error("quiet"), { reportable: false }));
  assert.deepEqual(logger.records, []);
});

test("report: an ErrorReporter receives the merged data instead", () => {
  const reports: [unknown, Data][] = [];
  const reporter: ErrorReporter = {
    report: (err, data) => reports.push([err, data]),
  };
  const logger = new MemoryLogger();
  const context = new Context({
    data: { a: 1 },
    logger,
    errorReporter: reporter,
  });
  const err = new Error("sent");
  context.report(err, { b: 2 });

  assert.deepEqual(logger.records, []);
  assert.equal(reports.length, 1);
  assert.equal(reports[0]?.[0], err);
  assert.deepEqual(reports[0]?.[1], {
    a: 1,
    b: 2,
    at: "exception",
    class: "Error",
    message: "sent",
  });
});

test("report: an error whose message getter throws is still reported", () => {
  const { logger, context } = setup();
  const err = withStack(new Error("x"));
  Object.defineProperty(err, "message", {
    get(): never {
      throw new Error("no");
    },
  });
  err.stack = "Error\n    at f.js:1:1";
  context.report(err);
  assert.deepEqual(logger.lines(), [
    "at=exception class=Error message=[Throws]",
    "at=exception class=Error message=[Throws] site=f.js:1:1",
  ]);
});
