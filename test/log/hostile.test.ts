/**
 * The logging API never throws, whatever it is given: null, undefined and
 * primitives as data, revoked Proxies and Proxies whose every trap throws,
 * as data, as values, as thrown errors and as keys.
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

/** A Proxy that has been revoked: every operation on it throws. */
function revoked<T extends object>(target: T): T {
  const { proxy, revoke } = Proxy.revocable(target, {});
  revoke();
  return proxy;
}

/** A Proxy whose every trap throws. */
const hostile: object = new Proxy(
  {},
  new Proxy(
    {},
    {
      get: () => () => {
        throw new Error("hostile trap");
      },
    },
  ),
);

/** A key whose conversion to text throws. */
const badKey = {
  toString(): never {
    throw new Error("no");
  },
};

/** An error with a stack of one line, so reports have no site lines. */
function error(message: string, data?: unknown): Error {
  const err = new Error(message);
  err.stack = `Error: ${message}`;
  if (data !== undefined) Object.assign(err, { data });
  return err;
}

const throwingGetter = {
  b: 1,
  get t(): never {
    throw new Error("no");
  },
};

// Calls are made as untyped JavaScript would make them.
type Loose = Record<string, (...args: unknown[]) => unknown>;

// [case, calls on a context holding a=1, expected lines]
const cases: [string, (c: Loose, logger: MemoryLogger) => void, string[]][] = [
  ["log(null)", (c) => c.log!(null), ["a=1"]],
  ["log(undefined)", (c) => c.log!(undefined), ["a=1"]],
  ["log of a string", (c) => c.log!("text"), ["a=1"]],
  ["log of a revoked Proxy", (c) => c.log!(revoked({ b: 1 })), ["a=1"]],
  ["log of a hostile Proxy", (c) => c.log!(hostile), ["a=1"]],
  [
    "a revoked Proxy as a value",
    (c) => c.log!({ v: revoked({}) }),
    ["a=1 v=[Throws]"],
  ],
  [
    "a hostile Proxy as a value",
    (c) => c.log!({ v: hostile }),
    ["a=1 v=[Throws]"],
  ],
  ["merge of a revoked Proxy", (c) => c.log!(c.merge!(revoked({}))), ["a=1"]],
  [
    "child(null)",
    (c) => (c.child!(null) as Context).log({ b: 2 }),
    ["a=1 b=2"],
  ],
  [
    "child of a revoked Proxy",
    (c) => (c.child!(revoked({})) as Context).log(),
    ["a=1"],
  ],
  [
    "timer(null)",
    (c) => (c.timer!(null) as { finish(): void }).finish(),
    ["a=1 at=start", "a=1 at=finish elapsed=0.000"],
  ],
  [
    "a timer of a revoked Proxy logging a hostile Proxy",
    (c) => (c.timer!(revoked({})) as Loose).log!(hostile),
    ["a=1 at=start", "a=1 elapsed=0.000"],
  ],
  [
    "a timer logging null",
    (c) => (c.timer!() as Loose).log!(null),
    ["a=1 at=start", "a=1 elapsed=0.000"],
  ],
  [
    "report of a revoked Proxy",
    (c) => c.report!(revoked({})),
    ["a=1 at=exception class=Object message=[Throws]"],
  ],
  [
    "report of a hostile Proxy",
    (c) => c.report!(hostile),
    ["a=1 at=exception class=Object message=[Throws]"],
  ],
  [
    "report of a revoked function Proxy",
    (c) => c.report!(revoked(() => {})),
    ["a=1 at=exception class=function message=[Throws]"],
  ],
  [
    "report with null data",
    (c) => c.report!(error("x"), null),
    ["a=1 at=exception class=Error message=x"],
  ],
  [
    "report with a revoked Proxy as data",
    (c) => c.report!(error("x"), revoked({ b: 1 })),
    ["a=1 at=exception class=Error message=x"],
  ],
  [
    "report with data whose getter throws",
    (c) => c.report!(error("x"), throwingGetter),
    ["a=1 b=1 t=[Throws] at=exception class=Error message=x"],
  ],
  [
    "report of an error whose data is a revoked Proxy",
    (c) => c.report!(error("x", revoked({ b: 1 }))),
    ["a=1 at=exception class=Error message=x"],
  ],
  [
    "report of an error whose data has a throwing getter",
    (c) => c.report!(error("x", throwingGetter)),
    ["a=1 b=1 t=[Throws] at=exception class=Error message=x"],
  ],
  [
    "add with a key that cannot be text",
    (c) => {
      c.add!(badKey, 2);
      c.log!();
    },
    ["a=1 [Throws]=2"],
  ],
  [
    "delete with a key that cannot be text",
    (c) => {
      c.delete!(badKey);
      c.log!();
    },
    ["a=1"],
  ],
  [
    "metrics with buckets that are not strings",
    (c) => {
      c.setStatter!(undefined, 1, "jobs");
      c.counter!(1, undefined, 1);
      c.gauge!(1, 5, 2);
    },
    ["a=1 metric=jobs count=1", "a=1 metric=jobs.5 gauge=2"],
  ],
  [
    "a context made from a revoked Proxy",
    (_c, logger) => new Context({ data: revoked({ b: 1 }), logger }).log(),
    [""],
  ],
  [
    "a context made with null options",
    (_c, logger) => {
      const context = new Context(null as never);
      context.setLogger(logger);
      context.log({ b: 1 });
    },
    ["b=1"],
  ],
];

