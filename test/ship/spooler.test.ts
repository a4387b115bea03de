/**
 * The spooler against a refresh that finds a file truncated while a read
 * of it is in progress: what that read returns may be the middle of the
 * file's new lines, so it is dropped and the file is read again from its
 * start. Seen once in CI as a line shipped without its first bytes.
 */
import assert from "node:assert/strict";
import { appendFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { Context, MemoryLogger } from "../../src/log/index.js";
import { parseShipConfig } from "../../src/ship/config.js";
import { OffsetStore } from "../../src/ship/offsets.js";
import type { ReadResult } from "../../src/ship/reader.js";
import { Refresher } from "../../src/ship/refresh.js";
import { Spooler, type Batch } from "../../src/ship/spooler.js";
import { FileTable } from "../../src/ship/table.js";
import { tempDir } from "../helpers.js";
import { config, group } from "./config-helpers.js";

const NEW_LINE = "a line after the truncation, longer than the offset";

// What a batch holds: its line count, line bytes and where each file's
// reading got to.
function contents(batch: Batch | undefined): {
  lines: number;
  bytes: number;
  offsets: number[];
} {
  if (batch === undefined) return { lines: 0, bytes: 0, offsets: [] };
  return {
    lines: batch.lines,
    bytes: batch.bytes,
    offsets: batch.claims.map((c) => c.offset),
  };
}

test("spooler: a truncation found during a read drops that read and starts again from 0", async (t) => {
  const dir = tempDir("lorne-spooler-test-");
  t.after(() => dir.remove());
  const path = join(dir.path, "app.log");
  writeFileSync(path, "short\n");

  const shipConfig = parseShipConfig(
    config({ files: [group({ paths: [path], read_from: "beginning" })] }),
    dir.path,
  );
  const store = OffsetStore.open(join(dir.path, "state.db"));
  t.after(() => store.close());
  const table = new FileTable({
    maxOpenFiles: 8,
    maxLineBytes: shipConfig.maxLineBytes,
  });
  t.after(() => table.closeAll());
  const logger = new MemoryLogger();
  const refresher = new Refresher({
    config: shipConfig,
    table,
    store,
    host: "test",
    now: Date.now,
    log: new Context({ logger }),
    wake: () => undefined,
    refreshSoon: () => undefined,
  });
  const failures: unknown[] = [];
  const spooler = new Spooler(
    table,
    { spoolSize: 100, now: Date.now },
    {
      truncated: (file) => refresher.truncated(file),
      skipped: () => undefined,
      readFailed: (_file, err) => failures.push(err),
    },
  );

  await refresher.refresh();
  const first = await spooler.build();
  assert.deepEqual(contents(first), { lines: 1, bytes: 5, offsets: [6] });
  table.unlock(first!.id, first!.claims);

  // The file is truncated and written again, longer than the offset (6);
  // the next read starts at 6 and, while it is in progress, a refresh
  // finds the truncation (as a refresh running beside the spooler does).
  truncateSync(path, 0);
  appendFileSync(path, `${NEW_LINE}\n`);
  const file = table.atPath(path)!;
  file.dirty = true;
  table.markDirty(file);
  const reader = file.reader!;
  const read = reader.read.bind(reader);
  let truncationError: unknown;
  reader.read = async (...args): Promise<ReadResult> => {
    const result = await read(...args);
    try {
      refresher.truncated(file);
    } catch (err) {
      truncationError = err; // a refresh's own error, not the read's
    }
    return result;
  };

  const stale = await spooler.build();
  reader.read = read;
  assert.equal(truncationError, undefined);
  assert.deepEqual(
    contents(stale),
    contents(undefined),
    "nothing of the read that began before the truncation",
  );
  const again = await spooler.build();
  // The whole new line, read from 0 (from 6 it would be 6 bytes short).
  assert.deepEqual(contents(again), {
    lines: 1,
    bytes: NEW_LINE.length,
    offsets: [NEW_LINE.length + 1],
  });
  assert.deepEqual(failures, []);
  assert.equal(logger.records.filter((r) => r.at === "truncated").length, 1);
});
