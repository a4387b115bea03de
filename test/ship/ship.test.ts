import assert from "node:assert/strict";
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { OffsetStore } from "../../src/ship/offsets.js";
import { statIdentity } from "../../src/ship/identity.js";
import { waitFor } from "../helpers.js";
import { runShipper, shipConfig, shipSetup, waitForLines } from "./harness.js";

const setup = (t: TestContext) => shipSetup(t);

for (const version of [1, 2] as const) {
  test(`ship: lines arrive with host, fields, file and offset (v${version})`, async (t) => {
    const { dir, logs, received } = await setup(t);
    writeFileSync(join(logs, "a.log"), "first\r\nsecond\n");
    const config = shipConfig(dir, received.port, { network: { version } }, [
      {
        paths: [join(logs, "*.log")],
        fields: { type: "app" },
        include_file_fields: true,
      },
    ]);
    const running = await runShipper(config);
    t.after(() => running.close());

    await waitForLines(received, ["first", "second"]);
    appendFileSync(join(logs, "a.log"), "third\npartial");
    await waitForLines(received, ["third"]);
    const offset = (n: number) => (version === 1 ? String(n) : n);
    const file = join(logs, "a.log");
    assert.deepEqual(received.events, [
      {
        line: "first",
        host: "test-host",
        type: "app",
        file,
        offset: offset(7),
      },
      {
        line: "second",
        host: "test-host",
        type: "app",
        file,
        offset: offset(14),
      },
      {
        line: "third",
        host: "test-host",
        type: "app",
        file,
        offset: offset(20),
      },
    ]);
  });
}

test("ship: offsets are saved only once acked and resume after a restart", async (t) => {
  const { dir, logs, received } = await setup(t);
  const path = join(logs, "a.log");
  writeFileSync(path, "one\ntwo\n");
  const config = shipConfig(dir, received.port);
  let running = await runShipper(config);
  await waitForLines(received, ["one", "two"]);
  await running.close();

  const id = await statIdentity(path);
  const store = OffsetStore.open(config.statePath);
  assert.equal(store.get(id!.identity.key)?.offset, 8);
  store.close();

  appendFileSync(path, "three\n");
  running = await runShipper(config);
  t.after(() => running.close());
  await waitForLines(received, ["three"]);
  assert.deepEqual(received.lines(), ["one", "two", "three"]);
});

test("ship: a refused batch is sent again and nothing is lost", async (t) => {
  const { dir, logs, received } = await setup(t);
  received.failNext(2);
  const lines = Array.from({ length: 50 }, (_, i) => `line ${i}`);
  writeFileSync(join(logs, "a.log"), lines.join("\n") + "\n");
  const running = await runShipper(shipConfig(dir, received.port));
  t.after(() => running.close());
  await waitForLines(received, lines);
  assert.deepEqual(received.lines(), lines);
  await waitFor(
    () => running.shipper.counters.batchesFailed === 2,
    "two failed batches counted",
  );
});
