/**
 * Reading data that callers hand to the logging API. Such data is not to be
 * trusted to behave: it may be null, a primitive, a revoked Proxy or an
 * object whose getters throw. Everything here reads it without throwing.
 * Only own enumerable string keys count, everywhere in `log`: inherited
 * keys and symbols are never logged.
 */
import type { Data } from "./types.js";

/** What a value that cannot be read is logged as. */
export const THROWS = "[Throws]";

/**
 * The own enumerable string keys of `data`, or none when `data` is not an
 * object or refuses to list its keys (a revoked Proxy).
 */
export function ownKeys(data: unknown): string[] {
  if (!isObject(data)) return [];
  try {
    return Object.keys(data);
  } catch {
    return [];
  }
}

/** `data[key]`, or "[Throws]" when reading it throws. */
export function readField(data: object, key: string): unknown {
  try {
    return (data as Data)[key];
  } catch {
    return THROWS;
  }
}

/**
 * A new record with the keys of each of `records` in turn, each value read
 * once; a later record's key replaces an earlier one's value in place.
 * Records that are not objects add nothing. Never throws.
 */
export function copyData(...records: unknown[]): Data {
  const out: Data = {};
  for (const record of records) {
    for (const key of ownKeys(record)) {
      setKey(out, key, readField(record as object, key));
    }
  }
  return out;
}

/** True for objects and functions: values that may hold keys. */
export function isObject(value: unknown): value is object {
  return (
    (typeof value === "object" && value !== null) || typeof value === "function"
  );
}

/** A key given as any value, as text; never throws. */
export function keyText(key: unknown): string {
  if (typeof key === "string") return key;
  try {
    return String(key);
  } catch {
    return THROWS;
  }
}

/** Assigns without the `__proto__` setter turning the key into a prototype. */
export function setKey<T>(
  record: Record<string, T>,
  key: string,
  value: NoInfer<T>,
): void {
  if (key === "__proto__") {
    Object.defineProperty(record, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    record[key] = value;
  }
}
