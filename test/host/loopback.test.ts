import assert from "node:assert/strict";
import { test } from "node:test";

import { isLoopback } from "../../src/host/loopback.js";

test("loopback: only addresses this machine alone can reach count", () => {
  const cases: [string, boolean][] = [
    ["127.0.0.1", true],
    ["127.1.2.3", true],
    ["localhost", true],
    ["LOCALHOST", true],
    ["::1", true],
    ["0:0:0:0:0:0:0:1", true],
    ["::ffff:127.0.0.1", true],
    ["0.0.0.0", false],
    ["::", false],
    ["10.0.0.1", false],
    ["128.0.0.1", false],
    ["::2", false],
    ["::ffff:10.0.0.1", false],
    ["fe80::1", false],
    ["example.com", false],
    ["", false],
  ];
  for (const [address, expected] of cases) {
    assert.equal(isLoopback(address), expected, address);
  }
});
