/**
 * The values templates work on, and Go's rules for them: which values are
 * true in `if`, and how a value prints (fmt's `%v`).
 *
 * Go's data has static types; here each kind of value has one JS form:
 * strings, numbers, booleans, arrays, maps (TemplateMap), structs (plain
 * objects: a missing field is an error) and methods (functions held by a
 * struct, called by a field chain such as `.TCPPort 0`).
 */
import { TemplateFailure } from "./errors.js";

/** Values nested deeper than this (or cyclic ones) do not print. */
const MAX_PRINT_DEPTH = 100;

export type TemplateValue =
  | string
  | number
  | boolean
  | readonly TemplateValue[]
  | TemplateMap
  | TemplateStruct
  | TemplateMethod;

/** A struct: named fields; reading a field it lacks is an error. */
export interface TemplateStruct {
  readonly [field: string]: TemplateValue;
}

/**
 * A method of a struct. It is called with exactly as many arguments as its
 * declared parameters (`fn.length`), as Go checks a method's arity; it may
 * throw, and the error is reported as `error calling <name>: <message>`.
 */
export type TemplateMethod = (...args: TemplateValue[]) => TemplateValue;

/**
 * A map from string keys. Looking up a missing key yields `zero` (Go's
 * `missingkey=zero` for a map of that element type), or fails with
 * `map has no entry for key "k"` when the map has no zero value.
 */
export class TemplateMap {
  readonly entries: ReadonlyMap<string, TemplateValue>;
  readonly zero: TemplateValue | undefined;

  constructor(
    entries: Iterable<readonly [string, TemplateValue]>,
    zero?: TemplateValue,
  ) {
    this.entries = new Map(entries);
    this.zero = zero;
  }

  /** A map of strings whose missing keys read as "". */
  static ofStrings(record: Readonly<Record<string, string>>): TemplateMap {
    return new TemplateMap(Object.entries(record), "");
  }

  /** The value at `key`, the zero value, or a TemplateFailure. */
  get(key: string): TemplateValue {
    const value = this.entries.get(key) ?? this.zero;
    if (value === undefined) {
      throw new TemplateFailure(
        `map has no entry for key ${JSON.stringify(key)}`,
      );
    }
    return value;
  }
}

export function isArray(
  value: TemplateValue,
): value is readonly TemplateValue[] {
  return Array.isArray(value);
}

export function isMethod(value: TemplateValue): value is TemplateMethod {
  return typeof value === "function";
}

export function isStruct(value: TemplateValue): value is TemplateStruct {
  return (
    typeof value === "object" &&
    !isArray(value) &&
    !(value instanceof TemplateMap)
  );
}

/** Go's truth: false, 0, "", and empty arrays and maps are false. */
export function isTruthy(value: TemplateValue): boolean {
  if (typeof value === "boolean") return value;
  if (typeof value === "number") return value !== 0;
  if (typeof value === "string") return value.length > 0;
  if (isArray(value)) return value.length > 0;
  if (value instanceof TemplateMap) return value.entries.size > 0;
  return true;
}

/**
 * Prints a value as Go's `%v` does: numbers in base 10, arrays as
 * `[a b]`, maps as `map[k:v]` sorted by key, structs as `{v1 v2}`. A value
 * nested deeper than MAX_PRINT_DEPTH levels (a cycle, say) fails.
 */
export function printValue(value: TemplateValue, depth = 0): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  if (isMethod(value)) throw new TemplateFailure("cannot print a method");
  if (depth >= MAX_PRINT_DEPTH) {
    throw new TemplateFailure(
      `cannot print a value nested deeper than ${MAX_PRINT_DEPTH} levels`,
    );
  }
  const print = (item: TemplateValue): string => printValue(item, depth + 1);
  if (isArray(value)) return `[${value.map(print).join(" ")}]`;
  if (value instanceof TemplateMap) {
    const keys = [...value.entries.keys()].sort(compareBytes);
    const pairs = keys.map((k) => `${k}:${print(value.get(k))}`);
    return `map[${pairs.join(" ")}]`;
  }
  const fields = Object.values(value).filter((v) => !isMethod(v));
  return `{${fields.map(print).join(" ")}}`;
}

/** Names a value's kind for error messages: "a string", "an array". */
export function describeValue(value: TemplateValue): string {
  if (typeof value === "string") return "a string";
  if (typeof value === "number") return "a number";
  if (typeof value === "boolean") return "a boolean";
  if (isMethod(value)) return "a method";
  if (isArray(value)) return "an array";
  if (value instanceof TemplateMap) return "a map";
  return "a struct";
}

/** Go sorts map keys by their UTF-8 bytes; so does this. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
