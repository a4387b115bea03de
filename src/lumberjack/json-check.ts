/**
 * A byte-level check that a v2 event payload is one JSON object (RFC 8259),
 * without parsing it: the receiver's raw path hands the bytes on as they
 * came, so it only needs to know they are JSON. One pass, a table lookup
 * per string byte, no recursion (a payload nested a million deep is
 * checked like a flat one), and nothing allocated unless the payload is
 * bad or nested deeper than the stack kept between calls.
 *
 * It accepts exactly the payloads whose UTF-8 decoding `JSON.parse` turns
 * into an object. Bytes inside strings are not checked as UTF-8: the
 * decoding would turn a bad sequence into U+FFFD, which a string may hold,
 * so they do not change the answer, and the raw path keeps them as they
 * are. Any nesting depth passes, as with `JSON.parse`; the frame size
 * limit bounds it.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const LOWER_U = 0x75;

const IN_OBJECT = 1;
const IN_ARRAY = 2;

// Byte classes: 1 for the bytes in the class.
const WHITESPACE = byteTable([0x20, 0x09, 0x0a, 0x0d]);
// What a string holds as it is: not `"`, `\` or a control byte.
const PLAIN = byteTable(
  Array.from({ length: 256 }, (_, b) => b).filter(
    (b) => b >= 0x20 && b !== QUOTE && b !== BACKSLASH,
  ),
);
const HEX = byteTable(
  [..."0123456789abcdefABCDEF"].map((c) => c.charCodeAt(0)),
);
const ESCAPE = byteTable([...'"\\/bfnrt'].map((c) => c.charCodeAt(0)));
const LITERALS: Readonly<Record<number, Uint8Array>> = {
  0x74: Buffer.from("true"),
  0x66: Buffer.from("false"),
  0x6e: Buffer.from("null"),
};

// Kinds of the open containers, shared by every call (checks never
// overlap: they are synchronous). Reset after a deep payload grew it.
const KEPT_STACK_BYTES = 4096;
let stack = new Uint8Array(KEPT_STACK_BYTES);
// Set by a helper that returns FAILED; read by checkJsonObject.
const FAILED = -1;
let failure = "";

/**
 * Checks that `bytes` is one JSON object, whitespace around it allowed.
 * Returns undefined when it is, else what is wrong and where, e.g.
 * `unexpected '}' at byte 7, expected a value` (byte offsets count from
 * 0). Never throws.
 */
export function checkJsonObject(bytes: Uint8Array): string | undefined {
  const start = skipWhitespace(bytes, 0);
  if (start >= bytes.length || bytes[start] !== OPEN_OBJECT) {
    return unexpected(bytes, start, "an object");
  }
  const result = checkValue(bytes, start);
  if (stack.length > KEPT_STACK_BYTES) {
    stack = new Uint8Array(KEPT_STACK_BYTES);
  }
  return result === FAILED ? failure : undefined;
}

// Walks the top-level value at `i` and anything after it. A container
// pushes its kind and the loop goes on with its first member; after each
// value the inner loop closes containers until one wants another member.
function checkValue(b: Uint8Array, i: number): number {
  const end = b.length;
  let depth = 0;
  for (;;) {
    i = skipWhitespace(b, i);
    const c = i < end ? (b[i] as number) : -1;
    if (c === QUOTE) i = skipString(b, i);
    else if ((c >= ZERO && c <= NINE) || c === MINUS) i = skipNumber(b, i);
    else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (depth === stack.length) growStack();
      stack[depth++] = c === OPEN_OBJECT ? IN_OBJECT : IN_ARRAY;
      i = skipWhitespace(b, i + 1);
      const close = c === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY;
      if (i < end && b[i] === close) {
        depth--;
        i++;
      } else if (c === OPEN_OBJECT) {
        i = skipKey(b, i, "a string key or '}'");
        if (i === FAILED) return FAILED;
        continue;
      } else continue;
    } else if (LITERALS[c] !== undefined) i = skipLiteral(b, i, LITERALS[c]);
    else return fail(b, i, "a value");
    if (i === FAILED) return FAILED;

    // After a value: a comma wants the next member, a bracket closes.
    for (;;) {
      i = skipWhitespace(b, i);
      if (depth === 0) {
        return i === end ? i : fail(b, i, "the end of the event");
      }
      const kind = stack[depth - 1];
      const next = i < end ? b[i] : -1;
      if (next === COMMA) {
        i =
          kind === IN_OBJECT
            ? skipKey(b, skipWhitespace(b, i + 1), "a string key")
            : i + 1;
        if (i === FAILED) return FAILED;
        break;
      }
      if (next === (kind === IN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) {
        depth--;
        i++;
        continue;
      }
      return fail(b, i, kind === IN_OBJECT ? "',' or '}'" : "',' or ']'");
    }
  }
}

