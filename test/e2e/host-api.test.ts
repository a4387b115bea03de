/**
 * End to end: a real `lorne host` daemon, real jobs, driven through the
 * HTTP API with the typed client and raw requests.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import {
  ConflictError,
  NotFoundError,
  ValidationError,
} from "../../src/errors.js";
import { HostClient } from "../../src/host/client.js";
import type { JobEvent } from "../../src/host/events.js";
import {
  isAlive,
  startDaemon,
  waitFor,
  type DaemonProcess,
} from "../helpers.js";

let daemon: DaemonProcess;
let client: HostClient;

before(async () => {
  daemon = await startDaemon([
    "--grace-ms",
    "500",
    "--external",
    "10.1.2.3",
    "--ports",
    "57000-57099",
  ]);
  client = new HostClient(daemon.url);
});

after(async () => {
  assert.equal(await daemon.stop(), 0);
});

test("api: GET /host describes the host", async () => {
  const info = await client.host();
  assert.equal(info.id, "test-host");
  assert.equal(info.backend, "process");
  assert.equal(info.external_ip, "10.1.2.3");
  assert.deepEqual(info.ports.range, { min: 57000, max: 57099 });
});

test("api: a job that exits 0 is done, with its output captured", async () => {
  const job = await client.createJob({
    config: { cmd: ["sh", "-c", "echo hello; echo oops >&2"] },
  });
  assert.equal(job.status, "running");
  assert.ok(job.pid);
  const ended = await waitFor(async () => {
    const j = await client.getJob(job.id);
    return j.status === "done" && j;
  }, "job done");
  assert.equal(ended.exit_status, 0);
  assert.equal(ended.signal, null);
  assert.ok(ended.ended_at);
  assert.equal(
    await text(client.logs(job.id, { stream: "stdout" })),
    "hello\n",
  );
  assert.equal(await text(client.logs(job.id, { stream: "stderr" })), "oops\n");
  assert.equal(await text(client.logs(job.id)), "hello\noops\n");
  const dir = join(daemon.stateDir, "jobs", job.id);
  assert.equal(readFileSync(join(dir, "stdout.log"), "utf8"), "hello\n");
  assert.equal(readFileSync(join(dir, "stderr.log"), "utf8"), "oops\n");
});

test("api: non-zero exit is crashed with the exit status", async () => {
  const job = await client.createJob({
    config: { cmd: ["sh", "-c", "exit 7"] },
  });
  const ended = await finalOf(job.id);
  assert.equal(ended.status, "crashed");
  assert.equal(ended.exit_status, 7);
});

test("api: death by an unrequested signal is crashed with a null exit status", async () => {
  const job = await client.createJob({
    config: { cmd: ["sh", "-c", "kill -KILL $$"] },
  });
  const ended = await finalOf(job.id);
  assert.equal(ended.status, "crashed");
  assert.equal(ended.exit_status, null);
  assert.equal(ended.signal, "SIGKILL");
});

test("api: a command that does not exist fails with the reason", async () => {
  const job = await client.createJob({
    config: { cmd: ["/no/such/lorne-binary"] },
  });
  assert.equal(job.status, "failed");
  assert.equal(job.exit_status, null);
  assert.match(
    job.error ?? "",
    /Cannot start "\/no\/such\/lorne-binary": command not found/,
  );
});

test("api: stop sends SIGTERM and the job ends stopped", async () => {
  const job = await client.createJob({ config: { cmd: ["sleep", "60"] } });
  const pid = job.pid as number;
  const stopped = await client.stopJob(job.id);
  assert.equal(stopped.status, "stopped");
  assert.equal(stopped.signal, "SIGTERM");
  assert.equal(stopped.exit_status, null);
  assert.equal(isAlive(pid), false);
  // Idempotent: a second stop returns the same final record.
  assert.deepEqual(await client.stopJob(job.id), stopped);
});

test("api: stop escalates to SIGKILL after the grace period", async () => {
  const job = await client.createJob({
    config: { cmd: ["sh", "-c", "trap '' TERM; echo ready; sleep 60"] },
  });
  await waitFor(
    async () => (await text(client.logs(job.id))) === "ready\n",
    "trap set",
  );
  const started = Date.now();
  const stopped = await client.stopJob(job.id);
  assert.equal(stopped.status, "stopped");
  assert.equal(stopped.signal, "SIGKILL");
  assert.ok(Date.now() - started >= 450, "waited for the grace period");
});

test("api: ports are allocated, passed in the env, and returned when the job ends", async () => {
  const before = (await client.host()).ports.used;
  const job = await client.createJob({
    config: {
      cmd: ["sh", "-c", 'echo "$PORT $PORT_0 $PORT_1"; sleep 60'],
      tcp_ports: 2,
    },
  });
  assert.equal(job.ports.length, 2);
  const [p0, p1] = job.ports;
  assert.notEqual(p0, p1);
  assert.ok((p0 as number) >= 57000 && (p0 as number) <= 57099);
  await waitFor(
    async () => (await text(client.logs(job.id))) === `${p0} ${p0} ${p1}\n`,
    "ports echoed",
  );
  assert.equal((await client.host()).ports.used, before + 2);
  await client.stopJob(job.id);
  assert.equal((await client.host()).ports.used, before);
});

test("api: the job environment is clean and complete", async () => {
  const job = await client.createJob({
    id: "env-check",
    config: { cmd: ["env"], env: { GREETING: "hi there" }, tcp_ports: 1 },
  });
  await finalOf(job.id);
  const env = Object.fromEntries(
    (await text(client.logs(job.id)))
      .trim()
      .split("\n")
      .map((line) => {
        const eq = line.indexOf("=");
        return [line.slice(0, eq), line.slice(eq + 1)] as const;
      }),
  );
  const port = String(job.ports[0]);
  assert.deepEqual(env, {
    PATH: process.env.PATH,
    GREETING: "hi there",
    PORT: port,
    PORT_0: port,
    EXTERNAL_IP: "10.1.2.3",
    LORNE_JOB_ID: "env-check",
    LORNE_HOST_ID: "test-host",
  });
});

test("api: errors are JSON with a code and the status from one mapping", async () => {
  await assert.rejects(client.getJob("nope"), NotFoundError);
  await assert.rejects(
    client.createJob({ config: { cmd: [] } }),
    (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(err.field, "config.cmd");
      return true;
    },
  );
  await client.createJob({ id: "dup", config: { cmd: ["true"] } });
  await assert.rejects(
    client.createJob({ id: "dup", config: { cmd: ["true"] } }),
    ConflictError,
  );

  const cases: [string, string, string | undefined, number, string][] = [
    ["POST", "/jobs", "{not json", 400, "validation_error"],
    ["POST", "/jobs", "", 400, "validation_error"],
    [
      "POST",
      "/jobs",
      '{"config":{"cmd":["ls"],"tcp_ports":"2"}}',
      400,
      "validation_error",
    ],
    [
      "PUT",
      "/jobs/a%2Fb",
      '{"config":{"cmd":["ls"]}}',
      400,
      "validation_error",
    ],
    [
      "PUT",
      "/jobs/x1",
      '{"id":"x2","config":{"cmd":["ls"]}}',
      400,
      "validation_error",
    ],
    ["GET", "/nowhere", undefined, 404, "not_found"],
    ["PATCH", "/jobs", undefined, 404, "not_found"],
    ["GET", "/jobs/dup/logs?stream=both", undefined, 400, "validation_error"],
    ["GET", "/events?last_event_id=abc", undefined, 400, "validation_error"],
  ];
  for (const [method, path, body, status, code] of cases) {
    const res = await fetch(daemon.url + path, {
      method,
      body,
      headers: body === undefined ? {} : { "content-type": "application/json" },
    });
    assert.equal(res.status, status, `${method} ${path}`);
    const json = (await res.json()) as { code: string; message: string };
    assert.equal(json.code, code, `${method} ${path}`);
    assert.ok(json.message.length > 0);
  }
});

test("api: followed logs carry output as it is written and end with the job", async () => {
  const job = await client.createJob({
    config: {
      cmd: ["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.1; done"],
    },
  });
  const chunks: string[] = [];
  for await (const chunk of client.logs(job.id, { follow: true })) {
    chunks.push(Buffer.from(chunk).toString());
  }
  assert.equal(chunks.join(""), "line 1\nline 2\nline 3\n");
  assert.ok(chunks.length >= 2, "arrived in more than one piece");
});

test("api: events arrive in order per job and resume after Last-Event-ID", async () => {
  const job = await client.createJob({ config: { cmd: ["true"] } });
  await finalOf(job.id);
  const controller = new AbortController();
  const seen: JobEvent[] = [];
  try {
    for await (const event of client.events({
      job: job.id,
      after: 0,
      signal: controller.signal,
    })) {
      seen.push(event);
      if (event.event === "stop") break;
    }
  } finally {
    controller.abort();
  }
  assert.deepEqual(
    seen.map((e) => [e.event, e.job.status]),
    [
      ["create", "starting"],
      ["start", "running"],
      ["stop", "done"],
    ],
  );
  assert.ok((seen[0] as JobEvent).id < (seen[1] as JobEvent).id);

  // Resuming after the first event replays only what came later.
  const res = await fetch(`${daemon.url}/events?job=${job.id}`, {
    headers: { "last-event-id": String((seen[0] as JobEvent).id) },
  });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  let raw = "";
  while (!raw.includes("event: stop")) {
    const { value } = await reader.read();
    raw += Buffer.from(value as Uint8Array).toString();
  }
  await reader.cancel();
  assert.doesNotMatch(raw, /event: create/);
  assert.match(
    raw,
    new RegExp(`id: ${(seen[1] as JobEvent).id}\nevent: start\ndata: `),
  );
});

async function finalOf(id: string) {
  return waitFor(async () => {
    const job = await client.getJob(id);
    return ["done", "crashed", "stopped", "failed"].includes(job.status) && job;
  }, `job ${id} to end`);
}

async function text(chunks: AsyncIterable<Uint8Array>): Promise<string> {
  let out = "";
  for await (const chunk of chunks) out += Buffer.from(chunk).toString();
  return out;
}
