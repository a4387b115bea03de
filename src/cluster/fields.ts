/**
 * Checks on the fields of a value read from etcd or submitted to the
 * cluster, which records.ts builds its parsers from. Each check returns
 * the value with its type narrowed, or throws a ValidationError that
 * names the field, says what it must be and shows what it was.
 */
import { ValidationError } from "../errors.js";
import { validateJobId } from "../host/job.js";
import { isWholeIn } from "../numbers.js";

/** Parses JSON text that must hold an object. */
export function parseObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ValidationError("Invalid value: not JSON", "value");
  }
  return expectObject(value, "value");
}

/** An object, not null and not an array. */
export function expectObject(
  value: unknown,
  field: string,
): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(field, "an object", value);
  }
  return value as Record<string, unknown>;
}

/** An object whose every value is a string, copied. */
export function expectStringMap(
  value: unknown,
  field: string,
): Record<string, string> {
  const o = expectObject(value, field);
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(o)) {
    if (typeof item !== "string") {
      throw invalid(`${field}.${key}`, "a string", item);
    }
    Object.defineProperty(out, key, {
      value: item,
      enumerable: true,
      writable: true,
      configurable: true,
    }); // "__proto__" stays data
  }
  return out;
}

/** A non-empty string. */
export function expectString(value: unknown, field: string): string {
  if (typeof value !== "string" || value === "") {
    throw invalid(field, "a non-empty string", value);
  }
  return value;
}

/** An etcd lease id, as etcd3 gives it: decimal digits. */
export function expectLease(value: unknown, field: string): string {
  if (typeof value !== "string" || !/^\d{1,20}$/.test(value)) {
    throw invalid(field, "a lease id (decimal digits)", value);
  }
  return value;
}

/** An id, by the job id rules; the error names it after `field`. */
export function expectId(value: unknown, field: string): string {
  return validateJobId(value, field, field.replace(/_/g, " "));
}

/** A whole number from `min` (1 unless given). */
export function expectCount(value: unknown, field: string, min = 1): number {
  if (!isWholeIn(value, min, Number.MAX_SAFE_INTEGER)) {
    throw invalid(field, `a whole number from ${min}`, value);
  }
  return value;
}

/** A safe integer, negative or not. */
export function expectInteger(value: unknown, field: string): number {
  if (!Number.isSafeInteger(value)) throw invalid(field, "an integer", value);
  return value as number;
}

/** One of the `allowed` strings. */
export function expectOneOf<T extends string>(
  value: unknown,
  field: string,
  allowed: readonly T[],
): T {
  if (typeof value !== "string" || !allowed.includes(value as T)) {
    throw invalid(field, `one of ${allowed.join(", ")}`, value);
  }
  return value as T;
}

/** The error for a field that is not what it must be. */
export function invalid(
  field: string,
  expected: string,
  value: unknown,
): ValidationError {
  const got =
    value === undefined
      ? "nothing"
      : typeof value === "string"
        ? JSON.stringify(value.slice(0, 64))
        : Array.isArray(value)
          ? "an array"
          : value === null
            ? "null"
            : typeof value === "object"
              ? "an object"
              : typeof value === "number" || typeof value === "boolean"
                ? JSON.stringify(value)
                : `a ${typeof value}`;
  return new ValidationError(
    `Invalid ${field}: must be ${expected}, got ${got}`,
    field,
  );
}
