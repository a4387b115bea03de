import assert from "node:assert/strict";
import { test } from "node:test";

import { HostClient } from "../../src/host/client.js";
import { isAlive, startDaemon, waitFor } from "../helpers.js";

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

// A closed terminal (the README's foreground `npm start`) or a stray
// `kill -HUP` must not leave jobs with nobody in charge.
test("host: SIGHUP stops every job and exits 0, like SIGTERM", async () => {
  const daemon = await startDaemon();
  const client = new HostClient(daemon);
  const job = await client.createJob({
    id: "sleeper",
    config: { cmd: ["sleep", "60"] },
  });
  const pid = job.pid as number;
  try {
    daemon.child.kill("SIGHUP");
    assert.equal(await daemon.exited, 0);
    assert.ok(daemon.lines.some((l) => l.includes("at=signal signal=SIGHUP")));
    assert.ok(daemon.lines.some((l) => l.includes("at=shutdown")));
    assert.ok(daemon.lines.some((l) => l.includes("at=stopped")));
    assert.equal(isAlive(pid), false);
  } finally {
    if (isAlive(pid)) process.kill(-pid, "SIGKILL");
  }
});
