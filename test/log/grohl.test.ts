/**
 * grohl mode: byte-for-byte grohl quoting, with every example from
 * grohl.md and grohl's own format tests, and the defects it keeps.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { float, format } from "../../src/log/index.js";

const grohl = { mode: "grohl" } as const;

// grohl.md's quoting examples: [value, expected text after `k=`]
const quoting: [string, string][] = [
  ["hi", "hi"],
  ["a b", '"a b"'],
  ["x=4,y=10", '"x=4,y=10"'],
  [`echo 'hello' "world"`, `"echo 'hello' \\"world\\""`],
  ['echo "hello"', `'echo "hello"'`],
];

for (const [value, expected] of quoting) {
  test(`grohl mode: quotes ${JSON.stringify(value)} as grohl does`, () => {
    assert.equal(format({ k: value }, grohl), "k=" + expected);
  });
}

// grohl's format tests, written as one line each: [expected, record]. In
// safe mode the same records print the same, except that the string "nil"
// is quoted there.
const lines: [string, Record<string, unknown>][] = [
  ["fn=string test=1", { fn: "string", test: "1" }],
  ["fn=int test=1", { fn: "int", test: 1 }],
  ["fn=uint64 test=1", { fn: "uint64", test: 1n }],
  ["fn=float test=1.000", { fn: "float", test: float(1) }],
  ["fn=bool test=true", { fn: "bool", test: true }],
  ["fn=nil test=nil", { fn: "nil", test: null }],
  [
    "fn=time test=2000-01-02T03:04:05+0000",
    { fn: "time", test: new Date(Date.UTC(2000, 0, 2, 3, 4, 5)) },
  ],
];

for (const [expected, record] of lines) {
  test(`grohl mode and safe mode: write ${expected}`, () => {
    assert.equal(format(record, grohl), expected);
    assert.equal(format(record), expected.replace("fn=nil", 'fn="nil"'));
  });
}

test("grohl mode: an empty string is nil", () => {
  assert.equal(format({ k: "" }, grohl), "k=nil");
});

test("grohl mode: the string nil is written bare", () => {
  assert.equal(format({ k: "nil" }, grohl), "k=nil");
});

test("grohl mode: doubles backslashes only in values with a space", () => {
  assert.equal(format({ k: "C:\\x y" }, grohl), 'k="C:\\\\x y"');
  assert.equal(format({ k: "C:\\x" }, grohl), "k=C:\\x");
});

test("grohl mode: does not escape inside a value with =", () => {
  assert.equal(format({ k: 'a="b"' }, grohl), 'k="a="b""');
});

test("grohl mode: lets a newline split the record (its known defect)", () => {
  assert.equal(format({ k: "a\nb", j: 1 }, grohl), "k=a\nb j=1");
});

test("grohl mode: writes keys as they are", () => {
  assert.equal(format({ "a b": 1, "": 2 }, grohl), "a b=1 =2");
});

test("grohl mode: an Error prints its message, quoted by grohl rules", () => {
  assert.equal(
    format({ err: new Error("no such file") }, grohl),
    'err="no such file"',
  );
});

test("grohl mode: an object prints as JSON in single quotes", () => {
  assert.equal(format({ o: { a: "b c" } }, grohl), `o='{"a":"b c"}'`);
});

test("grohl mode: puts now= first like safe mode", () => {
  const time = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
  const line = format({ now: 1, a: 1 }, { mode: "grohl", time });
  assert.equal(line, "now=2026-01-02T03:04:05+0000 a=1");
});
