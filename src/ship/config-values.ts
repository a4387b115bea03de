/**
 * Checks for single values of the `lorne ship` config file. Each one takes
 * the value as parsed from JSON and the key path it came from (e.g.
 * `files[0].paths[2]`), and either returns the value typed or throws a
 * ValidationError whose `field` is that path and whose message names it:
 * `Invalid <key> <value>: expected <what>`.
 */
import { isAbsolute, resolve } from "node:path";

import { ValidationError } from "../errors.js";
import { isWholeIn } from "../numbers.js";

/** Longest value text quoted in a message; longer ones are cut. */
const MAX_SHOWN_CHARS = 80;
const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A JSON object of the config, read by key. */
export type ConfigObject = Readonly<Record<string, unknown>>;

/** The key path of `key` inside the object at `parent` ("" at the top). */
export function keyPath(parent: string, key: string): string {
  if (!PLAIN_KEY.test(key)) return `${parent}[${JSON.stringify(key)}]`;
  return parent === "" ? key : `${parent}.${key}`;
}

/** The key path of item `index` of the array at `parent`. */
export function itemPath(parent: string, index: number): string {
  return `${parent}[${index}]`;
}

/**
 * A ValidationError for a bad value: a scalar is quoted in the message, an
 * array or object is described instead.
 */
export function invalid(
  field: string,
  value: unknown,
  expected: string,
): ValidationError {
  if (isScalar(value)) {
    return new ValidationError(
      `Invalid ${field} ${show(value)}: expected ${expected}`,
      field,
    );
  }
  return new ValidationError(
    `Invalid ${field}: expected ${expected}, found ${describe(value)}`,
    field,
  );
}

/**
 * The object at `field`, after checking that it has no key outside
 * `known`: an unknown key is most often a typo of a known one.
 */
export function objectAt(
  value: unknown,
  field: string,
  known: readonly string[],
): ConfigObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(field === "" ? "config" : field, value, "an object");
  }
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      const path = keyPath(field, key);
      throw new ValidationError(
        `Unknown key ${path}: expected one of ${known.join(", ")}`,
        path,
      );
    }
  }
  return value as ConfigObject;
}

/** The value of an own key, or undefined when the key is absent. */
export function member(object: ConfigObject, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

/** Throws the error for a required key that is absent. */
export function missing(field: string): never {
  throw new ValidationError(`Missing required key ${field}`, field);
}

/** A whole number from `min` to `max`. */
export function wholeNumber(
  value: unknown,
  field: string,
  min: number,
  max: number,
): number {
  if (!isWholeIn(value, min, max)) {
    throw invalid(field, value, `a whole number from ${min} to ${max}`);
  }
  return value;
}

/** An optional whole number at `parent`.`key`; undefined when absent. */
export function optionalWhole(
  object: ConfigObject,
  parent: string,
  key: string,
  min: number,
  max: number,
): number | undefined {
  const value = member(object, key);
  if (value === undefined) return undefined;
  return wholeNumber(value, keyPath(parent, key), min, max);
}

/** true or false. */
export function booleanAt(value: unknown, field: string): boolean {
  if (typeof value !== "boolean") throw invalid(field, value, "true or false");
  return value;
}

/** A string that is not empty; `what` says what it names. */
export function nonEmptyString(
  value: unknown,
  field: string,
  what: string,
): string {
  if (typeof value !== "string" || value === "") {
    throw invalid(field, value, what);
  }
  return value;
}

/** One of a few strings. */
export function oneOf<T extends string>(
  value: unknown,
  field: string,
  choices: readonly T[],
): T {
  if (typeof value !== "string" || !choices.includes(value as T)) {
    const quoted = choices.map((c) => JSON.stringify(c));
    const last = quoted.pop() ?? "";
    const expected =
      quoted.length > 0 ? `${quoted.join(", ")} or ${last}` : last;
    throw invalid(field, value, expected);
  }
  return value as T;
}

/** An array; `what` describes it for the message ("an array of globs"). */
export function arrayAt(
  value: unknown,
  field: string,
  what: string,
): readonly unknown[] {
  if (!Array.isArray(value)) throw invalid(field, value, what);
  return value as readonly unknown[];
}

/**
 * A file path or glob, made absolute against `baseDir` when it is
 * relative. The text is kept otherwise as written: a glob's `*`, `?`,
 * `[...]`, `**` and `{a,b}` are not expanded here.
 */
export function pathAt(
  value: unknown,
  field: string,
  baseDir: string,
  what: string,
): string {
  const text = nonEmptyString(value, field, what);
  return isAbsolute(text) ? text : resolve(baseDir, text);
}

/** A scalar as shown in a message: strings quoted, cut when long. */
export function show(value: string | number | boolean | null): string {
  const text =
    typeof value === "string" ? JSON.stringify(value) : String(value);
  if (text.length <= MAX_SHOWN_CHARS) return text;
  return `${text.slice(0, MAX_SHOWN_CHARS - 1)}…`;
}

function isScalar(value: unknown): value is string | number | boolean | null {
  const type = typeof value;
  return (
    value === null ||
    type === "string" ||
    type === "number" ||
    type === "boolean"
  );
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (value === undefined) return "nothing";
  const type = typeof value;
  return type === "object" ? "an object" : `a ${type}`;
}
