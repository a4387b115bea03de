/**
 * Durations as flags and config files give them: a whole number and a
 * unit (`500ms`, `60s`, `5m`, `24h`, `7d`), or a bare `0`. The callers
 * bound them and word their own errors.
 */

/** Each unit's length in milliseconds, shortest first. */
export const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** `text` in milliseconds; NaN when it is not a duration. */
export function durationMs(text: string): number {
  if (text === "0") return 0;
  const match = /^(\d{1,13})(ms|s|m|h|d)$/.exec(text);
  if (!match) return NaN;
  return Number(match[1]) * (DURATION_UNITS_MS[match[2] as string] as number);
}
