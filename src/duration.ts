/**
 * Durations as flags and config files give them, and as messages print
 * them: whole numbers with units from the largest down (`500ms`, `60s`,
 * `1h30m`, `7d`, `1d12h`), or a bare `0`. The callers bound them and word
 * their own errors.
 */

/** Each unit's length in milliseconds, longest first. */
export const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  d: 86_400_000,
  h: 3_600_000,
  m: 60_000,
  s: 1_000,
  ms: 1,
};

const UNITS = Object.keys(DURATION_UNITS_MS);
const PART = /(\d{1,13})(ms|s|m|h|d)/y;

/**
 * `text` in milliseconds; NaN when it is not a duration: a part that is
 * not a whole number and a unit, units out of order or repeated (`1m1h`,
 * `1s1s`), or a total past Number.MAX_SAFE_INTEGER.
 */
export function durationMs(text: string): number {
  if (text === "0") return 0;
  if (text === "") return NaN;
  let total = 0;
  let lastUnit = -1;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const match = PART.exec(text);
    if (!match) return NaN;
    const unit = UNITS.indexOf(match[2] as string);
    if (unit <= lastUnit) return NaN;
    lastUnit = unit;
    total +=
      Number(match[1]) * (DURATION_UNITS_MS[match[2] as string] as number);
  }
  return Number.isSafeInteger(total) ? total : NaN;
}

/**
 * `ms` as durationMs reads it back, each unit from the largest down
 * (`1d`, `1m30s`, `90ms`); `0s` for none.
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  let rest = ms;
  let out = "";
  for (const unit of UNITS) {
    const size = DURATION_UNITS_MS[unit] as number;
    const count = Math.floor(rest / size);
    if (count > 0) out += `${count}${unit}`;
    rest -= count * size;
  }
  return out;
}
