/**
 * TTY jobs of the process backend (shim/pty.ts): everything a job writes
 * to its terminal reaches its output, even what it writes just before it
 * exits, and the master side is read dry when its stream ends early.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { Context, MemoryLogger } from "../../src/log/index.js";
import { JobOutput } from "../../src/host/output.js";
import { drainOnEarlyEnd, startOnPty } from "../../src/host/shim/pty.js";
import { tempDir } from "../helpers.js";

const log = new Context({ logger: new MemoryLogger() });

// Runs `script` on a terminal; resolves with its output and exit status.
async function runOnPty(
  dir: string,
  script: string,
): Promise<{ text: string; exitStatus: number | null }> {
  const output = new JobOutput(dir);
  const job = await startOnPty(
    {
      argv: ["sh", "-c", script],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      tty: true,
      stdin: false,
      ttySize: { rows: 33, cols: 101 },
      output,
      log,
    },
    "sh",
    ["-c", script],
  );
  const exit = await job.exited;
  return {
    text: readFileSync(output.path("stdout"), "utf8"),
    exitStatus: exit.exitStatus,
  };
}

test("pty: what a job writes right before it exits arrives, run after run", async () => {
  // Seen in CI: the job's last lines, written by its shell after `stty`
  // ended, were lost about one run in forty under load.
  const dir = tempDir("lorne-pty-test-");
  try {
    for (let run = 0; run < 150; run++) {
      const result = await runOnPty(
        join(dir.path, String(run)),
        "stty size; test -t 0 && echo tty; echo end; exit 3",
      );
      assert.equal(result.text, "33 101\r\ntty\r\nend\r\n", `run ${run}`);
      assert.equal(result.exitStatus, 3);
    }
  } finally {
    dir.remove();
  }
});

// A stand-in for node-pty's master side: a real descriptor and an `end`.
class FakeMaster extends EventEmitter {
  constructor(readonly fd: unknown) {
    super();
  }
}

test("pty: an early end reads what is left on the descriptor", () => {
  const dir = tempDir("lorne-pty-drain-");
  try {
    const path = join(dir.path, "left");
    const left = Buffer.alloc(200_000, "x"); // more than one read
    writeFileSync(path, left);
    const fd = openSync(path, "r");
    const master = new FakeMaster(fd);
    const chunks: Buffer[] = [];
    drainOnEarlyEnd(master, (chunk) => chunks.push(Buffer.from(chunk)));
    assert.equal(chunks.length, 0, "nothing is read before the end");
    master.emit("end");
    closeSync(fd);
    assert.ok(chunks.length > 1);
    assert.deepEqual(Buffer.concat(chunks), left);
  } finally {
    dir.remove();
  }
});

test("pty: a descriptor that cannot be read ends the drain quietly", () => {
  const dir = tempDir("lorne-pty-drain-");
  try {
    // Open for writing only: a read fails (EBADF), as EIO does at the end.
    const fd = openSync(join(dir.path, "write-only"), "w");
    const chunks: Buffer[] = [];
    const unreadable = new FakeMaster(fd);
    drainOnEarlyEnd(unreadable, (chunk) => chunks.push(chunk));
    assert.doesNotThrow(() => unreadable.emit("end"));
    closeSync(fd);
    // Without a descriptor (another node-pty), nothing is drained.
    const none = new FakeMaster(undefined);
    drainOnEarlyEnd(none, (chunk) => chunks.push(chunk));
    none.emit("end");
    assert.deepEqual(chunks, []);
  } finally {
    dir.remove();
  }
});
