/**
 * The process backend when the control connection to a job's shim fails
 * right after the shim started the job. Seen on a loaded machine: a job
 * that exits at once, and the daemon (or the shim) held up for longer
 * than the shim waits for a daemon, so the shim has recorded the exit
 * and gone before the daemon could talk to it. The job's exit file then
 * tells how it ended; without one the job must not run on unseen.
 *
 * Real shims and real processes; only the connection is made to fail,
 * through the backend's `connect` seam, after the real condition.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";

import { ProcessBackend } from "../../src/host/backends/process.js";
import { Host } from "../../src/host/host.js";
import { PortPool } from "../../src/host/ports.js";
import { EXIT_FILE } from "../../src/host/shim/spec.js";
import { JOB_PID_FILE } from "../../src/host/statedir.js";
import { Context, MemoryLogger } from "../../src/log/index.js";
import { isAlive, tempDir, waitFor } from "../helpers.js";

const dir = tempDir("lorne-connect-");
after(() => dir.remove());

function hostWith(name: string, connect: () => Promise<never>) {
  const stateDir = join(dir.path, name);
  const logger = new MemoryLogger();
  const host = new Host({
    id: "h",
    stateDir,
    backend: new ProcessBackend({ stateDir, spareShim: false, connect }),
    ports: new PortPool({ range: { min: 64350, max: 64359 } }),
    log: new Context({ logger }),
  });
  return { host, logger, stateDir };
}

test("process connect: a job that ended before the daemon could talk to its shim ends with its real exit and output", async () => {
  let jobDir = "";
  const { host, logger, stateDir } = hostWith("ended", async () => {
    // The shim has recorded the exit (and would now leave).
    await waitFor(
      () => existsSync(join(jobDir, EXIT_FILE)),
      "the shim to record the exit",
    );
    throw new Error("Cannot talk to the job's shim: it closed the connection");
  });
  try {
    jobDir = join(stateDir, "jobs", "fast");
    const started = await host.create({
      id: "fast",
      config: { cmd: ["sh", "-c", "echo hi; echo oops >&2; exit 3"] },
    });
    assert.notEqual(started.status, "failed", started.error ?? "");
    const ended = await host.ended("fast");
    assert.equal(ended.status, "crashed");
    assert.equal(ended.exit_status, 3);
    assert.equal(ended.error, null);
    // The daemon's view of the output covers all of it.
    assert.deepEqual(host.output("fast").position(), {
      stdout: 3,
      stderr: 5,
      index: 10,
    });
    assert.equal(readFileSync(join(jobDir, "stdout.log"), "utf8"), "hi\n");
    assert.ok(
      logger.lines().some((l) => l.includes("at=shim_gone_after_exit")),
      logger.lines().join("\n"),
    );
  } finally {
    await host.close();
  }
});

test("process connect: a job still running when the connection fails is killed and the start fails", async () => {
  let jobDir = "";
  const { host, stateDir } = hostWith("running", async () => {
    await waitFor(
      () => existsSync(join(jobDir, JOB_PID_FILE)),
      "the shim to write the job's pid",
    );
    throw new Error("Cannot talk to the job's shim: no hello");
  });
  try {
    jobDir = join(stateDir, "jobs", "slow");
    const job = await host.create({
      id: "slow",
      config: { cmd: ["sleep", "300"] },
    });
    assert.equal(job.status, "failed");
    assert.equal(job.error, "Cannot talk to the job's shim: no hello");
    const pid = Number(readFileSync(join(jobDir, JOB_PID_FILE), "utf8"));
    assert.ok(pid > 0);
    await waitFor(() => !isAlive(pid), `the job's process ${pid} to be killed`);
  } finally {
    await host.close();
  }
});
