import assert from "node:assert/strict";
import { test } from "node:test";

import { startDaemon, waitFor } from "../helpers.js";

// Node's default for SIGUSR1 opens its debugger, which would let any local
// user run code inside the daemon that runs jobs.
test("host: SIGUSR1 is logged and opens no debugger; SIGTERM still exits 0", async () => {
  const daemon = await startDaemon();
  let stderr = "";
  daemon.child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  daemon.child.kill("SIGUSR1");
  await waitFor(
    () => daemon.lines.some((l) => l.includes("at=signal signal=SIGUSR1")),
    "the SIGUSR1 log line",
  );
  assert.doesNotMatch(stderr, /Debugger/);
  assert.equal(await daemon.stop(), 0);
});
