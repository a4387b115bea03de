/**
 * The built-in functions templates may call, with Go's semantics: `index`,
 * `len`, `not`, `and`, `or`, `eq` and `ne`. Arguments arrive as thunks so
 * that `and` and `or` can stop early, as they do since Go 1.18.
 */
import { TemplateFailure } from "./errors.js";
import { TemplateMap, describeValue, isArray, isTruthy } from "./values.js";
import type { TemplateValue } from "./values.js";

export type Thunk = () => TemplateValue;

export interface Builtin {
  readonly minArgs: number;
  readonly maxArgs: number;
  call(args: readonly Thunk[]): TemplateValue;
}

/** The functions by name; the parser rejects any other name. */
export const BUILTINS: ReadonlyMap<string, Builtin> = new Map([
  ["index", { minArgs: 1, maxArgs: Infinity, call: callIndex }],
  ["len", { minArgs: 1, maxArgs: 1, call: callLen }],
  ["not", { minArgs: 1, maxArgs: 1, call: callNot }],
  ["and", { minArgs: 1, maxArgs: Infinity, call: callAnd }],
  ["or", { minArgs: 1, maxArgs: Infinity, call: callOr }],
  ["eq", { minArgs: 2, maxArgs: Infinity, call: callEq }],
  ["ne", { minArgs: 2, maxArgs: 2, call: callNe }],
]);

/** The arity error for `name`, or undefined when `count` args are fine. */
export function arityProblem(
  name: string,
  builtin: Builtin,
  count: number,
): string | undefined {
  if (count >= builtin.minArgs && count <= builtin.maxArgs) return undefined;
  const want =
    builtin.minArgs === builtin.maxArgs
      ? `${builtin.minArgs}`
      : `at least ${builtin.minArgs}`;
  return `wrong number of arguments for ${name}: want ${want}, got ${count}`;
}

/** `index x 1 2` is x[1][2]; a byte of a string, as in Go, is a number. */
function callIndex(args: readonly Thunk[]): TemplateValue {
  const [first, ...keys] = args.map((arg) => arg());
  let value = first as TemplateValue;
  for (const key of keys) {
    if (value instanceof TemplateMap) {
      if (typeof key !== "string") {
        throw new TemplateFailure(
          `cannot index a map with ${describeValue(key)}`,
        );
      }
      value = value.get(key);
      continue;
    }
    const items = isArray(value)
      ? value
      : typeof value === "string"
        ? [...Buffer.from(value)]
        : undefined;
    if (items === undefined) {
      throw new TemplateFailure(`cannot index ${describeValue(value)}`);
    }
    if (typeof key !== "number" || !Number.isInteger(key)) {
      throw new TemplateFailure(
        `cannot index ${describeValue(value)} with ${describeValue(key)}`,
      );
    }
    const item = items[key];
    if (key < 0 || item === undefined) {
      throw new TemplateFailure(
        `index out of range: ${key} (length ${items.length})`,
      );
    }
    value = item;
  }
  return value;
}

/** Length in bytes for strings (as Go counts), items for arrays and maps. */
function callLen([arg]: readonly Thunk[]): TemplateValue {
  const value = (arg as Thunk)();
  if (typeof value === "string") return Buffer.byteLength(value);
  if (isArray(value)) return value.length;
  if (value instanceof TemplateMap) return value.entries.size;
  throw new TemplateFailure(
    `cannot take the length of ${describeValue(value)}`,
  );
}

function callNot([arg]: readonly Thunk[]): TemplateValue {
  return !isTruthy((arg as Thunk)());
}

/** The first false argument, or the last one; later ones are not read. */
function callAnd(args: readonly Thunk[]): TemplateValue {
  let value: TemplateValue = true;
  for (const arg of args) {
    value = arg();
    if (!isTruthy(value)) return value;
  }
  return value;
}

/** The first true argument, or the last one; later ones are not read. */
function callOr(args: readonly Thunk[]): TemplateValue {
  let value: TemplateValue = false;
  for (const arg of args) {
    value = arg();
    if (isTruthy(value)) return value;
  }
  return value;
}

/** `eq a b c` is a == b || a == c, for booleans, numbers and strings. */
function callEq(args: readonly Thunk[]): TemplateValue {
  const [first, ...others] = args.map((arg) => arg());
  return others.some((other) => equal(first as TemplateValue, other));
}

function callNe(args: readonly Thunk[]): TemplateValue {
  return !(callEq(args) as boolean);
}

function equal(a: TemplateValue, b: TemplateValue): boolean {
  for (const value of [a, b]) {
    if (!["string", "number", "boolean"].includes(typeof value)) {
      throw new TemplateFailure(`cannot compare ${describeValue(value)}`);
    }
  }
  if (typeof a !== typeof b) {
    throw new TemplateFailure(
      `cannot compare ${describeValue(a)} with ${describeValue(b)}`,
    );
  }
  return a === b;
}
