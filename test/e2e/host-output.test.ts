/**
 * End to end: a job's captured output through the logs API on the process
 * backend. Each stream's view, the interleaved view rebuilt from the chunk
 * index, a large followed log, and the fallback to Node's pipes when the
 * capture sockets cannot be made.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { test } from "node:test";

import { HostClient } from "../../src/host/client.js";
import type { JobRecord } from "../../src/host/job.js";
import {
  readText,
  startDaemon,
  tempDir,
  useDaemon,
  waitFor,
} from "../helpers.js";

// 300 lines on each stream, alternating.
const ALTERNATING =
  "i=1; while [ $i -le 300 ]; do echo out $i; echo err $i >&2; i=$((i+1)); done";

let client: HostClient;
useDaemon(["--grace-ms", "500"], (_d, c) => (client = c));

function lines(prefix: string, count: number): string {
  return Array.from({ length: count }, (_, i) => `${prefix} ${i + 1}\n`).join(
    "",
  );
}

async function ended(c: HostClient, id: string): Promise<JobRecord> {
  return waitFor(async () => {
    const job = await c.getJob(id);
    return job.status !== "running" && job.status !== "starting" && job;
  }, `job ${id} to end`);
}

// Checks the three views of ALTERNATING's output.
async function assertViews(c: HostClient, id: string): Promise<void> {
  assert.equal(
    await readText(c.logs(id, { stream: "stdout" })),
    lines("out", 300),
  );
  assert.equal(
    await readText(c.logs(id, { stream: "stderr" })),
    lines("err", 300),
  );
  const all = await readText(c.logs(id));
  assert.equal(all.length, 2 * lines("out", 300).length);
  // Whatever the interleaving, each stream keeps its own order in it.
  const pick = (prefix: string) =>
    all
      .split(/(?<=\n)/)
      .filter((l) => l.startsWith(prefix))
      .join("");
  assert.equal(pick("out "), lines("out", 300));
  assert.equal(pick("err "), lines("err", 300));
}

test("output: stdout, stderr and the interleaved view of alternating writes", async () => {
  const job = await client.createJob({
    config: { cmd: ["sh", "-c", ALTERNATING] },
  });
  assert.equal((await ended(client, job.id)).status, "done");
  await assertViews(client, job.id);
});

test("output: a followed log of 39 MB arrives intact", async () => {
  const job = await client.createJob({
    config: { cmd: ["sh", "-c", "seq 1 5000000; echo end >&2"] },
  });
  const expected = createHash("sha256");
  let expectedBytes = 0;
  for (let i = 1; i <= 5_000_000; i += 100_000) {
    let block = "";
    for (let n = i; n < i + 100_000; n++) block += `${n}\n`;
    expected.update(block);
    expectedBytes += block.length;
  }
  expected.update("end\n");
  expectedBytes += 4;
  const got = createHash("sha256");
  let bytes = 0;
  for await (const chunk of client.logs(job.id, { follow: true })) {
    got.update(chunk);
    bytes += chunk.length;
  }
  assert.equal(expectedBytes, 38_888_900);
  assert.equal(bytes, expectedBytes);
  assert.equal(got.digest("hex"), expected.digest("hex"));
  assert.equal((await client.getJob(job.id)).status, "done");
});

test("output: without a usable temp dir the host reads through Node's pipes", async () => {
  const tmp = tempDir("lorne-no-tmp-");
  const fallback = await startDaemon([], {
    env: { ...process.env, TMPDIR: join(tmp.path, "missing") },
  });
  try {
    const c = new HostClient(fallback);
    const job = await c.createJob({
      config: { cmd: ["sh", "-c", ALTERNATING] },
    });
    assert.equal((await ended(c, job.id)).status, "done");
    await assertViews(c, job.id);
    // The daemon's log is flushed in batches.
    await waitFor(
      () =>
        fallback.lines.some((l) =>
          /at=capture_fallback err=.*ENOENT.* resolution="node pipes"/.test(l),
        ),
      "the fallback logged",
    );
  } finally {
    assert.equal(await fallback.stop(), 0);
    tmp.remove();
  }
});