for (const [name, calls, expected] of cases) {
  test(`context: does not throw for ${name}`, () => {
    const logger = new MemoryLogger();
    const context = new Context({
      data: { a: 1 },
      logger,
      clock: () => 0,
    });
    calls(context as unknown as Loose, logger);
    assert.deepEqual(logger.lines(), expected);
  });
}

test("context: an ErrorReporter receives a revoked Proxy described", () => {
  const reports: [unknown, Data][] = [];
  const reporter: ErrorReporter = {
    report: (err, data) => reports.push([err, data]),
  };
  const context = new Context({ data: { a: 1 }, errorReporter: reporter });
  const thrown = revoked({});
  context.report(thrown);
  assert.deepEqual(reports, [
    [thrown, { a: 1, at: "exception", class: "Object", message: "[Throws]" }],
  ]);
});

test("context: rejects a bucket that is not a string", () => {
  const error = new ValidationError(
    "Invalid bucket 5: expected a string",
    "bucket",
  );
  assert.throws(() => new Context({ bucket: 5 as never }), error);
  assert.throws(
    () => new Context().setStatter(undefined, 1, 5 as never),
    error,
  );
});

test("context: metrics with a sample rate that is no number never throw and log nothing", () => {
  const logger = new MemoryLogger();
  const context = new Context({ logger }) as unknown as Loose;
  const rates: unknown[] = [
    hostile,
    revoked({}),
    Symbol("rate"),
    {
      valueOf: (): never => {
        throw new Error("no");
      },
    },
    "1",
  ];
  for (const rate of rates) {
    for (const metric of ["counter", "timing", "gauge"]) {
      assert.doesNotThrow(() => context[metric]?.(rate, "b", 1), metric);
    }
  }
  assert.deepEqual(logger.lines(), []);
  // A numeric rate still samples: 1 keeps every call.
  context.counter?.(1, "b", 2);
  assert.deepEqual(logger.lines(), ["metric=b count=2"]);
});

test("context: a report of an error with thousands of frames logs MAX_SITES sites and counts the rest", () => {
  const logger = new MemoryLogger();
  const context = new Context({ logger });
  const err = new Error("deep");
  err.stack = [
    "Error: deep",
    ...Array.from({ length: 5000 }, (_, i) => `    at f${i} (x.js:${i}:1)`),
  ].join("\n");
  context.report(err);
  const lines = logger.lines();
  assert.equal(lines.length, 1 + 100 + 1);
  assert.equal(
    lines[1],
    'at=exception class=Error message=deep site="f0 (x.js:0:1)"',
  );
  assert.equal(
    lines[101],
    "at=exception class=Error message=deep sites_omitted=4900",
  );
});
