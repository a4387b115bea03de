/**
 * The rotation matrix: a real Shipper tails real files while they are
 * renamed, copied and truncated, truncated in place, deleted and created
 * again, reached through a symlink, or cut mid-line across a restart; a
 * real receiver on 127.0.0.1 gets every line exactly once (no batch here is
 * left unacked, so a duplicate would be a bug).
 */
import assert from "node:assert/strict";
import {
  appendFileSync,
  closeSync,
  copyFileSync,
  mkdirSync,
  openSync,
  renameSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { statIdentity } from "../../src/ship/identity.js";
import { tempDir, waitFor } from "../helpers.js";
import {
  expectExactly,
  runShipper,
  savedEntries,
  shipConfig,
  startGatedReceiver,
  waitForLines,
  waitForLog,
  type GatedReceiver,
  type RunningShipper,
} from "./harness.js";

interface Setup {
  dir: string;
  logs: string;
  received: GatedReceiver;
  /** Starts a shipper on `files` (globs relative to `logs`). */
  run(
    globs: string[],
    extra?: Record<string, unknown>,
  ): Promise<RunningShipper>;
  statePath: string;
  /** Runs `cleanup` when the test ends, before the receiver closes. */
  defer(cleanup: () => unknown): void;
}

async function setup(t: TestContext): Promise<Setup> {
  const dir = tempDir("lorne-rotate-");
  const logs = join(dir.path, "logs");
  mkdirSync(logs);
  const received = await startGatedReceiver();
  const cleanups: (() => unknown)[] = [dir.remove, () => received.close()];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  return {
    dir: dir.path,
    logs,
    received,
    statePath: join(dir.path, "state.db"),
    defer: (cleanup) => cleanups.push(cleanup),
    run: async (globs, extra = {}) => {
      const files = [{ paths: globs.map((g) => join(logs, g)) }];
      const running = await runShipper(
        shipConfig(dir.path, received.port, extra, files),
      );
      cleanups.push(() => running.close());
      return running;
    },
  };
}

async function keyOf(path: string): Promise<string> {
  const found = await statIdentity(path);
  assert.ok(found, `${path} exists`);
  return found.identity.key;
}

for (const glob of ["app.log", "app.log*"]) {
  test(`rotation: rename and create under glob ${glob}: late writes to the renamed file arrive`, async (t) => {
    const s = await setup(t);
    const path = join(s.logs, "app.log");
    // The application's descriptor: it keeps writing to the renamed file.
    const app = openSync(path, "a");
    s.defer(() => closeSync(app));
    writeSync(app, "old 1\nold 2\n");
    const { shipper } = await s.run([glob]);
    await waitForLines(s.received, ["old 1", "old 2"]);
    const oldKey = await keyOf(path);

    renameSync(path, `${path}.1`);
    writeSync(app, "old 3 right after the rename\n");
    writeFileSync(path, "new 1\n");
    const newKey = await keyOf(path);
    // A refresh has run since the rename once it knows the new file.
    await waitFor(() => shipper.table.get(newKey), "the new file");
    writeSync(app, "old 4 after a refresh saw the rename\n");
    appendFileSync(path, "new 2\n");

    await expectExactly(s.received, shipper, [
      "old 1",
      "old 2",
      "old 3 right after the rename",
      "old 4 after a refresh saw the rename",
      "new 1",
      "new 2",
    ]);
    if (glob === "app.log*") {
      assert.equal(shipper.table.get(oldKey)?.path, `${path}.1`);
    }
  });
}

test("rotation: copytruncate: the copy resumes where the original was read to; the original starts again", async (t) => {
  const s = await setup(t);
  const path = join(s.logs, "app.log");
  const copy = `${path}.1`;
  writeFileSync(path, "line 1\n");
  const { shipper, logs } = await s.run(["app.log*"]);
  await waitForLines(s.received, ["line 1"]);

  appendFileSync(path, "line 2 written just before the copy\n");
  copyFileSync(path, copy);
  truncateSync(path, 0);
  appendFileSync(
    path,
    "line 3 written after the truncation, past the offset\n",
  );
  await waitForLog(logs, { at: "truncated", "file.path": path });
  appendFileSync(copy, "line 4 appended to the copy\n");

  await expectExactly(s.received, shipper, [
    "line 1",
    "line 2 written just before the copy",
    "line 3 written after the truncation, past the offset",
    "line 4 appended to the copy",
  ]);
  await waitForLog(logs, { at: "open", "file.path": copy, from: "copy" });
});

test("rotation: copytruncate seen in steps: the copy waits for the truncation, then resumes", async (t) => {
  const s = await setup(t);
  const path = join(s.logs, "app.log");
  const copy = `${path}.1`;
  writeFileSync(path, "line 1\n");
  const { shipper, logs } = await s.run(["app.log*"]);
  await waitForLines(s.received, ["line 1"]);
  appendFileSync(path, "line 2 read before the copy\n");
  await waitForLines(s.received, ["line 2 read before the copy"]);

  copyFileSync(path, copy);
  // The refresh that finds the marker has looked at the copy too.
  writeFileSync(`${path}.marker`, "marker\n");
  await waitForLines(s.received, ["marker"]);
  assert.equal(shipper.table.atPath(copy), undefined, "the copy waits");
  truncateSync(path, 0);
  appendFileSync(path, "line 3 after the truncation\n");
  await waitForLog(logs, { at: "open", "file.path": copy, from: "copy" });
  appendFileSync(copy, "line 4 appended to the copy\n");

  await expectExactly(s.received, shipper, [
    "line 1",
    "line 2 read before the copy",
    "marker",
    "line 3 after the truncation",
    "line 4 appended to the copy",
  ]);
});

test("rotation: truncate in place, then new lines shorter and longer than the old offset", async (t) => {
  const s = await setup(t);
  const path = join(s.logs, "app.log");
  writeFileSync(path, "first line before truncation\nsecond line\n");
  const { shipper, logs } = await s.run(["app.log"]);
  await waitForLines(s.received, ["first line before truncation"]);

  // 6 bytes where the offset was 41: the size gives the truncation away.
  truncateSync(path, 0);
  appendFileSync(path, "short\n");
  await waitForLines(s.received, ["short"]);

  // 60 bytes where the offset was 6: only the first bytes give it away.
  truncateSync(path, 0);
  appendFileSync(
    path,
    "a line after the second truncation, longer than the offset\n",
  );
  await expectExactly(s.received, shipper, [
    "first line before truncation",
    "second line",
    "short",
    "a line after the second truncation, longer than the offset",
  ]);
  const truncations = logs.records.filter((r) => r.at === "truncated");
  assert.deepEqual(
    truncations.map((r) => r.offset),
    [41, 6],
  );
});

test("rotation: truncate and rewrite to the same size is read again", async (t) => {
  const s = await setup(t);
  const path = join(s.logs, "app.log");
  writeFileSync(path, "before 1\n");
  const { shipper } = await s.run(["app.log"]);
  await waitForLines(s.received, ["before 1"]);

  truncateSync(path, 0);
  appendFileSync(path, "after 01\n");
  await expectExactly(s.received, shipper, ["before 1", "after 01"]);
});

// ext4 hands a freed inode to the next file created in the same folder, so
// the "reused" cases below usually do reuse it; each test checks with stat
// and says which happened in a diagnostic, and expects the same lines
// either way. While the shipper holds the old file open, its inode cannot
// be reused at all.
test("rotation: delete and recreate while the reader is open (a new inode: the old one is still open)", async (t) => {
  const s = await setup(t);
  const path = join(s.logs, "app.log");
  writeFileSync(path, "old 1\nold 2\n");
  const { shipper } = await s.run(["app.log"]);
  await waitForLines(s.received, ["old 1", "old 2"]);
  const oldKey = await keyOf(path);
  assert.ok(shipper.table.get(oldKey)?.reader, "the reader is open");

  unlinkSync(path);
  writeFileSync(path, "a new file with other content\n");
  assert.notEqual(await keyOf(path), oldKey);
  await expectExactly(s.received, shipper, [
    "old 1",
    "old 2",
    "a new file with other content",
  ]);
});

test("rotation: delete and recreate after the reader was closed as inactive (the inode may be reused)", async (t) => {
  const s = await setup(t);
  const path = join(s.logs, "app.log");
  writeFileSync(path, "old 1\nold 2\n");
  const { shipper } = await s.run(["app.log"], { close_inactive_ms: 1000 });
  await waitForLines(s.received, ["old 1", "old 2"]);
  const oldKey = await keyOf(path);
  await waitFor(
    () => shipper.table.get(oldKey)?.reader === undefined,
    "the idle reader to be closed",
  );

  unlinkSync(path);
  // Longer than the old offset (12): only the first bytes tell them apart.
  writeFileSync(path, "a new file with other content\n");
  const reused = (await keyOf(path)) === oldKey;
  t.diagnostic(reused ? "the inode was reused" : "a new inode");
  await expectExactly(s.received, shipper, [
    "old 1",
    "old 2",
    "a new file with other content",
  ]);
});

test("rotation: delete and recreate while the shipper is stopped (the inode may be reused)", async (t) => {
  const s = await setup(t);
  const path = join(s.logs, "app.log");
  writeFileSync(path, "old 1\nold 2\n");
  const first = await s.run(["app.log"]);
  await waitForLines(s.received, ["old 1", "old 2"]);
  const oldKey = await keyOf(path);
  await first.close();

  unlinkSync(path);
  writeFileSync(path, "a new file with other content\n");
  const reused = (await keyOf(path)) === oldKey;
  t.diagnostic(reused ? "the inode was reused" : "a new inode");
  const { shipper, logs } = await s.run(["app.log"]);
  await expectExactly(s.received, shipper, [
    "old 1",
    "old 2",
    "a new file with other content",
  ]);
  const from = reused ? "replaced" : "beginning";
  await waitForLog(logs, { at: "open", "file.path": path, from });
});

test("rotation: a symlink repointed to a new file; late writes to the old target arrive", async (t) => {
  const s = await setup(t);
  const link = join(s.logs, "current.log");
  const first = join(s.logs, "app-1.log");
  const second = join(s.logs, "app-2.log");
  writeFileSync(first, "one 1\n");
  symlinkSync("app-1.log", link);
  const { shipper } = await s.run(["current.log"]);
  await waitForLines(s.received, ["one 1"]);
  appendFileSync(first, "one 2\n");
  await waitForLines(s.received, ["one 2"]);

  // Repointed atomically, as `ln -sfn` followed by a rename would.
  writeFileSync(second, "two 1\n");
  symlinkSync("app-2.log", `${link}.tmp`);
  renameSync(`${link}.tmp`, link);
  const secondKey = await keyOf(second);
  await waitFor(() => shipper.table.get(secondKey), "the new target");
  appendFileSync(first, "one 3 after the repoint\n");
  appendFileSync(second, "two 2\n");

  await expectExactly(s.received, shipper, [
    "one 1",
    "one 2",
    "one 3 after the repoint",
    "two 1",
    "two 2",
  ]);
  assert.equal(shipper.table.get(secondKey)?.path, link);
});

test("rotation: CRLF lines across a restart in mid-file arrive once, without CR", async (t) => {
  const s = await setup(t);
  const path = join(s.logs, "app.log");
  const lines = Array.from({ length: 200 }, (_, i) => `crlf ${i}`);
  writeFileSync(path, lines.map((l) => `${l}\r\n`).join(""));
  s.received.holdAfter(3);
  const first = await s.run(["app.log"], { network: { spool_size: 10 } });

  // Stop while the fourth batch waits for its ack, then let it through:
  // close() waits for it, so 40 lines are acked and saved, no more.
  await waitFor(() => s.received.waiting === 1, "the fourth batch");
  const closing = first.close();
  s.received.release();
  await closing;
  assert.deepEqual(s.received.lines(), lines.slice(0, 40));
  const bytes = (n: number) =>
    lines.slice(0, n).reduce((sum, l) => sum + l.length + 2, 0);
  assert.deepEqual(
    savedEntries(s.statePath).map((e) => e.offset),
    [bytes(40)],
  );

  appendFileSync(path, "crlf 200\r\npartial\r");
  const { shipper } = await s.run(["app.log"], {
    network: { spool_size: 10 },
  });
  await expectExactly(s.received, shipper, [...lines, "crlf 200"]);
  assert.deepEqual(s.received.lines(), [...lines, "crlf 200"]);
  appendFileSync(path, "\n");
  await waitForLines(s.received, ["partial"]);
  assert.deepEqual(s.received.lines().slice(-2), ["crlf 200", "partial"]);
});

test("rotation: an over-long last line without its newline is skipped once it ends", async (t) => {
  const s = await setup(t);
  const path = join(s.logs, "app.log");
  writeFileSync(path, `short\n${"x".repeat(40)}`);
  const { shipper, logs } = await s.run(["app.log"], { max_length: 32 });
  await waitForLines(s.received, ["short"]);

  appendFileSync(path, "\nafter the long line\n");
  await expectExactly(s.received, shipper, ["short", "after the long line"]);
  assert.equal(shipper.counters.linesSkipped, 1);
  await waitForLog(logs, { at: "skip", "file.path": path, bytes: 41 });
});

test("rotation: an over-long last line across a restart is skipped, not shipped from its middle", async (t) => {
  const s = await setup(t);
  const path = join(s.logs, "app.log");
  writeFileSync(path, `short\n${"y".repeat(40)}`);
  const first = await s.run(["app.log"], { max_length: 32 });
  await waitForLines(s.received, ["short"]);
  await first.close();
  // The saved offset is the long line's start, not somewhere inside it.
  assert.deepEqual(
    savedEntries(s.statePath).map((e) => e.offset),
    [6],
  );

  appendFileSync(path, `${"y".repeat(10)}\nafter the long line\n`);
  const { shipper, logs } = await s.run(["app.log"], { max_length: 32 });
  await expectExactly(s.received, shipper, ["short", "after the long line"]);
  await waitForLog(logs, { at: "skip", "file.path": path, bytes: 51 });
});

test("rotation: a partial last line across a restart arrives once, whole", async (t) => {
  const s = await setup(t);
  const path = join(s.logs, "app.log");
  writeFileSync(path, "first\nabc");
  const first = await s.run(["app.log"]);
  await waitForLines(s.received, ["first"]);
  await first.close();
  assert.deepEqual(
    savedEntries(s.statePath).map((e) => e.offset),
    [6],
  );

  appendFileSync(path, "def\n");
  const { shipper } = await s.run(["app.log"]);
  await expectExactly(s.received, shipper, ["first", "abcdef"]);
  assert.deepEqual(s.received.lines(), ["first", "abcdef"]);
});
