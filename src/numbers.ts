/**
 * The one test behind every "a whole number from min to max" check of
 * options, limits and config keys, and the one parser of such numbers
 * given as text (flags, config values).
 */
import { ValidationError } from "./errors.js";

/** Whether `value` is an integer from `min` to `max`, both included. */
export function isWholeIn(
  value: unknown,
  min: number,
  max: number,
): value is number {
  return (
    typeof value === "number" &&
    Number.isInteger(value) &&
    value >= min &&
    value <= max
  );
}

/**
 * `text` (digits only) as a whole number from `min` to `max`; else a
 * ValidationError on `field`: `Invalid SOURCE "TEXT": expected a whole
 * number [of UNIT] from MIN to MAX`.
 */
export function parseWhole(
  text: string,
  source: string,
  field: string,
  range: { min: number; max: number; unit?: string },
): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !isWholeIn(n, range.min, range.max)) {
    const what = range.unit === undefined ? "" : ` of ${range.unit}`;
    throw new ValidationError(
      `Invalid ${source} "${text}": expected a whole number${what} ` +
        `from ${range.min} to ${range.max}`,
      field,
    );
  }
  return n;
}
