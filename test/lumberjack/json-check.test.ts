/**
 * checkJsonObject: tables of payloads it accepts and refuses (with exact
 * messages), and fast-check properties that it agrees with JSON.parse plus
 * the top-level object rule on random JSON with random whitespace, random
 * numbers and escapes, mutations of valid events and random bytes.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import fc from "fast-check";

import { checkJsonObject } from "../../src/lumberjack/json-check.js";

const RUNS = 2000;

/** The rule checkJsonObject stands for: JSON.parse gives an object. */
function model(bytes: Uint8Array): boolean {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    return false;
  }
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function check(text: string | Uint8Array): string | undefined {
  return checkJsonObject(typeof text === "string" ? Buffer.from(text) : text);
}

// Asserts that the checker agrees with the model and, when it refuses,
// says what and where in the one grammar.
function assertAgrees(bytes: Uint8Array): void {
  const problem = checkJsonObject(bytes);
  const shown = JSON.stringify(Buffer.from(bytes).toString("latin1"));
  assert.equal(problem === undefined, model(bytes), `${shown}: ${problem}`);
  if (problem === undefined) return;
  const at =
    /^(?:unexpected (?:'.'|0x[0-9a-f]{2}|end)|unescaped control byte 0x[0-9a-f]{2}) at byte (\d+)(?:, expected .+| in a string)$/.exec(
      problem,
    );
  assert.ok(at, `${shown}: ${problem}`);
  assert.ok(Number(at[1]) <= bytes.length, `${shown}: ${problem}`);
}

const accepted: [string, string][] = [
  ["an empty object", "{}"],
  [
    "whitespace of all four kinds around and inside",
    ' \t\r\n{ "a" :\t1 ,\n"b":[ ] }\r\n ',
  ],
  [
    "every kind of value",
    '{"s":"x","n":-1.5e+3,"t":true,"f":false,"z":null,"a":[{}],"o":{"p":[]}}',
  ],
  [
    "every escape",
    '{"e":"\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00"}',
  ],
  ["a lone surrogate escape, as JSON.parse allows", '{"s":"\\udc00"}'],
  [
    "numbers at the edges of the grammar",
    '{"a":[0,-0,0.0,1E9,1e-9,12.5E+01,-0e0]}',
  ],
  ["a duplicate key, as JSON.parse allows", '{"a":1,"a":2}'],
  ["UTF-8 text in keys and strings", '{"clé":"日本語 🎉"}'],
  ["DEL and bytes over 0x7f in a string", '{"s":"\x7f"}'],
];

for (const [name, text] of accepted) {
  test(`json-check: accepts ${name}`, () => {
    assert.equal(check(text), undefined);
    assert.equal(model(Buffer.from(text)), true);
  });
}

