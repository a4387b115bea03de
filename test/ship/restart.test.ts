/**
 * What a restart must know: found by breaking the shipper from the
 * outside (read_from end, a file rewritten with the same first bytes, a
 * copytruncate copy, a file rotated out of the globs while stopped).
 */
import {
  appendFileSync,
  copyFileSync,
  renameSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import {
  expectExactly,
  runShipper,
  shipConfig,
  shipSetup,
  waitForLines,
  waitForLog,
} from "./harness.js";

async function setup(t: TestContext) {
  const { dir, logs, received } = await shipSetup(t, "lorne-restart-");
  const run = (globs: string[], group: Record<string, unknown> = {}) =>
    runShipper(
      shipConfig(dir, received.port, {}, [
        { paths: globs.map((g) => join(logs, g)), ...group },
      ]),
    );
  return { logs, received, run };
}

test("restart: read_from end still sends lines written while stopped", async (t) => {
  const { logs, received, run } = await setup(t);
  const path = join(logs, "a.log");
  writeFileSync(path, "old\n");
  let shipper = await run(["*.log"], { read_from: "end" });
  await waitForLog(shipper.logs, { at: "open", from: "end" });
  await shipper.close();

  appendFileSync(path, "written while stopped\n");
  shipper = await run(["*.log"], { read_from: "end" });
  t.after(() => shipper.close());
  appendFileSync(path, "written while running\n");
  await expectExactly(received, shipper.shipper, [
    "written while stopped",
    "written while running",
  ]);
});

test("restart: a file rewritten with the same first bytes is read from 0", async (t) => {
  const { logs, received, run } = await setup(t);
  const path = join(logs, "app.log");
  const banner = Array.from(
    { length: 40 },
    (_, i) => `boot step ${i}: loading module number ${i}`,
  );
  writeFileSync(path, [...banner, "run1 done", ""].join("\n"));
  let shipper = await run(["app.log"]);
  await waitForLines(received, ["run1 done"]);
  await shipper.close();

  truncateSync(path);
  writeFileSync(path, [...banner, "run2 error", "run2 done", ""].join("\n"));
  shipper = await run(["app.log"]);
  t.after(() => shipper.close());
  await expectExactly(received, shipper.shipper, [
    ...banner,
    "run1 done",
    ...banner,
    "run2 error",
    "run2 done",
  ]);
});

test("restart: a copytruncate copy is not sent again after a restart", async (t) => {
  const { logs, received, run } = await setup(t);
  const path = join(logs, "app.log");
  const first = Array.from({ length: 50 }, (_, i) => `first ${i}`);
  writeFileSync(path, first.join("\n") + "\n");
  let shipper = await run(["app.log*"]);
  await waitForLines(received, first);
  copyFileSync(path, `${path}.1`);
  truncateSync(path);
  appendFileSync(path, "after\n");
  await waitForLog(shipper.logs, { at: "open", from: "copy" });
  await waitForLines(received, ["after"]);
  await shipper.close();

  shipper = await run(["app.log*"]);
  t.after(() => shipper.close());
  appendFileSync(path, "later\n");
  await expectExactly(received, shipper.shipper, [...first, "after", "later"]);
});

test("restart: a file rotated out of the globs while stopped is finished", async (t) => {
  const { logs, received, run } = await setup(t);
  const path = join(logs, "app.log");
  writeFileSync(path, "one\n");
  let shipper = await run(["app.log"]);
  await waitForLines(received, ["one"]);
  await shipper.close();

  appendFileSync(path, "two\n");
  renameSync(path, `${path}.1`);
  writeFileSync(path, "three\n");
  shipper = await run(["app.log"]);
  t.after(() => shipper.close());
  await expectExactly(received, shipper.shipper, ["one", "two", "three"]);
});

test("restart: lines in flight when their file was copytruncated still arrive after a crash", async (t) => {
  const { logs, received, run } = await setup(t);
  const path = join(logs, "app.log");
  received.failNext(1_000_000); // nothing is acked in the first run
  writeFileSync(path, "one\ntwo\n");
  let shipper = await run(["app.log*"]);
  await waitForLog(shipper.logs, { at: "send_error" });
  copyFileSync(path, `${path}.1`);
  truncateSync(path);
  await waitForLog(shipper.logs, { at: "open", from: "copy" });
  shipper.shipper.destroy(); // a crash: the retry queue is gone

  received.failNext(0);
  shipper = await run(["app.log*"]);
  t.after(() => shipper.close());
  await expectExactly(received, shipper.shipper, ["one", "two"]);
});
