/**
 * The statistics endpoint of a real Shipper on `statistics.addr`
 * 127.0.0.1:0: butteredscones' JSON on GET /, Prometheus text on
 * GET /metrics, JSON errors elsewhere. A fixed clock makes every time
 * exact.
 */
import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { Context, MemoryLogger } from "../../src/log/index.js";
import { Shipper } from "../../src/ship/shipper.js";
import { serveStatistics } from "../../src/ship/stats.js";
import { tempDir, waitFor } from "../helpers.js";
import {
  expectExactly,
  shipConfig,
  startReceiver,
  waitForLog,
  type Received,
} from "./harness.js";

const NOW_MS = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
const NOW = "2026-01-02T03:04:05.678Z";

interface Running {
  dir: string;
  logs: string;
  received: Received;
  shipper: Shipper;
  log: MemoryLogger;
  url: string;
}

async function start(
  t: TestContext,
  write: (logs: string) => void,
  globs = ["*.log"],
): Promise<Running> {
  const tmp = tempDir("lorne-stats-");
  const logs = join(tmp.path, "logs");
  mkdirSync(logs);
  write(logs);
  const received = await startReceiver();
  const config = shipConfig(
    tmp.path,
    received.port,
    { statistics: { addr: "127.0.0.1:0" } },
    [{ paths: globs.map((g) => join(logs, g)) }],
  );
  const log = new MemoryLogger();
  const context = new Context({ logger: log });
  const shipper = new Shipper(config, {
    log: context,
    host: "test-host",
    now: () => NOW_MS,
  });
  const cleanups: (() => unknown)[] = [
    tmp.remove,
    () => received.close(),
    () => shipper.close(),
  ];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  await shipper.start();
  const server = await serveStatistics(shipper, config.statistics!, context);
  cleanups.push(() => closeServer(server));

  const record = await waitForLog(log, { at: "statistics" });
  const bound = server.address();
  assert.ok(typeof bound === "object" && bound !== null);
  assert.equal(record.addr, `127.0.0.1:${bound.port}`);
  return {
    dir: tmp.path,
    logs,
    received,
    shipper,
    log,
    url: `http://${String(record.addr)}`,
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

async function get(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(url, init);
  return {
    status: res.status,
    type: res.headers.get("content-type"),
    text: await res.text(),
  };
}

/** The value of one sample line `name{labels} value` of a scrape. */
function sample(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

test("stats: GET / answers butteredscones' JSON with exact values", async (t) => {
  const r = await start(t, (logs) => {
    writeFileSync(join(logs, "a.log"), "a1\na2\n");
    writeFileSync(join(logs, "b.log"), "b1\nb2\nb3\npartial");
  });
  await expectExactly(r.received, r.shipper, ["a1", "a2", "b1", "b2", "b3"]);

  const res = await get(`${r.url}/`);
  assert.equal(res.status, 200);
  assert.equal(res.type, "application/json");
  const body = JSON.parse(res.text) as unknown;
  const client = `127.0.0.1:${r.received.port}`;
  const file = (size: number, position: number) => ({
    size,
    position,
    last_read: NOW,
    snapshot_position: position,
    last_snapshot: NOW,
  });
  assert.deepEqual(body, {
    clients: {
      [client]: {
        status: "idle",
        lines_sent: 5,
        last_send_time: NOW,
        last_chunk_size: 5,
      },
    },
    file_reader_pool: { available: 2, locked: 0 },
    files: {
      [join(r.logs, "a.log")]: file(6, 6),
      [join(r.logs, "b.log")]: file(16, 9),
    },
  });
  assert.deepEqual(JSON.parse((await get(`${r.url}/stats`)).text), body);
});

test("stats: GET /metrics counts lines and each file's lag, scrape after scrape", async (t) => {
  const r = await start(t, (logs) => {
    writeFileSync(join(logs, "a.log"), "a1\na2\n");
    writeFileSync(join(logs, "b.log"), "b1\nb2\nb3\npartial");
  });
  await expectExactly(r.received, r.shipper, ["a1", "a2", "b1", "b2", "b3"]);

  const res = await get(`${r.url}/metrics`);
  assert.equal(res.status, 200);
  assert.equal(res.type, "text/plain; version=0.0.4; charset=utf-8");
  assert.match(res.text, /^# TYPE lorne_ship_lines_acked_total counter$/m);
  assert.match(res.text, /^# TYPE lorne_ship_file_lag_bytes gauge$/m);
  const a = join(r.logs, "a.log");
  const b = join(r.logs, "b.log");
  const lag = (path: string) => `lorne_ship_file_lag_bytes{path="${path}"}`;
  const values = (text: string) => ({
    read: sample(text, "lorne_ship_lines_read_total"),
    sent: sample(text, "lorne_ship_lines_sent_total"),
    acked: sample(text, "lorne_ship_lines_acked_total"),
    bytesAcked: sample(text, "lorne_ship_bytes_acked_total"),
    batches: sample(text, "lorne_ship_batches_acked_total"),
    failed: sample(text, "lorne_ship_batches_failed_total"),
    skipped: sample(text, "lorne_ship_lines_skipped_total"),
    files: sample(text, "lorne_ship_files"),
    open: sample(text, "lorne_ship_files_open"),
    retry: sample(text, "lorne_ship_retry_queue_batches"),
    lagA: sample(text, lag(a)),
    lagB: sample(text, lag(b)),
  });
  const expected = {
    read: 5,
    sent: 5,
    acked: 5,
    bytesAcked: 10,
    batches: 1,
    failed: 0,
    skipped: 0,
    files: 2,
    open: 2,
    retry: 0,
    lagA: 0,
    lagB: 7,
  };
  assert.deepEqual(values(res.text), expected);
  // Counters report what they counted once, however often they are read.
  assert.deepEqual(values((await get(`${r.url}/metrics`)).text), expected);

  r.received.failNext(1);
  appendFileSync(b, "\nb5\n");
  await expectExactly(r.received, r.shipper, [
    "a1",
    "a2",
    "b1",
    "b2",
    "b3",
    "partial",
    "b5",
  ]);
  await waitFor(
    () => r.shipper.table.atPath(b)?.size === 20,
    "b.log's new size",
  );
  assert.deepEqual(values((await get(`${r.url}/metrics`)).text), {
    ...expected,
    read: 7,
    sent: 9,
    acked: 7,
    bytesAcked: 19,
    batches: 2,
    failed: 1,
    lagB: 0,
  });
});

test("stats: a path shared by a rotated file and its successor shows the successor, and their lag together", async (t) => {
  const r = await start(
    t,
    (logs) => writeFileSync(join(logs, "app.log"), "old 1\nold tail"),
    ["app.log"],
  );
  const path = join(r.logs, "app.log");
  await expectExactly(r.received, r.shipper, ["old 1"]);
  renameSync(path, `${path}.1`);
  writeFileSync(path, "new 1\nnew tail!");
  await expectExactly(r.received, r.shipper, ["old 1", "new 1"]);
  // The renamed file is still followed, under the path it was last seen at.
  await waitFor(() => r.shipper.table.size === 2, "both files tracked");
  // A refresh may have seen the new file before its bytes: wait for its size.
  await waitFor(
    () => r.shipper.table.atPath(path)?.size === 15,
    "the new file's size",
  );

  const json = JSON.parse((await get(`${r.url}/`)).text) as {
    files: Record<string, unknown>;
  };
  assert.deepEqual(json.files, {
    [path]: {
      size: 15,
      position: 6,
      last_read: NOW,
      snapshot_position: 6,
      last_snapshot: NOW,
    },
  });
  const metrics = (await get(`${r.url}/metrics`)).text;
  assert.equal(
    sample(metrics, `lorne_ship_file_lag_bytes{path="${path}"}`),
    17,
  );
});

test("stats: other paths and methods get a JSON not_found", async (t) => {
  const r = await start(t, () => {});
  const cases: [string, RequestInit | undefined, string][] = [
    ["/nope", undefined, "Not found: try GET / or GET /metrics"],
    ["/metrics/x", undefined, "Not found: try GET / or GET /metrics"],
    ["/", { method: "POST" }, "No route for POST /: only GET and HEAD"],
    [
      "/metrics",
      { method: "DELETE" },
      "No route for DELETE /metrics: only GET and HEAD",
    ],
  ];
  for (const [path, init, message] of cases) {
    const res = await get(`${r.url}${path}`, init);
    assert.deepEqual(
      {
        status: res.status,
        type: res.type,
        body: JSON.parse(res.text) as unknown,
      },
      {
        status: 404,
        type: "application/json",
        body: { code: "not_found", message },
      },
      `${init?.method ?? "GET"} ${path}`,
    );
  }
});
