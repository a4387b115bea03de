import assert from "node:assert/strict";
import { test } from "node:test";

import {
  exitFromCode,
  exitFromState,
  isRunning,
} from "../../src/host/backends/docker/exit.js";

const cases: [number | null, boolean, ReturnType<typeof exitFromCode>][] = [
  [0, false, { exitStatus: 0, signal: null, oomKilled: false }],
  [3, false, { exitStatus: 3, signal: null, oomKilled: false }],
  [127, false, { exitStatus: 127, signal: null, oomKilled: false }],
  [128, false, { exitStatus: 128, signal: null, oomKilled: false }],
  [137, false, { exitStatus: null, signal: "SIGKILL", oomKilled: false }],
  [137, true, { exitStatus: null, signal: "SIGKILL", oomKilled: true }],
  [143, false, { exitStatus: null, signal: "SIGTERM", oomKilled: false }],
  [130, false, { exitStatus: null, signal: "SIGINT", oomKilled: false }],
  [255, false, { exitStatus: 255, signal: null, oomKilled: false }],
  [null, false, { exitStatus: null, signal: null, oomKilled: false }],
];

for (const [code, oom, expected] of cases) {
  test(`docker exit: code ${code}${oom ? " with OOM" : ""} is read as ${JSON.stringify(expected)}`, () => {
    assert.deepEqual(exitFromCode(code, oom), expected);
  });
}

test("docker exit: inspect state maps the same way and knows running", () => {
  assert.deepEqual(exitFromState({ ExitCode: 137, OOMKilled: true }), {
    exitStatus: null,
    signal: "SIGKILL",
    oomKilled: true,
  });
  assert.equal(isRunning({ Running: true }), true);
  assert.equal(isRunning({ Restarting: true }), true);
  assert.equal(isRunning({ Running: false, Status: "exited" }), false);
});

test("docker exit: the engine's end time is kept, its zero time is not", () => {
  assert.deepEqual(
    exitFromState({ ExitCode: 3, FinishedAt: "2024-05-01T10:00:00.5Z" }),
    {
      exitStatus: 3,
      signal: null,
      oomKilled: false,
      endedAt: "2024-05-01T10:00:00.500Z",
    },
  );
  assert.equal(
    exitFromState({ ExitCode: 0, FinishedAt: "0001-01-01T00:00:00Z" }).endedAt,
    undefined,
  );
});
