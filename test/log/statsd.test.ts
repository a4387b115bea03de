/**
 * StatsdStatter against a real UDP socket on 127.0.0.1: the exact
 * datagrams for each metric type, sampling, prefixes, and timers.
 */
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { once } from "node:events";
import { afterEach, beforeEach, test } from "node:test";

import { ValidationError } from "../../src/errors.js";
import {
  Context,
  MemoryLogger,
  StatsdStatter,
  type StatsdStatterOptions,
} from "../../src/log/index.js";

let server: Socket;
let received: string[];
let statter: StatsdStatter | undefined;

beforeEach(async () => {
  received = [];
  server = createSocket("udp4");
  server.on("message", (message) => received.push(message.toString()));
  server.bind(0, "127.0.0.1");
  await once(server, "listening");
});

afterEach(async () => {
  await statter?.close();
  statter = undefined;
  server.close();
});

function connect(options: StatsdStatterOptions = {}): StatsdStatter {
  statter = new StatsdStatter({ port: server.address().port, ...options });
  return statter;
}

/** Waits until `count` datagrams arrived, then returns them. */
async function datagrams(count: number): Promise<string[]> {
  const deadline = Date.now() + 2000;
  while (received.length < count) {
    if (Date.now() > deadline) {
      throw new Error(`Got ${received.length} of ${count} datagrams`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return received;
}

test("StatsdStatter: sends counters, timings and gauges", async () => {
  const client = connect();
  client.counter(1, "hits", 1, 2);
  client.timing(1, "db.query", 15.9);
  client.gauge(1, "mem", 0.5);
  assert.deepEqual(await datagrams(4), [
    "hits:1|c",
    "hits:2|c",
    "db.query:15|ms",
    "mem:0.5|g",
  ]);
});

test("StatsdStatter: appends the sample rate and drops unsampled calls", async () => {
  let random = 0.9;
  const client = connect({ random: () => random });
  client.counter(0.5, "dropped", 1);
  random = 0.1;
  client.counter(0.5, "kept", 1);
  client.gauge(1, "marker", 1);
  assert.deepEqual(await datagrams(2), ["kept:1|c|@0.5", "marker:1|g"]);
});

test("StatsdStatter: joins a prefix and cleans reserved characters", async () => {
  const client = connect({ prefix: "app" });
  client.counter(1, "a:b|c@d e", 1);
  client.gauge(1, "ok", 2);
  assert.deepEqual(await datagrams(2), ["app.a_b_c_d_e:1|c", "app.ok:2|g"]);
});

test("StatsdStatter: skips values that are not finite", async () => {
  const client = connect();
  client.gauge(1, "g", NaN, Infinity, 3);
  assert.deepEqual(await datagrams(1), ["g:3|g"]);
});

test("StatsdStatter: a context timer reports to its bucket", async () => {
  const client = connect();
  const clock = { ms: 0 };
  const context = new Context({
    logger: new MemoryLogger(),
    statter: client,
    bucket: "jobs.run",
    clock: () => clock.ms,
  });
  const timer = context.timer({ job: "j1" });
  clock.ms = 250.4;
  timer.finish();
  context.counter(1, "started", 1);
  assert.deepEqual(await datagrams(2), [
    "jobs.run:250|ms",
    "jobs.run.started:1|c",
  ]);
});

test("StatsdStatter: close waits for sends and ignores later calls", async () => {
  const client = connect();
  client.counter(1, "before", 1);
  await client.close();
  await client.close();
  client.counter(1, "after", 1);
  client.destroy();
  assert.deepEqual(await datagrams(1), ["before:1|c"]);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(received, ["before:1|c"]);
});

test("StatsdStatter: rejects a bad port", () => {
  assert.throws(
    () => new StatsdStatter({ port: 0 }),
    new ValidationError(
      "Invalid StatsD port 0: expected an integer from 1 to 65535",
      "port",
    ),
  );
});
