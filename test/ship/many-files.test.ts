/**
 * Many files: one glob over 5,000 small files with `max_open_files: 100`.
 * Every line arrives exactly once, and the number of open readers,
 * sampled all along, never goes over the limit.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { tempDir } from "../helpers.js";
import {
  expectExactly,
  runShipper,
  shipConfig,
  startReceiver,
} from "./harness.js";

const FILES = 5000;
const LINES_PER_FILE = 3;
const MAX_OPEN = 100;

test(
  "many files: 5,000 files under one glob ship every line, at most 100 open at once",
  { timeout: 180_000 },
  async (t) => {
    const dir = tempDir("lorne-many-");
    const logs = join(dir.path, "logs");
    mkdirSync(logs);
    const received = await startReceiver();
    const expected: string[] = [];
    for (let i = 0; i < FILES; i++) {
      const lines = Array.from(
        { length: LINES_PER_FILE },
        (_, j) => `file ${i} line ${j}`,
      );
      writeFileSync(join(logs, `f${i}.log`), lines.join("\n") + "\n");
      expected.push(...lines);
    }

    const running = await runShipper(
      shipConfig(dir.path, received.port, { max_open_files: MAX_OPEN }),
    );
    const { shipper } = running;
    let most = 0;
    const sample = () => {
      most = Math.max(most, shipper.table.openReaders);
    };
    const sampler = setInterval(sample, 1);
    t.after(async () => {
      clearInterval(sampler);
      await running.close();
      await received.close();
      dir.remove();
    });

    assert.equal(shipper.table.size, FILES);
    await expectExactly(received, shipper, expected, 120_000);
    sample();
    clearInterval(sampler);
    // The first batch alone wants more than 100 files, so the limit is
    // reached; it is never passed.
    assert.equal(most, MAX_OPEN);
    assert.equal(shipper.counters.linesAcked, FILES * LINES_PER_FILE);
  },
);