const refused: [string, string, string][] = [
  ["nothing", "", "unexpected end at byte 0, expected an object"],
  ["only whitespace", " \n", "unexpected end at byte 2, expected an object"],
  ["an array", "[1]", "unexpected '[' at byte 0, expected an object"],
  ["a string", ' "a"', "unexpected '\"' at byte 1, expected an object"],
  ["a number", "1", "unexpected '1' at byte 0, expected an object"],
  ["null", "null", "unexpected 'n' at byte 0, expected an object"],
  [
    "a byte order mark",
    "\ufeff{}",
    "unexpected 0xef at byte 0, expected an object",
  ],
  [
    "an unclosed object",
    "{",
    "unexpected end at byte 1, expected a string key or '}'",
  ],
  [
    "a key that is not a string",
    "{a:1}",
    "unexpected 'a' at byte 1, expected a string key or '}'",
  ],
  [
    "a single-quoted key",
    "{'a':1}",
    "unexpected ''' at byte 1, expected a string key or '}'",
  ],
  ["a missing colon", '{"a" 1}', "unexpected '1' at byte 5, expected ':'"],
  ["a missing value", '{"a":}', "unexpected '}' at byte 5, expected a value"],
  [
    "a trailing comma in an object",
    '{"a":1,}',
    "unexpected '}' at byte 7, expected a string key",
  ],
  [
    "a trailing comma in an array",
    '{"a":[1,]}',
    "unexpected ']' at byte 8, expected a value",
  ],
  [
    "an empty member",
    '{"a":[1,,2]}',
    "unexpected ',' at byte 8, expected a value",
  ],
  [
    "a missing comma",
    '{"a":1 "b":2}',
    "unexpected '\"' at byte 7, expected ',' or '}'",
  ],
  [
    "a mismatched bracket",
    '{"a":[1}',
    "unexpected '}' at byte 7, expected ',' or ']'",
  ],
  [
    "an unclosed array at the end",
    '{"a":[',
    "unexpected end at byte 6, expected a value",
  ],
  ["an unclosed string", '{"a":"xy', "unexpected end at byte 8, expected '\"'"],
  [
    "a raw newline in a string",
    '{"a":"x\ny"}',
    "unescaped control byte 0x0a at byte 7 in a string",
  ],
  [
    "a raw tab in a string",
    '{"a\t":1}',
    "unescaped control byte 0x09 at byte 3 in a string",
  ],
  [
    "a NUL in a string",
    '{"a":"\0"}',
    "unescaped control byte 0x00 at byte 6 in a string",
  ],
  [
    "an unknown escape",
    '{"a":"\\x41"}',
    "unexpected 'x' at byte 7, expected an escape character",
  ],
  [
    "an escape at the end",
    '{"a":"\\',
    "unexpected end at byte 7, expected an escape character",
  ],
  [
    "a short \\u escape",
    '{"a":"\\u12"}',
    "unexpected '\"' at byte 10, expected a hex digit of a \\u escape",
  ],
  [
    "a \\u escape with a bad digit",
    '{"a":"\\u00g0"}',
    "unexpected 'g' at byte 10, expected a hex digit of a \\u escape",
  ],
  [
    "a leading zero",
    '{"a":01}',
    "unexpected '1' at byte 6, expected ',' or '}'",
  ],
  ["a leading plus", '{"a":+1}', "unexpected '+' at byte 5, expected a value"],
  ["a minus alone", '{"a":-}', "unexpected '}' at byte 6, expected a digit"],
  ["a bare dot", '{"a":.5}', "unexpected '.' at byte 5, expected a value"],
  [
    "a dot without decimals",
    '{"a":1.}',
    "unexpected '}' at byte 7, expected a digit",
  ],
  [
    "an exponent without digits",
    '{"a":1e+}',
    "unexpected '}' at byte 8, expected a digit",
  ],
  ["hex digits", '{"a":0x10}', "unexpected 'x' at byte 6, expected ',' or '}'"],
  ["NaN", '{"a":NaN}', "unexpected 'N' at byte 5, expected a value"],
  [
    "a misspelt literal",
    '{"a":tru}',
    "unexpected '}' at byte 8, expected 'true'",
  ],
  [
    "a literal cut short",
    '{"a":fals',
    "unexpected end at byte 9, expected 'false'",
  ],
  [
    "a capitalised literal",
    '{"a":Null}',
    "unexpected 'N' at byte 5, expected a value",
  ],
  [
    "a second object",
    "{}{}",
    "unexpected '{' at byte 2, expected the end of the event",
  ],
  [
    "a trailing byte",
    '{"a":1} x',
    "unexpected 'x' at byte 8, expected the end of the event",
  ],
  [
    "a control byte outside strings",
    '{"a":\v1}',
    "unexpected 0x0b at byte 5, expected a value",
  ],
  [
    "a comment",
    '{"a":1 /* c */}',
    "unexpected '/' at byte 7, expected ',' or '}'",
  ],
];

for (const [name, text, message] of refused) {
  test(`json-check: refuses ${name}, saying what and where`, () => {
    assert.equal(check(text), message);
    assert.equal(model(Buffer.from(text)), false);
  });
}

test("json-check: bytes inside strings are not checked as UTF-8", () => {
  const payload = Buffer.concat([
    Buffer.from('{"bad":"'),
    Buffer.from([0xff, 0xc3, 0x28, 0xed, 0xa0, 0x80]),
    Buffer.from('"}'),
  ]);
  assert.equal(checkJsonObject(payload), undefined);
  // JSON.parse of the decoded text accepts it too, as U+FFFD.
  assert.equal(model(payload), true);

  const outside = Buffer.from([0x7b, 0xff, 0x7d]);
  assert.equal(
    checkJsonObject(outside),
    "unexpected 0xff at byte 1, expected a string key or '}'",
  );
});

test("json-check: checks a view of a larger buffer by its own offsets", () => {
  const whole = Buffer.from('xx{"a":[1]}{"b":}yy');
  assert.equal(checkJsonObject(whole.subarray(2, 11)), undefined);
  assert.equal(
    checkJsonObject(whole.subarray(11, 17)),
    "unexpected '}' at byte 5, expected a value",
  );
});

