/**
 * Outages: the server goes away and comes back on the same port, and a
 * server that answers only with keepalive acks (seq 0) for a long time.
 * Offsets move only on a real ack, nothing is lost, and the only repeats
 * are the lines of a batch that was never acked.
 */
import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { statIdentity } from "../../src/ship/identity.js";
import { tempDir, waitFor } from "../helpers.js";
import { startPeer, type PeerBatch } from "../lumberjack/peer.js";
import {
  expectExactly,
  runShipper,
  savedEntries,
  shipConfig,
  startReceiver,
  waitForLog,
} from "./harness.js";

const KEEPALIVE_MS = 100;

interface Line {
  line: string;
}

function setup(t: TestContext) {
  const dir = tempDir("lorne-outage-");
  const logs = join(dir.path, "logs");
  mkdirSync(logs);
  const cleanups: (() => unknown)[] = [dir.remove];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  return {
    dir: dir.path,
    path: join(logs, "app.log"),
    defer: (cleanup: () => unknown) => cleanups.push(cleanup),
  };
}

const numbered = (what: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${what} ${i}`);

test(
  "outage: lines written while the server is down arrive once it is back on its port",
  { timeout: 60_000 },
  async (t) => {
    const s = setup(t);
    const first = await startReceiver();
    s.defer(() => first.close());
    const before = numbered("before", 10);
    writeFileSync(s.path, before.join("\n") + "\n");
    const running = await runShipper(shipConfig(s.dir, first.port));
    s.defer(() => running.close());
    const { shipper } = running;
    await expectExactly(first, shipper, before);

    await first.close();
    const during = numbered("during the outage", 50);
    appendFileSync(s.path, during.join("\n") + "\n");
    await waitFor(
      () => shipper.counters.batchesFailed >= 2,
      "two failed attempts",
    );
    const key = (await statIdentity(s.path))!.identity.key;
    const beforeBytes = before.join("\n").length + 1;
    assert.equal(shipper.table.get(key)?.ackedOffset, beforeBytes);

    const second = await startReceiver(first.port);
    s.defer(() => second.close());
    await expectExactly(second, shipper, during, 30_000);
    assert.deepEqual(second.lines(), during);
    assert.deepEqual(first.lines(), before);
    const size = beforeBytes + during.join("\n").length + 1;
    assert.equal(shipper.table.get(key)?.ackedOffset, size);
    await waitForLog(running.logs, { at: "acked", lines: 50 });
  },
);

test(
  "outage: keepalive acks for longer than the timeout move no offset; the real ack does",
  { timeout: 60_000 },
  async (t) => {
    const s = setup(t);
    let keepalives = 0;
    const timers = new Set<NodeJS.Timeout>();
    const peer = await startPeer((batch: PeerBatch) => {
      const timer = setInterval(() => {
        keepalives++;
        batch.ack(0);
      }, KEEPALIVE_MS);
      timers.add(timer);
    });
    s.defer(() => peer.close());
    s.defer(() => timers.forEach(clearInterval));
    const lines = numbered("kept alive", 5);
    writeFileSync(s.path, lines.join("\n") + "\n");
    const size = lines.join("\n").length + 1;
    // timeout 1 s: each keepalive starts the ack wait again.
    const config = shipConfig(s.dir, peer.port, { network: { timeout: 1 } });
    const running = await runShipper(config);
    s.defer(() => running.close());
    const { shipper } = running;
    const key = (await statIdentity(s.path))!.identity.key;

    // 25 keepalives: 2.5 s, more than twice the timeout.
    await waitFor(() => {
      assert.equal(shipper.table.get(key)?.ackedOffset, 0);
      return keepalives >= 25;
    }, "25 keepalives");
    assert.equal(peer.batches.length, 1);
    assert.equal(shipper.counters.batchesFailed, 0);
    assert.equal(shipper.counters.linesAcked, 0);

    const batch = peer.batches[0]!;
    timers.forEach(clearInterval);
    batch.ack(batch.seqs.at(-1)!);
    await waitFor(
      () => shipper.table.get(key)?.ackedOffset === size,
      "the offset to move on the ack",
    );
    assert.equal(shipper.counters.linesAcked, 5);
    await running.close();

    assert.deepEqual(
      batch.events.map((e) =>
        e.type === "json"
          ? (JSON.parse(e.payload.toString()) as Line).line
          : "",
      ),
      lines,
    );
    assert.equal(peer.batches.length, 1);
    assert.equal(peer.connections, 1);
    assert.deepEqual(
      savedEntries(config.statePath).map((e) => [e.key, e.offset]),
      [[key, size]],
    );
  },
);

test(
  "outage: a server that only keeps alive: close gives up in time, saves nothing, and the lines go again",
  { timeout: 60_000 },
  async (t) => {
    const s = setup(t);
    const timers = new Set<NodeJS.Timeout>();
    const peer = await startPeer((batch) => {
      timers.add(setInterval(() => batch.ack(0), KEEPALIVE_MS));
    });
    s.defer(() => peer.close());
    s.defer(() => timers.forEach(clearInterval));
    const lines = numbered("never acked", 3);
    writeFileSync(s.path, lines.join("\n") + "\n");
    const stalled = await runShipper(
      shipConfig(s.dir, peer.port, { network: { timeout: 1 } }),
    );
    s.defer(() => stalled.close());
    await waitFor(() => peer.batches.length === 1, "the batch at the peer");

    // close() waits at most the timeout plus a second for the ack.
    await stalled.close();
    await waitForLog(stalled.logs, { at: "close", in_flight: "abandoned" });
    const config = shipConfig(s.dir, peer.port);
    // Only where the file was first seen (0), never an unacked offset.
    assert.deepEqual(
      savedEntries(config.statePath).map((e) => e.offset),
      [0],
    );

    // The lines went to the stalled server once, unacked: they go again.
    const received = await startReceiver();
    s.defer(() => received.close());
    const running = await runShipper(shipConfig(s.dir, received.port));
    s.defer(() => running.close());
    await expectExactly(received, running.shipper, lines);
  },
);