// A member's key and its colon; returns where the value starts.
function skipKey(b: Uint8Array, i: number, expected: string): number {
  if (i >= b.length || b[i] !== QUOTE) return fail(b, i, expected);
  i = skipString(b, i);
  if (i === FAILED) return FAILED;
  i = skipWhitespace(b, i);
  if (i >= b.length || b[i] !== COLON) return fail(b, i, "':'");
  return i + 1;
}

function skipString(b: Uint8Array, i: number): number {
  const end = b.length;
  i++;
  while (i < end) {
    const c = b[i] as number;
    if (PLAIN[c] === 1) {
      i++;
    } else if (c === QUOTE) {
      return i + 1;
    } else if (c === BACKSLASH) {
      i = skipEscape(b, i + 1);
      if (i === FAILED) return FAILED;
    } else {
      failure = `unescaped control byte ${describe(c)} at byte ${i} in a string`;
      return FAILED;
    }
  }
  return fail(b, i, "'\"'");
}

// `i` is just after the backslash.
function skipEscape(b: Uint8Array, i: number): number {
  const end = b.length;
  if (i < end && ESCAPE[b[i] as number] === 1) return i + 1;
  if (i >= end || b[i] !== LOWER_U) return fail(b, i, "an escape character");
  for (let k = i + 1; k < i + 5; k++) {
    if (k >= end || HEX[b[k] as number] !== 1) {
      return fail(b, k, "a hex digit of a \\u escape");
    }
  }
  return i + 5;
}

// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
function skipNumber(b: Uint8Array, i: number): number {
  const end = b.length;
  if (b[i] === MINUS) i++;
  if (i < end && b[i] === ZERO) i++;
  else {
    i = skipDigits(b, i);
    if (i === FAILED) return FAILED;
  }
  if (i < end && b[i] === DOT) {
    i = skipDigits(b, i + 1);
    if (i === FAILED) return FAILED;
  }
  if (i < end && (b[i] === LOWER_E || b[i] === UPPER_E)) {
    i++;
    if (i < end && (b[i] === PLUS || b[i] === MINUS)) i++;
    i = skipDigits(b, i);
  }
  return i;
}

// One digit or more.
function skipDigits(b: Uint8Array, i: number): number {
  const start = i;
  while (i < b.length && (b[i] as number) >= ZERO && (b[i] as number) <= NINE) {
    i++;
  }
  return i === start ? fail(b, i, "a digit") : i;
}

function skipLiteral(b: Uint8Array, i: number, literal: Uint8Array): number {
  for (let k = 0; k < literal.length; k++) {
    if (b[i + k] !== literal[k]) {
      return fail(b, i + k, `'${String.fromCharCode(...literal)}'`);
    }
  }
  return i + literal.length;
}

function skipWhitespace(b: Uint8Array, i: number): number {
  while (i < b.length && WHITESPACE[b[i] as number] === 1) i++;
  return i;
}

function growStack(): void {
  const bigger = new Uint8Array(stack.length * 2);
  bigger.set(stack);
  stack = bigger;
}

function fail(b: Uint8Array, i: number, expected: string): number {
  failure = unexpected(b, i, expected);
  return FAILED;
}

function unexpected(b: Uint8Array, i: number, expected: string): string {
  const found = i < b.length ? describe(b[i] as number) : "end";
  return `unexpected ${found} at byte ${i}, expected ${expected}`;
}

// Printable ASCII in quotes, any other byte in hex.
function describe(byte: number): string {
  if (byte >= 0x20 && byte < 0x7f) return `'${String.fromCharCode(byte)}'`;
  return `0x${byte.toString(16).padStart(2, "0")}`;
}

function byteTable(bytes: readonly number[]): Uint8Array {
  const table = new Uint8Array(256);
  for (const b of bytes) table[b] = 1;
  return table;
}
