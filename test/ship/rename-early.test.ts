import { appendFileSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { tempDir } from "../helpers.js";
import {
  expectExactly,
  runShipper,
  shipConfig,
  startGatedReceiver,
  waitForLines,
  waitForLog,
} from "./harness.js";

// Found by test/ship/model.test.ts: a read that fails because the file was
// renamed before its reader opened it must not leave the file unread.
test("ship: a file renamed before its first read is still read", async (t) => {
  const dir = tempDir("lorne-ship-");
  const logs = join(dir.path, "logs");
  mkdirSync(logs);
  const received = await startGatedReceiver();
  t.after(async () => {
    received.release();
    await received.close();
    dir.remove();
  });
  const config = shipConfig(
    dir.path,
    received.port,
    { network: { spool_size: 1 } },
    [{ paths: [join(logs, "*.log"), join(logs, "*.log.*")] }],
  );
  const running = await runShipper(config);
  t.after(() => running.close());

  received.holdAfter(0);
  appendFileSync(join(logs, "b.log"), "b1\nb2\n");
  await waitForLines(received, ["b1"]); // b1 held, b2 read ahead
  appendFileSync(join(logs, "a.log"), "a1\n");
  await waitForLog(running.logs, {
    at: "open",
    "file.path": join(logs, "a.log"),
  });
  renameSync(join(logs, "a.log"), join(logs, "a.log.1"));
  received.release();
  await waitForLines(received, ["b2", "a1"]);
  await expectExactly(received, running.shipper, ["b1", "b2", "a1"]);
});
