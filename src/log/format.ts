/**
 * Record -> one logfmt line. `format` is the public entry; sinks build a
 * `LineFormatter` once (mode and time precision resolved at construction)
 * and a `TimeText` that formats `now=` at most once per second.
 *
 * A record's own enumerable string keys are written, in order. In safe mode
 * a key that had to be changed gets `_2`, `_3`, ... appended when another
 * key of the record already has its new name, so no pair is lost.
 */
import type { Data, FormatMode } from "./types.js";

import { ValidationError } from "../errors.js";
import { THROWS, ownKeys, readField } from "./data.js";
import { encodeKey, quoteGrohl, quoteSafe } from "./quote.js";
import {
  Float,
  describeOther,
  errorText,
  fixed3,
  formatNumber,
  formatTime,
  safeJson,
} from "./value.js";

/** Options of `format`. */
export interface FormatOptions {
  /** Quoting rules; default "safe". */
  mode?: FormatMode;
  /** When a Date, the line starts with `now=` (a `now` key is dropped). */
  time?: Date | false;
  /** Times (`now=` and Date values) with milliseconds; default false. */
  timeMs?: boolean;
}

/** Formats records and values for one mode and time precision. */
export interface LineFormatter {
  /** One line, no newline; `now` (already text) goes first when given. */
  line(record: Data, now?: string): string;
  /** One value as it appears after `key=`. */
  value(value: unknown): string;
}

const formatters = new Map<string, LineFormatter>();

/**
 * Formats a record as one logfmt line without a newline. Never throws for
 * any record: values that cannot be read print a placeholder such as
 * "[Throws]". An unknown `mode` is a ValidationError.
 */
export function format(record: Data, options?: FormatOptions): string {
  const formatter = lineFormatter(options?.mode, options?.timeMs);
  const time = options?.time;
  if (time instanceof Date)
    return formatter.line(record, formatter.value(time));
  return formatter.line(record);
}

/**
 * The shared formatter for a mode and precision (defaults: safe, no ms).
 * An unknown mode is a ValidationError.
 */
export function lineFormatter(
  mode?: FormatMode,
  timeMs = false,
): LineFormatter {
  const checked = resolveMode(mode);
  const id = checked + (timeMs ? ":ms" : ":s");
  let formatter = formatters.get(id);
  if (formatter === undefined) {
    formatter = createFormatter(checked, timeMs);
    formatters.set(id, formatter);
  }
  return formatter;
}

/** Checks a `mode` option; undefined means "safe". */
export function resolveMode(mode: unknown): FormatMode {
  if (mode === undefined) return "safe";
  if (mode === "safe" || mode === "grohl") return mode;
  throw new ValidationError(
    `Invalid log mode ${JSON.stringify(mode) ?? typeof mode}: ` +
      'expected "safe" or "grohl"',
    "mode",
  );
}

/** `now=` text for the current time, recomputed once per second. */
export class TimeText {
  readonly #withMs: boolean;
  #second = NaN;
  #text = "";

  constructor(withMs: boolean) {
    this.#withMs = withMs;
  }

  at(ms: number): string {
    const second = Math.floor(ms / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#text = formatTime(second * 1000, false).slice(0, -5);
    }
    if (!this.#withMs) return this.#text + "+0000";
    const fraction = ms - second * 1000;
    const digits = fraction < 10 ? "00" : fraction < 100 ? "0" : "";
    return this.#text + "." + digits + Math.floor(fraction) + "+0000";
  }
}

function createFormatter(mode: FormatMode, timeMs: boolean): LineFormatter {
  const safe = mode === "safe";
  const quote = safe ? quoteSafe : quoteGrohl;
  const key = safe ? encodeKey : (k: string) => k;

  function value(v: unknown): string {
    switch (typeof v) {
      case "string":
        return quote(v);
      case "number":
        return formatNumber(v);
      case "boolean":
        return v ? "true" : "false";
      case "undefined":
        return "nil";
      case "bigint":
        return v.toString();
      case "object":
        return v === null ? "nil" : objectValue(v);
      default:
        return quote(describeOther(v));
    }
  }

  function objectValue(v: object): string {
    try {
      if (v instanceof Float) return fixed3(v.value);
      if (v instanceof Date) return quote(formatTime(v.getTime(), timeMs));
      if (v instanceof Error) return quote(errorText(v));
      if (v instanceof String || v instanceof Number || v instanceof Boolean) {
        return value(v.valueOf());
      }
      const toJSON: unknown = (v as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === "function") {
        const json: unknown = toJSON.call(v);
        if (typeof json !== "object") return value(json);
        return quote(safeJson(json));
      }
      return quote(safeJson(v));
    } catch {
      return quote("[Throws]");
    }
  }

  function line(record: Data, now?: string): string {
    try {
      let out = now === undefined ? "" : "now=" + now;
      const keys = Object.keys(record);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i] as string;
        if (now !== undefined && k === "now") continue;
        const name = key(k);
        if (name !== k) return carefulLine(record, now); // may clash
        const pair = name + "=" + value(record[k]);
        out = out.length === 0 ? pair : out + " " + pair;
      }
      return out;
    } catch {
      return carefulLine(record, now); // a getter or a Proxy threw
    }
  }

  /** The slow path: renamed keys made unique, each read guarded. */
  function carefulLine(record: Data, now?: string): string {
    const keys = ownKeys(record).filter(
      (k) => now === undefined || k !== "now",
    );
    const names = uniqueNames(keys, key, now === undefined ? [] : ["now"]);
    const pairs = now === undefined ? [] : ["now=" + now];
    keys.forEach((k, i) => {
      let text: string;
      try {
        text = value(readField(record, k));
      } catch {
        text = quote(THROWS);
      }
      pairs.push(names[i] + "=" + text);
    });
    return pairs.join(" ");
  }

  return { line, value };
}

/**
 * The written name of each key. A key that `encode` leaves alone keeps its
 * name; a changed one gets `_2`, `_3`, ... appended while its new name is
 * taken by another key (or by one of `reserved`).
 */
function uniqueNames(
  keys: readonly string[],
  encode: (key: string) => string,
  reserved: readonly string[],
): string[] {
  const encoded = keys.map(encode);
  const taken = new Set(reserved);
  encoded.forEach((name, i) => {
    if (name === keys[i]) taken.add(name);
  });
  const nextSuffix = new Map<string, number>();
  return encoded.map((name, i) => {
    if (name === keys[i]) return name;
    let unique = name;
    let n = nextSuffix.get(name) ?? 2;
    while (taken.has(unique)) unique = `${name}_${n++}`;
    nextSuffix.set(name, n);
    taken.add(unique);
    return unique;
  });
}
