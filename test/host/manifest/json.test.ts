/**
 * The manifest's strict JSON parser: it agrees with JSON.parse on what JSON
 * is and what it means, rejects duplicate keys, and places every error at a
 * line and column.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import fc from "fast-check";

import { JsonSyntaxError, parseJson } from "../../../src/host/manifest/json.js";

const VALUES: readonly string[] = [
  "null",
  " true ",
  "false",
  "0",
  "-0.5e+3",
  "12E-2",
  '"a\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00"',
  '"\\ud800"',
  "[]",
  "[1, [2, [3]], {}]",
  '{"a": {"b": [null]}, "c": ""}',
  '\n\t\r {"__proto__": 1, "constructor": 2}',
];

for (const text of VALUES) {
  test(`json: parses ${JSON.stringify(text)} as JSON.parse does`, () => {
    assert.deepEqual(parseJson(text), JSON.parse(text));
  });
}

test("json: keeps __proto__ as an own data key", () => {
  const value = parseJson('{"__proto__": {"polluted": true}}');
  assert.ok(value !== null && typeof value === "object");
  assert.equal(Object.getPrototypeOf(value), Object.prototype);
  assert.deepEqual(Object.keys(value), ["__proto__"]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

const ERRORS: readonly [string, string][] = [
  // [text, message]
  ["", "1:1: expected a value, found end of input"],
  ["   \n  ", "2:3: expected a value, found end of input"],
  ["[1, 2", '1:6: expected "," or "]", found end of input'],
  ["[1 2]", '1:4: expected "," or "]", found "2"'],
  ["[1,]", '1:4: expected a value, found "]"'],
  ['{"a" 1}', '1:6: expected ":" after the key, found "1"'],
  ['{"a": 1,}', '1:9: expected a string key, found "}"'],
  ["{a: 1}", '1:2: expected a string key, found "a"'],
  ['{"a": 1 "b": 2}', '1:9: expected "," or "}", found "\\""'],
  ['{"a": 1, "a": 2}', '1:10: duplicate key "a"'],
  ['[\n  {"id": "x",\n   "id": "y"}]', '3:4: duplicate key "id"'],
  ['"abc', "1:1: unterminated string"],
  ['"a\nb"', "1:3: unescaped control character U+000A in a string"],
  ['"\\x41"', '1:2: invalid escape "\\\\x"'],
  ['"\\u12G4"', '1:2: invalid escape "\\\\u12G4"'],
  ["01", '1:2: unexpected "1" after the JSON value'],
  ["-", "1:2: invalid number: expected a digit, found end of input"],
  ["1.", "1:3: invalid number: expected a digit, found end of input"],
  ["1e+", "1:4: invalid number: expected a digit, found end of input"],
  [".5", '1:1: expected a value, found "."'],
  ["tru", '1:1: expected a value, found "t"'],
  ["NaN", '1:1: expected a value, found "N"'],
  ["[] []", '1:4: unexpected "[" after the JSON value'],
  ["\uFEFF[]", '1:1: expected a value, found "\uFEFF"'],
  ["'a'", '1:1: expected a value, found "\'"'],
];

for (const [text, message] of ERRORS) {
  test(`json: rejects ${JSON.stringify(text)}`, () => {
    assert.throws(() => parseJson(text), {
      name: "JsonSyntaxError",
      message: `Invalid JSON at ${message}`,
    });
  });
}

test("json: rejects nesting deeper than 512 levels", () => {
  assert.deepEqual(
    parseJson("[".repeat(512) + "]".repeat(512)),
    JSON.parse("[".repeat(512) + "]".repeat(512)),
  );
  assert.throws(() => parseJson("[".repeat(514)), {
    message: "Invalid JSON at 1:514: nesting is deeper than 512 levels",
  });
});

test("json: property: parses what JSON.stringify writes back to the value", () => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.boolean(), (value, pretty) => {
      const text = JSON.stringify(value, null, pretty ? 2 : undefined);
      assert.deepEqual(parseJson(text), JSON.parse(text));
    }),
  );
});

test("json: property: accepts exactly what JSON.parse accepts", () => {
  const edited = fc
    .tuple(
      fc.json(),
      fc.nat(),
      fc.constantFrom(
        "",
        ",",
        "]",
        "}",
        '"',
        "\\",
        ":",
        "0",
        "-",
        ".",
        " ",
        "\n",
        "e",
      ),
    )
    .map(([text, at, insert]) => {
      const i = at % (text.length + 1);
      return text.slice(0, i) + insert + text.slice(i + (at % 2));
    });
  fc.assert(
    fc.property(fc.oneof(edited, fc.string()), (text) => {
      let expected: unknown;
      try {
        expected = JSON.parse(text);
      } catch {
        expected = undefined;
      }
      let actual: unknown;
      try {
        actual = parseJson(text);
      } catch (err) {
        assert.ok(err instanceof JsonSyntaxError);
        fc.pre(!err.reason.startsWith("duplicate key"));
        actual = undefined;
      }
      assert.deepEqual(actual, expected);
    }),
    { numRuns: 2000 },
  );
});
