/**
 * logfmt line -> record. Reads what `format` writes in either mode: bare
 * values, double-quoted values with `\"` `\\` `\n` `\r` `\t` `\uXXXX` (and
 * JSON's `\/` `\b` `\f`) escapes, grohl's single-quoted values, and bare
 * keys, which read as `true`. Later duplicates win.
 */
import { setKey } from "./data.js";

/** A parsed record: every value a string, or `true` for a bare key. */
export type ParsedRecord = Record<string, string | true>;

/** Outcome of scanning a line; `strict` is false when the line is damaged. */
interface Scan {
  record: ParsedRecord;
  pairs: number;
  strict: boolean;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  n: "\n",
  r: "\r",
  t: "\t",
  b: "\b",
  f: "\f",
};

/**
 * Parses one line leniently: never throws; an unterminated quote runs to
 * the end of the line, an unknown escape is kept as written, and a pair
 * with an empty key is skipped.
 */
export function parse(line: string): ParsedRecord {
  return scan(line).record;
}

/**
 * Parses a line only if it looks like logfmt: at least one `key=value`
 * pair, no empty key and no unterminated quote. Otherwise undefined.
 */
export function tryParse(line: string): ParsedRecord | undefined {
  const result = scan(line);
  return result.strict && result.pairs > 0 ? result.record : undefined;
}

function scan(line: string): Scan {
  const record: ParsedRecord = {};
  let pairs = 0;
  let strict = true;
  let i = 0;
  const end = line.length;

  while (i < end) {
    while (i < end && line.charCodeAt(i) <= 0x20) i++;
    if (i >= end) break;

    const keyStart = i;
    while (i < end && line.charCodeAt(i) > 0x20 && line[i] !== "=") i++;
    const key = line.slice(keyStart, i);
    if (line[i] !== "=") {
      setKey(record, key, true);
      continue;
    }

    i++; // the `=`
    let value: string;
    if (line[i] === '"' || (line[i] === "'" && closes(line, i))) {
      const quoted = readQuoted(line, i);
      value = quoted.value;
      i = quoted.next;
      if (!quoted.closed) strict = false;
    } else {
      const valueStart = i;
      while (i < end && line.charCodeAt(i) > 0x20) i++;
      value = line.slice(valueStart, i);
    }

    if (key.length === 0) {
      strict = false;
      continue;
    }
    setKey(record, key, value);
    pairs++;
  }
  return { record, pairs, strict };
}

/** Reads a quoted value starting at the quote character `line[start]`. */
function readQuoted(
  line: string,
  start: number,
): { value: string; next: number; closed: boolean } {
  const mark = line[start];
  let value = "";
  let last = start + 1;
  let i = last;
  while (i < line.length) {
    const c = line[i];
    if (c === mark) {
      return { value: value + line.slice(last, i), next: i + 1, closed: true };
    }
    if (c !== "\\" || i + 1 >= line.length) {
      i++;
      continue;
    }
    const decoded = unescape(line, i, mark === "'");
    value += line.slice(last, i) + decoded.text;
    i += decoded.length;
    last = i;
  }
  return { value: value + line.slice(last), next: i, closed: false };
}

/** Decodes the escape at `line[i]` (a backslash). */
function unescape(
  line: string,
  i: number,
  single: boolean,
): { text: string; length: number } {
  const c = line[i + 1] ?? "";
  if (single) {
    // grohl doubles backslashes in quoted values and escapes nothing else.
    return c === "\\" || c === "'"
      ? { text: c, length: 2 }
      : { text: "\\", length: 1 };
  }
  const simple = SIMPLE_ESCAPES[c];
  if (simple !== undefined) return { text: simple, length: 2 };
  if (c === "u") {
    const hex = line.slice(i + 2, i + 6);
    if (/^[0-9a-fA-F]{4}$/.test(hex)) {
      return { text: String.fromCharCode(parseInt(hex, 16)), length: 6 };
    }
  }
  return { text: "\\", length: 1 };
}

/** A `'` opens a quoted value only when a closing `'` ends a token. */
function closes(line: string, start: number): boolean {
  let i = line.indexOf("'", start + 1);
  while (i !== -1) {
    if (line[i - 1] !== "\\" || line[i - 2] === "\\") {
      const after = line.charCodeAt(i + 1);
      if (Number.isNaN(after) || after <= 0x20) return true;
    }
    i = line.indexOf("'", i + 1);
  }
  return false;
}
