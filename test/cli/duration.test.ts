/**
 * `parseDuration`, the parser behind `--reconnect-timeout`: the units it
 * takes, and the error naming the flag for everything else.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { parseDuration } from "../../src/cli/options.js";
import { ValidationError } from "../../src/errors.js";
import { MAX_MS } from "../../src/timers.js";

const good: [string, number][] = [
  ["0", 0],
  ["0s", 0],
  ["500ms", 500],
  ["60s", 60_000],
  ["5m", 300_000],
  ["1h", 3_600_000],
  [`${MAX_MS}ms`, MAX_MS],
];

const bad = [
  "",
  "60",
  "1.5s",
  "-1s",
  "5 s",
  "1d",
  "s",
  `${MAX_MS + 1}ms`,
  "600h",
];

test("duration: whole numbers with ms, s, m or h, and a bare 0", () => {
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
            `such as 500ms, 60s or 5m, at most ${MAX_MS}ms`,
        );
        return true;
      },
    );
  }
});
