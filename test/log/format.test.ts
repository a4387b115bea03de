/**
 * format in safe mode: a table of tricky values and keys, every value type
 * grohl.md lists, the `now=` prefix and the never-throws guarantee.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { ValidationError } from "../../src/errors.js";
import {
  MemoryLogger,
  float,
  format,
  lineFormatter,
  parse,
  type FormatMode,
} from "../../src/log/index.js";

const when = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678));

function cyclic(): object {
  const value: Record<string, unknown> = { a: 1 };
  value.self = value;
  return value;
}

function nested(depth: number): object {
  let value: object = {};
  for (let i = 0; i < depth; i++) value = { n: value };
  return value;
}

const throwingToJSON = {
  toJSON(): never {
    throw new Error("no");
  },
};

const throwingGetter = {
  get x(): never {
    throw new Error("no");
  },
};

function namedFunction(): void {}

// [case, value, expected text after `k=`]
const values: [string, unknown, string][] = [
  ["a plain word", "hi", "hi"],
  ["a value holding a space", "a b", '"a b"'],
  ["a value holding =", "x=4,y=10", '"x=4,y=10"'],
  ["both quote kinds", `echo 'hello' "world"`, `"echo 'hello' \\"world\\""`],
  ["a double quote", 'echo "hello"', '"echo \\"hello\\""'],
  ["a double quote without space", 'a"b', '"a\\"b"'],
  ["a bare backslash", "back\\slash", "back\\slash"],
  ["a backslash with a space", "C:\\dir x", '"C:\\\\dir x"'],
  ["a newline", "line1\nline2", '"line1\\nline2"'],
  ["a carriage return and tab", "a\r\tb", '"a\\r\\tb"'],
  ["an empty string", "", '""'],
  ["the string nil", "nil", '"nil"'],
  ["a leading single quote", "'quoted'", `"'quoted'"`],
  ["an inner single quote", "it's", "it's"],
  ["unicode with a space", "héllo wörld", '"héllo wörld"'],
  ["unicode", "日本語", "日本語"],
  ["an emoji", "😀", "😀"],
  ["NUL", "\u0000", '"\\u0000"'],
  ["an ANSI escape", "\u001b[31m", '"\\u001b[31m"'],
  ["DEL", "a\u007fb", '"a\\u007fb"'],
  ["a C1 control", "\u0085", '"\\u0085"'],
  ["a line separator", "a\u2028b", '"a\\u2028b"'],
  ["a lone high surrogate", "\ud83d", '"\\ud83d"'],
  ["a lone low surrogate", "a\udc00b", '"a\\udc00b"'],
  ["swapped surrogates", "\udc00\ud800", '"\\udc00\\ud800"'],
  ["null", null, "nil"],
  ["undefined", undefined, "nil"],
  ["true", true, "true"],
  ["false", false, "false"],
  ["zero", 0, "0"],
  ["negative zero", -0, "0"],
  ["a negative integer", -5, "-5"],
  ["a safe integer", 9007199254740991, "9007199254740991"],
  ["1e21", 1e21, "1000000000000000000000"],
  ["-1e21", -1e21, "-1000000000000000000000"],
  ["1e300", 1e300, BigInt(1e300).toString()],
  ["a bigint", 12345678901234567890123n, "12345678901234567890123"],
  ["a float", 1.5, "1.500"],
  ["a float rounding up", 12.3456, "12.346"],
  ["a tiny float", 1e-7, "0.000"],
  ["NaN", NaN, "NaN"],
  ["Infinity", Infinity, "+Inf"],
  ["-Infinity", -Infinity, "-Inf"],
  ["a whole Float", float(1), "1.000"],
  ["a Date", when, "2026-01-02T03:04:05+0000"],
  ["an invalid Date", new Date(NaN), '"Invalid Date"'],
  ["an Error", new Error("boom here"), '"boom here"'],
  ["an object", { a: 1, b: [1, "x"] }, '"{\\"a\\":1,\\"b\\":[1,\\"x\\"]}"'],
  ["an empty array", [], "[]"],
  ["an empty object", {}, "{}"],
  ["a cycle", cyclic(), '"{\\"a\\":1,\\"self\\":\\"[Circular]\\"}"'],
  ["a throwing toJSON", throwingToJSON, "[Throws]"],
  [
    "a nested throwing toJSON",
    { x: throwingToJSON },
    '"{\\"x\\":\\"[Throws]\\"}"',
  ],
  ["a throwing getter", throwingGetter, '"{\\"x\\":\\"[Throws]\\"}"'],
  ["a bigint inside", { n: 10n }, '"{\\"n\\":10}"'],
  ["a Map", new Map([["a", 1]]), '"{\\"a\\":1}"'],
  ["a Set", new Set([1, 2]), "[1,2]"],
  ["an Error inside", [new Error("x")], '"[\\"x\\"]"'],
  [
    "a URL",
    new URL("https://example.com/a?b=c"),
    '"https://example.com/a?b=c"',
  ],
  ["a boxed string", new String("a b"), '"a b"'],
  ["a deep object", nested(10), '"' + deepText() + '"'],
  ["a function", namedFunction, '"[Function: namedFunction]"'],
  ["a symbol", Symbol("s"), "Symbol(s)"],
];

function deepText(): string {
  const inner = '\\"[Object]\\"';
  return '{\\"n\\":'.repeat(8) + inner + "}".repeat(8);
}

for (const [name, value, expected] of values) {
  test(`format: writes ${name}`, () => {
    assert.equal(format({ k: value }), "k=" + expected);
  });
}

// [case, key, expected key text]
const keys: [string, string, string][] = [
  ["a dotted key", "job.id", "job.id"],
  ["a key with a space", "a b", "a_b"],
  ["a key with =", "a=b", "a_b"],
  ["a key with a quote", 'a"b', "a_b"],
  ["a key with a newline", "a\nb", "a_b"],
  ["a key with DEL", "a\u007f", "a_"],
  ["an empty key", "", "_"],
  ["a unicode key", "clé", "clé"],
  ["an emoji key", "😀", "😀"],
  ["a lone surrogate key", "\ud800x", "_x"],
];

for (const [name, key, expected] of keys) {
  test(`format: replaces the unsafe characters of ${name}`, () => {
    assert.equal(format({ [key]: 1 }), `${expected}=1`);
  });
}

test("format: keeps key order and joins pairs with one space", () => {
  assert.equal(format({ b: 1, a: "x", c: true }), "b=1 a=x c=true");
});

test("format: an empty record is an empty line", () => {
  assert.equal(format({}), "");
});

test("format: puts now= first and drops a now key when time is a Date", () => {
  const line = format({ a: 1, now: "old" }, { time: when });
  assert.equal(line, "now=2026-01-02T03:04:05+0000 a=1");
});

test("format: writes now= with milliseconds when timeMs is set", () => {
  const line = format({ a: when }, { time: when, timeMs: true });
  assert.equal(
    line,
    "now=2026-01-02T03:04:05.678+0000 a=2026-01-02T03:04:05.678+0000",
  );
});

test("format: keeps a now key when time is false", () => {
  assert.equal(format({ now: 1, a: 2 }, { time: false }), "now=1 a=2");
});

test("format: writes a Date past year 9999", () => {
  const far = new Date(Date.UTC(10000, 0, 1));
  assert.equal(format({ t: far }), "t=+010000-01-01T00:00:00+0000");
});

test("format: survives a record whose getter throws", () => {
  const record = {
    a: 1,
    get b(): never {
      throw new Error("no");
    },
    c: 3,
  };
  assert.equal(format(record), "a=1 b=[Throws] c=3");
});

test("format: an own __proto__ key is written like any other", () => {
  const record = JSON.parse('{"__proto__": "x", "a": 1}') as Record<
    string,
    unknown
  >;
  assert.equal(format(record), "__proto__=x a=1");
});

// [mode given, as the message shows it]
const badModes: [unknown, string][] = [
  ["Safe", '"Safe"'],
  ["fancy", '"fancy"'],
  ["", '""'],
  [null, "null"],
  [1, "1"],
];

for (const [mode, shown] of badModes) {
  test(`format: rejects the mode ${shown} instead of using grohl rules`, () => {
    const error = new ValidationError(
      `Invalid log mode ${shown}: expected "safe" or "grohl"`,
      "mode",
    );
    const options = { mode: mode as FormatMode };
    assert.throws(() => format({ v: "a\nb" }, options), error);
    assert.throws(() => lineFormatter(mode as FormatMode), error);
    assert.throws(() => new MemoryLogger(options), error);
  });
}

/** A record with the properties of `own` over a prototype `inherited`. */
function withPrototype(
  own: object,
  inherited: object,
): Record<string, unknown> {
  const descriptors = Object.getOwnPropertyDescriptors(own);
  return Object.create(inherited, descriptors) as Record<string, unknown>;
}

