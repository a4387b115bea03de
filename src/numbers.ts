/**
 * The one test behind every "a whole number from min to max" check of
 * options, limits and config keys; each caller words its own error.
 */

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
