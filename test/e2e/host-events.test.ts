/**
 * End to end: signals to running jobs, and an event stream that never
 * stalls: a subscriber that stops reading is cut off with a final notice
 * while the others get every event.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { test } from "node:test";

import { ConflictError, ValidationError } from "../../src/errors.js";
import { HostClient } from "../../src/host/client.js";
import type { JobEvent } from "../../src/host/events.js";
import {
  authHeader,
  freePort,
  readText,
  startDaemon,
  waitFor,
  type DaemonProcess,
  useDaemon,
} from "../helpers.js";

let daemon: DaemonProcess;
let client: HostClient;
useDaemon(["--grace-ms", "500"], (d, c) => ((daemon = d), (client = c)));

function output(id: string): Promise<string> {
  return readText(client.logs(id));
}

test("signal: a running job gets the signal it is sent", async () => {
  const job = await client.createJob({
    config: {
      cmd: [
        "sh",
        "-c",
        "trap 'echo got HUP; exit 0' HUP; echo ready; while :; do sleep 0.05; done",
      ],
    },
  });
  await waitFor(async () => (await output(job.id)) === "ready\n", "trap set");
  await client.signalJob(job.id, "HUP");
  const ended = await waitFor(async () => {
    const j = await client.getJob(job.id);
    return j.status === "done" && j;
  }, "job to end");
  assert.equal(ended.exit_status, 0);
  // The whole process group gets it: the shell's sleep may report dying.
  assert.match(await output(job.id), /^ready\n(Hangup\n)?got HUP\n$/);

  await assert.rejects(client.signalJob(job.id, "SIGHUP"), (err: unknown) => {
    assert.ok(err instanceof ConflictError);
    assert.equal(
      err.message,
      `Cannot signal job "${job.id}": it is done, not running`,
    );
    return true;
  });
});

test("signal: an unknown signal name is a validation error naming it", async () => {
  const job = await client.createJob({ config: { cmd: ["sleep", "60"] } });
  try {
    await assert.rejects(
      client.signalJob(job.id, "SIGNOPE"),
      (err: unknown) => {
        assert.ok(err instanceof ValidationError);
        assert.equal(err.field, "signal");
        assert.equal(
          err.message,
          'Invalid signal "SIGNOPE": not a signal this system knows',
        );
        return true;
      },
    );
    const res = await fetch(`${daemon.url}/jobs/${job.id}/signal`, {
      method: "POST",
      headers: { ...authHeader(daemon), "content-type": "application/json" },
      body: JSON.stringify({ signal: "TERM", extra: 1 }),
    });
    assert.equal(res.status, 400);
  } finally {
    await client.stopJob(job.id);
  }
});

test("events: a subscriber that never reads is cut off and does not delay the others", async () => {
  // A raw client that asks for events and then never reads a byte.
  const stalled = connect(
    new URL(daemon.url).port ? Number(new URL(daemon.url).port) : 80,
    "127.0.0.1",
  );
  await new Promise<void>((resolve) => stalled.once("connect", resolve));
  stalled.write(
    "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
      `Authorization: Bearer ${daemon.token}\r\n\r\n`,
  );
  stalled.pause();

  const first = (await client.host()).jobs.total;
  const seen: JobEvent[] = [];
  const controller = new AbortController();
  const reading = (async () => {
    for await (const e of client.events({ signal: controller.signal })) {
      seen.push(e);
    }
  })().catch(() => undefined);

  // Failing jobs with big metadata: two events each, ~120 KB per job.
  const big = "x".repeat(60_000);
  const count = 100;
  for (let i = 0; i < count; i++) {
    const job = await client.createJob({
      metadata: { big },
      config: { cmd: ["/no/such/lorne-cmd"] },
    });
    assert.equal(job.status, "failed");
  }
  await waitFor(
    () => seen.filter((e) => e.event === "error").length === count,
    "all error events",
    20_000,
  );
  assert.equal(seen.length, count * 2);
  assert.equal((await client.host()).jobs.total, first + count);
  controller.abort();
  await reading;

  // Now drain the stalled client: its stream ends with the lagging notice.
  let raw = "";
  stalled.setEncoding("utf8");
  stalled.on("data", (d: string) => (raw += d));
  stalled.resume();
  await waitFor(
    () => stalled.readableEnded || stalled.destroyed,
    "stalled stream to end",
    20_000,
  );
  assert.match(
    raw,
    /event: error\r?\ndata: \{"code":"lagging","message":"Subscriber fell behind by more than \d+ bytes; reconnect to resume"\}/,
  );
  stalled.destroy();
});

test("events: resuming from an id the host no longer keeps is announced", async () => {
  const small = await startDaemon(["--event-history", "3"]);
  try {
    const c = new HostClient(small);
    await c.createJob({ config: { cmd: ["/no/such/cmd"] } }); // events 1, 2
    await c.createJob({ config: { cmd: ["/no/such/cmd"] } }); // events 3, 4
    const notices: string[] = [];
    const controller = new AbortController();
    const seen: number[] = [];
    for await (const e of c.events({
      after: 0,
      signal: controller.signal,
      onNotice: (n) => notices.push(`${n.code}: ${n.message}`),
    })) {
      seen.push(e.id);
      if (e.id === 4) break;
    }
    controller.abort();
    assert.deepEqual(notices, ["events_lost: Events 1-1 are no longer kept"]);
    assert.deepEqual(seen, [2, 3, 4]);
  } finally {
    await small.stop();
  }
});

test("events: resuming past the newest id (the log started again) is announced and replays what is kept", async () => {
  const fresh = await startDaemon(["--state-store", "memory"]);
  try {
    const c = new HostClient(fresh);
    await c.createJob({ config: { cmd: ["/no/such/cmd"] } }); // events 1, 2
    const notices: string[] = [];
    const controller = new AbortController();
    const seen: number[] = [];
    // As a client that saw event 40 from the daemon before a restart.
    for await (const e of c.events({
      after: 40,
      signal: AbortSignal.any([controller.signal, AbortSignal.timeout(5000)]),
      onNotice: (n) => notices.push(n.code),
    })) {
      seen.push(e.id);
      if (e.id === 2) break;
    }
    controller.abort();
    assert.deepEqual(notices, ["events_reset"]);
    assert.deepEqual(seen, [1, 2]);
    // Resuming from the newest id is no reset: nothing is replayed.
    const res = await fetch(`${fresh.url}/events?last_event_id=2`, {
      headers: authHeader(fresh),
      signal: AbortSignal.timeout(500),
    });
    const text = await readUntilTimeout(res);
    assert.doesNotMatch(text, /events_reset|^id:/m);
  } finally {
    await fresh.stop();
  }
});

// The body read until the request's timeout aborts it.
async function readUntilTimeout(res: Response): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
    }
  } catch {
    // the timeout ends the stream
  }
  return text;
}

test("events: a resume from another event log (a memory store started again) is announced and replays the new log", async () => {
  const port = await freePort();
  const args = ["--state-store", "memory", "--listen", `127.0.0.1:${port}`];
  const first = await startDaemon(args);
  const c1 = new HostClient(first);
  await c1.createJob({ config: { cmd: ["/no/such/cmd"] } }); // events 1, 2
  await c1.createJob({ config: { cmd: ["/no/such/cmd"] } }); // events 3, 4
  const oldLog = await eventLogOf(first);
  assert.equal(await first.stop(), 0);

  const second = await startDaemon(args);
  try {
    const c2 = new HostClient(second);
    for (let i = 0; i < 3; i++) {
      await c2.createJob({ config: { cmd: ["/no/such/cmd"] } }); // 1-6
    }
    const newLog = await eventLogOf(second);
    assert.notEqual(newLog, oldLog);
    // Event 4 of the old log is no event of this one, though 4 <= 6.
    const stale = await readEvents(second, `last_event_id=4&log=${oldLog}`);
    assert.match(
      stale,
      /^event: error\ndata: \{"code":"events_reset","message":"Event 4 is from another event log than this host's \(the log started again\); replaying all it keeps"\}$/m,
    );
    const past = await readEvents(second, "last_event_id=99");
    assert.match(
      past,
      /"message":"Event 99 is past this host's newest \(6\): its event log started again, or the number is wrong; replaying all it keeps"/,
    );
    assert.deepEqual(idsIn(stale), [1, 2, 3, 4, 5, 6]);
    // The same number in this log resumes after it.
    const same = await readEvents(second, `last_event_id=4&log=${newLog}`);
    assert.doesNotMatch(same, /events_reset/);
    assert.deepEqual(idsIn(same), [5, 6]);
  } finally {
    await second.stop();
  }
});

test("events: the typed client passes the event log back when it resumes", async () => {
  // A stand-in host that serves one event, ends the stream, and records
  // what each request asked for.
  const asked: string[] = [];
  const server = createServer((req, res) => {
    asked.push(req.url ?? "");
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "lorne-event-log": "0a1b2c",
    });
    const id = asked.length === 1 ? 5 : 6;
    res.end(`id: ${id}\nevent: create\ndata: ${JSON.stringify({ id })}\n\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const stub = new HostClient({
      url: `http://127.0.0.1:${port}`,
      token: "t",
    });
    const seen: number[] = [];
    for await (const event of stub.events({
      reconnect: { timeoutMs: 5_000 },
      signal: AbortSignal.timeout(5_000),
    })) {
      seen.push(event.id);
      if (event.id === 6) break;
    }
    assert.deepEqual(seen, [5, 6]);
    assert.equal(asked[0], "/events");
    assert.equal(asked[1], "/events?last_event_id=5&log=0a1b2c");
  } finally {
    server.close();
  }
});

async function eventLogOf(d: DaemonProcess): Promise<string> {
  const res = await fetch(`${d.url}/events`, {
    headers: authHeader(d),
    signal: AbortSignal.timeout(300),
  });
  await readUntilTimeout(res);
  return res.headers.get("lorne-event-log") as string;
}

async function readEvents(d: DaemonProcess, query: string): Promise<string> {
  const res = await fetch(`${d.url}/events?${query}`, {
    headers: authHeader(d),
    signal: AbortSignal.timeout(500),
  });
  return readUntilTimeout(res);
}

function idsIn(stream: string): number[] {
  return [...stream.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
}