test("json-check: any nesting depth is accepted, as JSON.parse does, and a deep failure leaves nothing behind", () => {
  const depth = 500_000;
  const deep = `{"a":${`[{"k":`.repeat(depth)}1${"}]".repeat(depth)}}`;
  assert.equal(check(deep), undefined);
  assert.equal(model(Buffer.from(deep)), true);

  const open = `{"a":${"[".repeat(depth)}`;
  assert.equal(
    check(open),
    `unexpected end at byte ${open.length}, expected a value`,
  );
  const crossed = `{"a":${`[{"k":`.repeat(1000)}1]`;
  assert.equal(
    check(crossed),
    `unexpected ']' at byte ${crossed.length - 1}, expected ',' or '}'`,
  );
  // The kinds left open above do not leak into the next check.
  assert.equal(check('{"a":[{"b":[]}]}'), undefined);
  assert.equal(check('{"a":[}'), "unexpected '}' at byte 6, expected a value");
});

// JSON text of `value` with `spaces` (cycled) between every token.
function spaced(value: unknown, spaces: string[]): string {
  let n = 0;
  const ws = () => spaces[n++ % spaces.length] ?? "";
  const write = (v: unknown): string => {
    if (Array.isArray(v)) {
      return `[${ws()}${v.map((x) => write(x) + ws()).join(`,${ws()}`)}]`;
    }
    if (typeof v === "object" && v !== null) {
      const members = Object.entries(v).map(
        ([k, x]) => `${JSON.stringify(k)}${ws()}:${ws()}${write(x)}${ws()}`,
      );
      return `{${ws()}${members.join(`,${ws()}`)}}`;
    }
    return JSON.stringify(v);
  };
  return ws() + write(value) + ws();
}

const whitespace = fc.array(fc.stringMatching(/^[ \t\r\n]{0,3}$/), {
  minLength: 1,
  maxLength: 8,
});

test("json-check: agrees with JSON.parse on random JSON with random whitespace", () => {
  const value = fc.oneof(
    { weight: 4, arbitrary: fc.dictionary(fc.string(), fc.jsonValue()) },
    { weight: 1, arbitrary: fc.jsonValue() },
  );
  fc.assert(
    fc.property(value, whitespace, (v, spaces) => {
      assertAgrees(Buffer.from(spaced(v, spaces)));
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.json(), (text) => assertAgrees(Buffer.from(text))),
    { numRuns: RUNS },
  );
});

test("json-check: agrees with JSON.parse on random numbers and string escapes", () => {
  const numberText = fc.oneof(
    fc.stringMatching(
      /^-?(0|[1-9][0-9]{0,3})(\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?$/,
    ),
    fc.string({ unit: fc.constantFrom(..."-+.eE0129x "), maxLength: 8 }),
  );
  const stringText = fc.string({
    unit: fc.constantFrom(...'\\"u0aF/bfnrtz\n\t\x1f\x7f', "é"),
    maxLength: 10,
  });
  fc.assert(
    fc.property(numberText, stringText, (n, s) => {
      assertAgrees(Buffer.from(`{"n":${n}}`));
      assertAgrees(Buffer.from(`{"n":[${n}]}`));
      assertAgrees(Buffer.from(`{"s":"${s}"}`));
      assertAgrees(Buffer.from(`{"${s}":1}`));
    }),
    { numRuns: RUNS },
  );
});

test("json-check: agrees with JSON.parse on mutated events and random bytes", () => {
  const event = fc
    .tuple(
      fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 4 }),
      whitespace,
    )
    .map(([v, spaces]) => Buffer.from(spaced(v, spaces)));
  const mutation = fc.record({
    kind: fc.constantFrom("replace", "insert", "delete", "truncate"),
    at: fc.nat(),
    byte: fc.oneof(
      fc.constantFrom(...Buffer.from('{}[]":,\\ \n-.e0tfnu')),
      fc.integer({ min: 0, max: 255 }),
    ),
  });
  fc.assert(
    fc.property(
      event,
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      (bytes, mutations) => {
        let b = Buffer.from(bytes);
        for (const m of mutations) {
          const at = b.length === 0 ? 0 : m.at % (b.length + 1);
          const one = Buffer.from([m.byte]);
          if (m.kind === "replace" && at < b.length) b[at] = m.byte;
          if (m.kind === "insert")
            b = Buffer.concat([b.subarray(0, at), one, b.subarray(at)]);
          if (m.kind === "delete")
            b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
          if (m.kind === "truncate") b = b.subarray(0, at);
        }
        assertAgrees(b);
      },
    ),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 24 }), (bytes) => {
      assertAgrees(Buffer.concat([Buffer.from("{"), bytes]));
      assertAgrees(bytes);
    }),
    { numRuns: RUNS },
  );
});
