/**
 * `parseDuration`, the parser behind `--reconnect-timeout` and
 * `--ended-retention`: the units it takes, its bound, and the error naming
 * the flag (or config key) for everything else.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import fc from "fast-check";

import { parseDuration } from "../../src/cli/options.js";
import { durationMs, formatDuration } from "../../src/duration.js";
import { ValidationError } from "../../src/errors.js";
import { MAX_MS } from "../../src/timers.js";

const good: [string, number][] = [
  ["0", 0],
  ["0s", 0],
  ["500ms", 500],
  ["60s", 60_000],
  ["5m", 300_000],
  ["1h", 3_600_000],
  ["1d", 86_400_000],
  ["24d", 2_073_600_000],
  ["1h30m", 5_400_000],
  ["1d12h", 129_600_000],
  ["1m30s500ms", 90_500],
  ["0h0m5s", 5_000],
  [`${MAX_MS}ms`, MAX_MS],
];

const bad = [
  "",
  "60",
  "1.5s",
  "-1s",
  "5 s",
  "1w",
  "25d",
  "s",
  `${MAX_MS + 1}ms`,
  "600h",
  "1m1h",
  "1s1s",
  "1h 30m",
  "1h30",
  "30m1h",
];

test("duration: whole numbers with ms, s, m, h or d, largest unit first, and a bare 0", () => {
  for (const [text, ms] of good) {
    assert.equal(parseDuration(text, "--reconnect-timeout"), ms, text);
  }
});

test("duration: anything else is a validation error naming the flag", () => {
  for (const text of bad) {
    assert.throws(
      () => parseDuration(text, "--reconnect-timeout"),
      (err: unknown) => {
        assert.ok(err instanceof ValidationError, text);
        assert.equal(err.field, "reconnect-timeout");
        assert.equal(
          err.message,
          `Invalid --reconnect-timeout "${text}": expected a duration ` +
            `such as 500ms, 60s, 1h30m or 7d, at most 24d20h31m23s647ms`,
        );
        return true;
      },
    );
  }
});

test("duration: a larger bound for settings that are no timer, named in its unit", () => {
  const tenYearsMs = 3650 * 86_400_000;
  assert.equal(
    parseDuration("3650d", "--ended-retention", tenYearsMs),
    tenYearsMs,
  );
  assert.equal(
    parseDuration("7d", "--ended-retention", tenYearsMs),
    604_800_000,
  );
  const cases: [string, string, string][] = [
    ["3651d", "--ended-retention", "ended-retention"],
    ["1y", "config ended_retention", "ended_retention"],
  ];
  for (const [text, flag, field] of cases) {
    assert.throws(
      () => parseDuration(text, flag, tenYearsMs),
      (err: unknown) => {
        assert.ok(err instanceof ValidationError, text);
        assert.equal(err.field, field);
        assert.equal(
          err.message,
          `Invalid ${flag} "${text}": expected a duration such as 500ms, ` +
            "60s, 1h30m or 7d, at most 3650d",
        );
        return true;
      },
    );
  }
});

test("duration: what formatDuration prints reads back as the same duration", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (ms) => {
      assert.equal(durationMs(formatDuration(ms)), ms);
    }),
  );
  assert.deepEqual([0, 90, 90_000, 5_400_000, 86_400_000].map(formatDuration), [
    "0s",
    "90ms",
    "1m30s",
    "1h30m",
    "1d",
  ]);
});
