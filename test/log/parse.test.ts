/**
 * parse and tryParse: a table of lines, grohl's quoted forms, and
 * fast-check properties that format -> parse gives back every value.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import fc from "fast-check";

import { format, parse, tryParse } from "../../src/log/index.js";

// [case, line, expected record]
const lines: [string, string, Record<string, string | true>][] = [
  ["bare pairs", "a=1 b=two", { a: "1", b: "two" }],
  ["a quoted value", 'msg="hi there"', { msg: "hi there" }],
  ["a bare key as true", "a=1 flag", { a: "1", flag: true }],
  [
    "escapes",
    'k="a\\"b\\\\c\\nd\\re\\tf\\u00e9\\/"',
    { k: 'a"b\\c\nd\re\tfé/' },
  ],
  ["a lone surrogate escape", 'k="\\ud800"', { k: "\ud800" }],
  ["an unknown escape kept", 'k="a\\qb"', { k: "a\\qb" }],
  ["an empty bare value", "k= j=1", { k: "", j: "1" }],
  ["an empty quoted value", 'k=""', { k: "" }],
  ["a later duplicate winning", "k=1 k=2", { k: "2" }],
  ["runs of spaces and tabs", "  a=1 \t b=2  ", { a: "1", b: "2" }],
  ["an unterminated quote", 'k="abc def', { k: "abc def" }],
  ["an empty key skipped", "=x a=1", { a: "1" }],
  [
    "grohl's single quotes",
    `k='echo "hello"' j=1`,
    { k: 'echo "hello"', j: "1" },
  ],
  ["grohl's doubled backslash", "k='a\\\\b \"c\"'", { k: 'a\\b "c"' }],
  ["a bare leading quote", "k='x j=1", { k: "'x", j: "1" }],
  ["a quote inside a bare value", 'k=a"b', { k: 'a"b' }],
  ["nil as text", "k=nil", { k: "nil" }],
  ["an empty line", "", {}],
];

for (const [name, line, expected] of lines) {
  test(`parse: reads ${name}`, () => {
    assert.deepEqual(parse(line), expected);
  });
}

test("parse: reads grohl's escaped double quotes", () => {
  const line = format({ k: `echo 'hello' "world"` }, { mode: "grohl" });
  assert.deepEqual(parse(line), { k: `echo 'hello' "world"` });
});

test("parse: keeps __proto__ as an own key", () => {
  const record = parse("__proto__=x a=1");
  assert.equal(Object.getPrototypeOf(record), Object.prototype);
  assert.deepEqual(Object.entries(record), [
    ["__proto__", "x"],
    ["a", "1"],
  ]);
});

test("tryParse: accepts a line with a key=value pair", () => {
  assert.deepEqual(tryParse("at=start flag"), { at: "start", flag: true });
});

test("tryParse: rejects lines that are not logfmt", () => {
  assert.equal(tryParse("hello world"), undefined);
  assert.equal(tryParse(""), undefined);
  assert.equal(tryParse("=x a=1"), undefined);
  assert.equal(tryParse('k="open'), undefined);
});

// Strings rich in the characters quoting must handle, plus any UTF-16.
const tricky = fc.oneof(
  fc.string({ unit: "binary" }),
  fc.string({
    unit: fc.integer({ min: 0, max: 0xffff }).map(String.fromCharCode),
  }),
  fc.string({
    unit: fc.constantFrom(
      " ",
      "=",
      '"',
      "'",
      "\\",
      "\n",
      "\r",
      "\t",
      "\u0000",
      "\u007f",
      "\u0085",
      "\u2028",
      "\ud800",
      "\udc00",
      "a",
      "é",
      "😀",
      "nil",
      "u00",
    ),
  }),
);

test("parse: reads back any string value format writes, on one line", () => {
  fc.assert(
    fc.property(tricky, (value) => {
      const line = format({ k: value });
      assert.ok(!/[\n\r]/.test(line), line);
      assert.deepEqual(parse(line), { k: value });
    }),
    { numRuns: 2000 },
  );
});

test("parse: reads any key format writes as one pair on one line", () => {
  fc.assert(
    fc.property(tricky, tricky, (key, value) => {
      const line = format({ [key]: value });
      assert.ok(!/[\n\r]/.test(line), line);
      const record = parse(line);
      assert.equal(Object.keys(record).length, 1);
      assert.equal(Object.values(record)[0], value);
    }),
    { numRuns: 2000 },
  );
});

test("parse: reads back whole records of string values", () => {
  const key = fc.stringMatching(/^[a-z][a-z0-9_.]{0,8}$/);
  fc.assert(
    fc.property(fc.dictionary(key, tricky), (record) => {
      assert.deepEqual(parse(format(record)), { ...record });
    }),
    { numRuns: 500 },
  );
});

test("parse: reads back every value of a record whatever its keys", () => {
  const key = fc.oneof(tricky, fc.constantFrom("_", "a_", "a_2", "now"));
  fc.assert(
    fc.property(fc.dictionary(key, fc.string()), (record) => {
      const parsed = parse(format(record));
      assert.equal(Object.keys(parsed).length, Object.keys(record).length);
      assert.deepEqual(
        Object.values(parsed).sort(),
        Object.values(record).sort(),
      );
    }),
    { numRuns: 1000 },
  );
});