const withThrowingGetter = {
  a: 1,
  get t(): never {
    throw new Error("no");
  },
};

// [case, record, expected line]: every path of format drops inherited keys
const inheritedCases: [string, Record<string, unknown>, string][] = [
  ["a plain record", withPrototype({ a: 1 }, { up: 2 }), "a=1"],
  [
    "a record whose getter throws",
    withPrototype(withThrowingGetter, { up: 2 }),
    "a=1 t=[Throws]",
  ],
  [
    "a record with a renamed key",
    withPrototype({ "a b": 1 }, { up: 2 }),
    "a_b=1",
  ],
];

for (const [name, record, expected] of inheritedCases) {
  test(`format: writes only own keys of ${name}`, () => {
    assert.equal(format(record), expected);
  });
}

// [case, record, expected line]
const clashes: [string, Record<string, unknown>, string][] = [
  ["a renamed key and a real one", { "a b": 1, a_b: 2 }, "a_b_2=1 a_b=2"],
  ["the real key first", { a_b: 2, "a b": 1 }, "a_b=2 a_b_2=1"],
  ["an empty key and _", { "": 1, _: 2 }, "__2=1 _=2"],
  ["two renamed keys", { "a b": 1, "a=b": 2 }, "a_b=1 a_b_2=2"],
  [
    "a suffix taken by a real key",
    { "a b": 1, a_b: 2, a_b_2: 3 },
    "a_b_3=1 a_b=2 a_b_2=3",
  ],
  [
    "a suffixed name that is itself renamed",
    { "a b": 1, "a=b": 2, "a b_2": 3 },
    "a_b=1 a_b_2=2 a_b_2_2=3",
  ],
];

for (const [name, record, expected] of clashes) {
  test(`format: keeps every pair when keys clash: ${name}`, () => {
    const line = format(record);
    assert.equal(line, expected);
    assert.equal(Object.keys(parse(line)).length, Object.keys(record).length);
  });
}

test("format: a renamed key does not clash with now=", () => {
  const line = format({ "a b": 1, now: 2, a_b: 3 }, { time: when });
  assert.equal(line, "now=2026-01-02T03:04:05+0000 a_b_2=1 a_b=3");
});

test("format: grohl mode writes clashing keys as they are", () => {
  assert.equal(format({ "a b": 1, a_b: 2 }, { mode: "grohl" }), "a b=1 a_b=2");
});
