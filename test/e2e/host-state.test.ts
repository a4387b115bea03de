/**
 * End to end: `lorne host`'s state file. A daemon killed with SIGKILL and
 * started again on the same state dir lists its jobs, keeps the ports of
 * the job still running held, and numbers events on; a damaged state file
 * stops the daemon with its path and is left as it was; `--state-store
 * memory` writes no file and forgets.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { HostClient } from "../../src/host/client.js";
import type { JobRecord } from "../../src/host/job.js";
import {
  isAlive,
  startDaemon,
  tempDir,
  waitFor,
  type DaemonProcess,
} from "../helpers.js";

const PORTS = ["--ports", "64320-64329"];

test("state: a daemon killed and started again lists its jobs and keeps a running job's ports", async () => {
  const daemons: DaemonProcess[] = [await startDaemon(PORTS)];
  const first = daemons[0] as DaemonProcess;
  let sleeper: JobRecord | undefined;
  try {
    let client = new HostClient(first);
    await client.createJob({ id: "quick", config: { cmd: ["true"] } });
    await waitFor(
      async () => (await client.getJob("quick")).status === "done",
      "quick to end",
    );
    sleeper = await client.createJob({
      id: "sleeper",
      config: { cmd: ["sleep", "60"], tcp_ports: 2 },
    });
    assert.deepEqual(sleeper.ports, [64320, 64321]);
    const before = await client.listJobs();
    first.child.kill("SIGKILL");
    await first.exited;

    const second = await startDaemon(PORTS, { stateDir: first.stateDir });
    daemons.push(second);
    client = new HostClient(second);
    // The record stays as it was; deciding it is recovery's part.
    assert.deepEqual(await client.listJobs(), before);
    assert.equal((await client.host()).ports.used, 2);
    const next = await client.createJob({
      id: "next",
      config: { cmd: ["sleep", "60"], tcp_ports: 2 },
    });
    assert.deepEqual(next.ports, [64322, 64323]);
    // Events 1-5 came from the first daemon; "next" continues at 6.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 10_000);
    const seen: [number, string, string][] = [];
    for await (const e of client.events({ after: 0, signal: abort.signal })) {
      seen.push([e.id, e.event, e.job_id]);
      if (e.job_id === "next" && e.event === "start") break;
    }
    clearTimeout(timer);
    abort.abort();
    assert.deepEqual(seen, [
      [1, "create", "quick"],
      [2, "start", "quick"],
      [3, "stop", "quick"],
      [4, "create", "sleeper"],
      [5, "start", "sleeper"],
      [6, "create", "next"],
      [7, "start", "next"],
    ]);
    assert.equal(await second.stop(), 0);
  } finally {
    await Promise.all(daemons.map((d) => d.stop()));
    // The job the killed daemon left: its process group, by its pid.
    const pid = sleeper?.pid;
    if (pid && isAlive(pid)) process.kill(-pid, "SIGKILL");
  }
});

test("state: a damaged state file stops the daemon with its path and is kept", async () => {
  const state = tempDir("lorne-state-");
  try {
    const path = join(state.path, "host.db");
    const garbage = Buffer.from(
      "not a database, but somebody's data\n".repeat(200),
    );
    writeFileSync(path, garbage);
    await assert.rejects(
      startDaemon(PORTS, { stateDir: state.path }),
      (err: Error) =>
        err.message.startsWith(
          `lorne host exited 1: lorne host: Cannot open host state "${path}": it is not an SQLite database\n`,
        ),
    );
    assert.deepEqual(readFileSync(path), garbage);
    // The lock went with the daemon.
    assert.equal(existsSync(join(state.path, "host.pid")), false);
  } finally {
    state.remove();
  }
});

test("state: --state-store memory writes no state file and forgets on restart", async () => {
  const first = await startDaemon([...PORTS, "--state-store", "memory"]);
  let second: DaemonProcess | undefined;
  try {
    await new HostClient(first).createJob({
      config: { cmd: ["true"] },
    });
    assert.equal(await first.stop(), 0);
    assert.equal(existsSync(join(first.stateDir, "host.db")), false);
    second = await startDaemon([...PORTS, "--state-store", "memory"], {
      stateDir: first.stateDir,
    });
    assert.deepEqual(await new HostClient(second).listJobs(), []);
  } finally {
    await first.stop();
    await second?.stop();
  }
});
