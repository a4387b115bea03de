/**
 * Conformance, part one: what a job does through the HTTP API, the same on
 * every backend. One daemon serves every test here; each test starts and
 * ends its own jobs.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import {
  ConflictError,
  NotFoundError,
  ValidationError,
} from "../../src/errors.js";
import { HostClient } from "../../src/host/client.js";
import type { JobEvent } from "../../src/host/events.js";
import type { JobRecord } from "../../src/host/job.js";
import {
  authHeader,
  readText,
  startDaemon,
  waitFor,
  type DaemonProcess,
} from "../helpers.js";
import { assertEnv, parseEnv, type BackendUnderTest } from "./backend.js";

const GRACE_MS = 500;

// Decodes output.idx: u8 stream (1 stdout, 2 stderr), u32 BE length.
function indexRecords(index: Buffer): { stream: number; bytes: number }[] {
  assert.equal(index.length % 5, 0, "whole records");
  const records = [];
  for (let at = 0; at < index.length; at += 5) {
    records.push({
      stream: index.readUInt8(at),
      bytes: index.readUInt32BE(at + 1),
    });
  }
  return records;
}
const FINAL = ["done", "crashed", "stopped", "failed"];

/** Registers the job tests for one backend; see the module comment. */
export function defineJobTests(backend: BackendUnderTest): void {
  const { job, hostId } = backend;
  const first = backend.firstPort;
  // Fixed ids would clash between runs sharing one Docker engine.
  const suffix = randomBytes(3).toString("hex");
  let daemon: DaemonProcess;
  let client: HostClient;
  const started: JobRecord[] = [];

  before(async () => {
    daemon = await startDaemon(
      [
        ...backend.daemonArgs,
        "--grace-ms",
        String(GRACE_MS),
        "--external",
        "10.1.2.3",
        "--ports",
        `${first}-${first + 99}`,
      ],
      { id: hostId },
    );
    client = new HostClient(daemon);
  });

  after(async () => {
    assert.equal(await daemon.stop(), 0);
    for (const record of started) {
      assert.equal(await backend.isGone(record, hostId), true, record.id);
    }
  });

  async function create(spec: Parameters<HostClient["createJob"]>[0]) {
    const record = await client.createJob(spec);
    started.push(record);
    return record;
  }

  async function finalOf(id: string): Promise<JobRecord> {
    return waitFor(
      async () => {
        const record = await client.getJob(id);
        return FINAL.includes(record.status) && record;
      },
      `job ${id} to end`,
      20_000,
    );
  }

  test("api: GET /host describes the host", async () => {
    const info = await client.host();
    assert.equal(info.id, hostId);
    assert.equal(info.backend, backend.name);
    assert.equal(info.external_ip, "10.1.2.3");
    assert.deepEqual(info.ports.range, { min: first, max: first + 99 });
  });

  test("api: a job that exits 0 is done, with its output captured", async () => {
    const created = await create({
      config: job(["sh", "-c", "echo hello; echo oops >&2"]),
    });
    assert.equal(created.status, "running");
    if (backend.reportsPid) assert.ok(created.pid);
    const ended = await waitFor(async () => {
      const j = await client.getJob(created.id);
      return j.status === "done" && j;
    }, "job done");
    assert.equal(ended.exit_status, 0);
    assert.equal(ended.signal, null);
    assert.ok(ended.ended_at);
    const id = created.id;
    assert.equal(
      await readText(client.logs(id, { stream: "stdout" })),
      "hello\n",
    );
    assert.equal(
      await readText(client.logs(id, { stream: "stderr" })),
      "oops\n",
    );
    const both = backend.ordersStreams
      ? ["hello\noops\n"]
      : ["hello\noops\n", "oops\nhello\n"];
    assert.ok(both.includes(await readText(client.logs(id))));
    const dir = join(daemon.stateDir, "jobs", id);
    assert.equal(readFileSync(join(dir, "stdout.log"), "utf8"), "hello\n");
    assert.equal(readFileSync(join(dir, "stderr.log"), "utf8"), "oops\n");
    // Each byte is stored once: the index says which stream each chunk
    // came from, in arrival order, and there is no combined file.
    assert.equal(existsSync(join(dir, "output")), false);
    const records = indexRecords(readFileSync(join(dir, "output.idx")));
    const total = (id: number) =>
      records.filter((r) => r.stream === id).reduce((n, r) => n + r.bytes, 0);
    assert.deepEqual([total(1), total(2)], [6, 5]);
    if (backend.ordersStreams) {
      const order = records.map((r) => r.stream);
      assert.deepEqual(order, [...order].sort(), "stdout before stderr");
    }
    assert.equal(await backend.isGone(ended, hostId), true);
  });

  test("api: a job that ends at once did not end before it started", async () => {
    for (let i = 0; i < 5; i++) {
      const created = await create({ config: job(["true"]) });
      const ended = await finalOf(created.id);
      assert.equal(ended.status, "done");
      const startedAt = Date.parse(ended.started_at as string);
      const endedAt = Date.parse(ended.ended_at as string);
      assert.ok(
        startedAt <= endedAt,
        `started_at ${ended.started_at} is after ended_at ${ended.ended_at}`,
      );
    }
  });

  test("api: non-zero exit is crashed with the exit status", async () => {
    const created = await create({ config: job(["sh", "-c", "exit 7"]) });
    const ended = await finalOf(created.id);
    assert.equal(ended.status, "crashed");
    assert.equal(ended.exit_status, 7);
    assert.equal(ended.signal, null);
  });

  test("api: death by an unrequested signal is crashed with a null exit status", async () => {
    const created = await create({
      config: job(["sh", "-c", "kill -KILL $$"]),
    });
    const ended = await finalOf(created.id);
    assert.equal(ended.status, "crashed");
    assert.equal(ended.exit_status, null);
    assert.equal(ended.signal, "SIGKILL");
  });

  test("api: a command that does not exist fails with the reason", async () => {
    const created = await create({
      config: job(["/no/such/lorne-binary"]),
    });
    if (backend.missingCommand === "failed") {
      assert.equal(created.status, "failed");
      assert.equal(created.exit_status, null);
      assert.match(
        created.error ?? "",
        /Cannot start "\/no\/such\/lorne-binary": command not found/,
      );
    } else {
      const ended = await finalOf(created.id);
      assert.equal(ended.status, "crashed");
      assert.equal(ended.exit_status, 127);
      assert.match(
        ended.error ?? "",
        /^Cannot start command: exec \/no\/such\/lorne-binary failed: No such file or directory$/,
      );
    }
    assert.equal(await backend.isGone(created, hostId), true);
  });

  test("api: stop sends SIGTERM and the job ends stopped", async () => {
    const created = await create({ config: job(["sleep", "60"]) });
    assert.equal(await backend.isGone(created, hostId), false);
    const stopped = await client.stopJob(created.id);
    assert.equal(stopped.status, "stopped");
    assert.equal(stopped.signal, "SIGTERM");
    assert.equal(stopped.exit_status, null);
    assert.equal(await backend.isGone(stopped, hostId), true);
    // Idempotent: a second stop returns the same final record.
    assert.deepEqual(await client.stopJob(created.id), stopped);
  });

  test("api: stop escalates to SIGKILL after the grace period", async () => {
    const created = await create({
      config: job(["sh", "-c", "trap '' TERM; echo ready; sleep 60"]),
    });
    await waitFor(
      async () => (await readText(client.logs(created.id))) === "ready\n",
      "trap set",
    );
    const startedAt = Date.now();
    const stopped = await client.stopJob(created.id);
    assert.equal(stopped.status, "stopped");
    assert.equal(stopped.signal, "SIGKILL");
    assert.equal(stopped.exit_status, null);
    assert.ok(Date.now() - startedAt >= GRACE_MS - 50, "waited for grace");
    assert.equal(await backend.isGone(stopped, hostId), true);
  });

  test("api: ports are allocated, passed in the env, and returned when the job ends", async () => {
    const before = (await client.host()).ports.used;
    const created = await create({
      config: job(["sh", "-c", 'echo "$PORT $PORT_0 $PORT_1"; sleep 60'], {
        tcp_ports: 2,
      }),
    });
    assert.equal(created.ports.length, 2);
    const [p0, p1] = created.ports as [number, number];
    assert.notEqual(p0, p1);
    assert.ok(p0 >= first && p0 <= first + 99, `${p0} in range`);
    assert.ok(p1 >= first && p1 <= first + 99, `${p1} in range`);
    await waitFor(
      async () =>
        (await readText(client.logs(created.id))) === `${p0} ${p0} ${p1}\n`,
      "ports echoed",
    );
    assert.equal((await client.host()).ports.used, before + 2);
    await client.stopJob(created.id);
    assert.equal((await client.host()).ports.used, before);
  });

  test("api: the job environment is clean and complete", async () => {
    const id = `env-check-${suffix}`;
    const created = await create({
      id,
      config: job(["env"], { env: { GREETING: "hi there" }, tcp_ports: 1 }),
    });
    await finalOf(id);
    const port = String(created.ports[0]);
    assertEnv(parseEnv(await readText(client.logs(id))), {
      ...backend.baseEnv,
      GREETING: "hi there",
      PORT: port,
      PORT_0: port,
      EXTERNAL_IP: "10.1.2.3",
      LORNE_JOB_ID: id,
      LORNE_HOST_ID: hostId,
    });
  });

  test("api: config.env may set PATH but not what the host assigns", async () => {
    const id = `env-override-${suffix}`;
    const created = await create({
      id,
      config: job(["env"], {
        env: { PATH: "/bin:/usr/bin:/lorne-custom" },
        tcp_ports: 1,
      }),
    });
    await finalOf(id);
    const port = String(created.ports[0]);
    assertEnv(parseEnv(await readText(client.logs(id))), {
      ...backend.baseEnv,
      PATH: "/bin:/usr/bin:/lorne-custom",
      PORT: port,
      PORT_0: port,
      EXTERNAL_IP: "10.1.2.3",
      LORNE_JOB_ID: id,
      LORNE_HOST_ID: hostId,
    });

    const reserved = [
      "PORT",
      "PORT_3",
      "EXTERNAL_IP",
      "LORNE_JOB_ID",
      "LORNE_HOST_ID",
    ];
    for (const name of reserved) {
      await assert.rejects(
        client.createJob({ config: job(["env"], { env: { [name]: "x" } }) }),
        (err: unknown) => {
          assert.ok(err instanceof ValidationError, name);
          assert.equal(err.field, `config.env.${name}`);
          assert.equal(
            err.message,
            `Invalid config.env.${name}: the host sets it`,
          );
          return true;
        },
      );
    }
  });

  test("api: errors are JSON with a code and the status from one mapping", async () => {
    const dup = `dup-${suffix}`;
    await assert.rejects(client.getJob("nope"), NotFoundError);
    await assert.rejects(
      client.createJob({ config: { cmd: [] } }),
      (err: unknown) => {
        assert.ok(err instanceof ValidationError);
        assert.equal(err.field, "config.cmd");
        return true;
      },
    );
    await create({ id: dup, config: job(["true"]) });
    await assert.rejects(
      client.createJob({ id: dup, config: job(["true"]) }),
      ConflictError,
    );

    const body = (config: Record<string, unknown> = {}, id?: string) =>
      JSON.stringify({ id, config: { ...job(["ls"]), ...config } });
    const cases: [string, string, string | undefined, number, string][] = [
      ["POST", "/jobs", "{not json", 400, "validation_error"],
      ["POST", "/jobs", "", 400, "validation_error"],
      ["POST", "/jobs", body({ tcp_ports: "2" }), 400, "validation_error"],
      ["PUT", "/jobs/a%2Fb", body({}), 400, "validation_error"],
      ["PUT", "/jobs/x1", body({}, "x2"), 400, "validation_error"],
      ["GET", "/nowhere", undefined, 404, "not_found"],
      ["PATCH", "/jobs", undefined, 405, "method_not_allowed"],
      [
        "GET",
        `/jobs/${dup}/logs?stream=both`,
        undefined,
        400,
        "validation_error",
      ],
      ["GET", "/events?last_event_id=abc", undefined, 400, "validation_error"],
      [
        "GET",
        `/jobs/${dup}/logs?follow=maybe`,
        undefined,
        400,
        "validation_error",
      ],
    ];
    for (const [method, path, payload, status, code] of cases) {
      const res = await fetch(daemon.url + path, {
        method,
        body: payload,
        headers: {
          ...authHeader(daemon),
          ...(payload === undefined
            ? {}
            : { "content-type": "application/json" }),
        },
      });
      assert.equal(res.status, status, `${method} ${path}`);
      const json = (await res.json()) as { code: string; message: string };
      assert.equal(json.code, code, `${method} ${path}`);
      assert.ok(json.message.length > 0);
    }
    const flag = await fetch(`${daemon.url}/jobs/${dup}/logs?follow=maybe`, {
      headers: authHeader(daemon),
    });
    assert.equal(
      ((await flag.json()) as { message: string }).message,
      'Invalid follow "maybe": expected 1, true or yes (or nothing) for on, 0, false or no for off',
    );
  });

  test("api: followed logs carry output as it is written and end with the job", async () => {
    const created = await create({
      config: job([
        "sh",
        "-c",
        "for i in 1 2 3; do echo line $i; sleep 0.1; done",
      ]),
    });
    const chunks: string[] = [];
    for await (const chunk of client.logs(created.id, { follow: true })) {
      chunks.push(Buffer.from(chunk).toString());
    }
    assert.equal(chunks.join(""), "line 1\nline 2\nline 3\n");
    assert.ok(chunks.length >= 2, "arrived in more than one piece");
    assert.equal((await client.getJob(created.id)).status, "done");
  });

  test("api: events arrive in order per job and resume after Last-Event-ID", async () => {
    const created = await create({ config: job(["true"]) });
    await finalOf(created.id);
    const controller = new AbortController();
    const seen: JobEvent[] = [];
    try {
      for await (const event of client.events({
        job: created.id,
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
    const [create0, start] = seen as [JobEvent, JobEvent];
    assert.ok(create0.id < start.id);

    // Resuming after the first event replays only what came later.
    const res = await fetch(`${daemon.url}/events?job=${created.id}`, {
      headers: { ...authHeader(daemon), "last-event-id": String(create0.id) },
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let raw = "";
    while (!raw.includes("event: stop")) {
      const { value } = await reader.read();
      raw += Buffer.from(value as Uint8Array).toString();
    }
    await reader.cancel();
    assert.doesNotMatch(raw, /event: create/);
    assert.match(raw, new RegExp(`id: ${start.id}\nevent: start\ndata: `));
  });
}
