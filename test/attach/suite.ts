/**
 * The attach behaviours, written once and run against each backend: attach
 * before the job exists, big output intact, stdin round trips, TTY sizes,
 * several attachers, and the waiting timeout.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";

import { WebSocket } from "ws";

import { AttachConnection } from "../../src/host/attach/client.js";
import {
  decodeServer,
  encodeClient,
  type ExitPayload,
} from "../../src/host/attach/protocol.js";
import { ConflictError, ValidationError } from "../../src/errors.js";
import { HostClient } from "../../src/host/client.js";
import type { JobConfig } from "../../src/host/job.js";
import type { OutputStream } from "../../src/host/output.js";
import {
  authHeader,
  startDaemon,
  waitFor,
  type DaemonProcess,
} from "../helpers.js";

export interface AttachBackend {
  name: string;
  hostId: string;
  daemonArgs: string[];
  job(cmd: string[], extra?: Omit<JobConfig, "cmd">): JobConfig;
  /** Why TTY size tests cannot run on this backend here, or null. */
  ttyUnsupported: () => Promise<string | null>;
  cleanup?: () => Promise<void>;
}

interface Collected {
  stdout: Buffer[];
  stderr: Buffer[];
  eof: OutputStream[];
}

function collector(): Collected & {
  onData: (s: OutputStream, d: Buffer) => void;
  onEof: (s: OutputStream) => void;
  text: (s: OutputStream) => string;
} {
  const c: Collected = { stdout: [], stderr: [], eof: [] };
  return {
    ...c,
    onData: (s, d) => c[s].push(Buffer.from(d)),
    onEof: (s) => c.eof.push(s),
    text: (s) => Buffer.concat(c[s]).toString("utf8"),
  };
}

export function defineAttachSuite(backend: AttachBackend): void {
  let daemon: DaemonProcess;
  let client: HostClient;
  let n = 0;
  const nextId = () => `${backend.name}-attach-${++n}`;

  before(async () => {
    daemon = await startDaemon([
      "--id",
      backend.hostId,
      "--grace-ms",
      "1000",
      ...backend.daemonArgs,
    ]);
    client = new HostClient(daemon);
  });

  after(async () => {
    assert.equal(await daemon.stop(), 0);
    await backend.cleanup?.();
  });

  test(`${backend.name} attach: attached before creation, a job that prints at once loses nothing`, async () => {
    const id = nextId();
    const out = collector();
    let waiting = false;
    let created: Promise<unknown> | undefined;
    const conn = await AttachConnection.open(daemon, id, {
      onWaiting: () => {
        waiting = true;
        created = client.createJob({
          id,
          config: backend.job([
            "sh",
            "-c",
            "printf 'first byte'; printf oops >&2; exit 3",
          ]),
        });
      },
      onData: out.onData,
      onEof: out.onEof,
    });
    const exit = await conn.exit;
    await created;
    assert.equal(waiting, true);
    assert.equal(out.text("stdout"), "first byte");
    assert.equal(out.text("stderr"), "oops");
    assert.deepEqual(out.eof.sort(), ["stderr", "stdout"]);
    assert.deepEqual(exit, { status: "crashed", exit_status: 3, signal: null });
  });

  test(`${backend.name} attach: 50 MB of output arrives intact`, async () => {
    const id = nextId();
    const count = 6_500_000;
    const expected = createHash("sha256");
    let expectedBytes = 0;
    const lines: string[] = [];
    for (let i = 1; i <= count; i++) {
      lines.push(`${i}\n`);
      if (lines.length === 100_000 || i === count) {
        const chunk = lines.join("");
        expected.update(chunk);
        expectedBytes += chunk.length;
        lines.length = 0;
      }
    }
    const got = createHash("sha256");
    let gotBytes = 0;
    const conn = await AttachConnection.open(daemon, id, {
      onWaiting: () =>
        void client.createJob({
          id,
          config: backend.job(["seq", "1", String(count)]),
        }),
      onData: (_s, d) => {
        got.update(d);
        gotBytes += d.length;
      },
    });
    const exit = await conn.exit;
    assert.equal(exit?.status, "done");
    assert.ok(expectedBytes > 50_000_000);
    assert.equal(gotBytes, expectedBytes);
    assert.equal(got.digest("hex"), expected.digest("hex"));
  });

  test(`${backend.name} attach: stdin round trip, and closing stdin ends cat`, async () => {
    const id = nextId();
    await client.createJob({
      id,
      config: backend.job(["cat"], { stdin: true }),
    });
    const out = collector();
    const conn = await AttachConnection.open(daemon, id, {
      stdin: true,
      onData: out.onData,
    });
    await conn.write(Buffer.from("ping\n"));
    await waitFor(() => out.text("stdout") === "ping\n", "echo");
    await conn.write(Buffer.from("pong\n"));
    await waitFor(() => out.text("stdout") === "ping\npong\n", "second echo");
    conn.closeStdin();
    const exit = await conn.exit;
    assert.deepEqual(exit, { status: "done", exit_status: 0, signal: null });
  });

  test(`${backend.name} attach: stdin is refused for a job without config.stdin`, async () => {
    const id = nextId();
    await client.createJob({ id, config: backend.job(["sleep", "30"]) });
    try {
      await assert.rejects(AttachConnection.open(daemon, id, { stdin: true }), {
        message: `Cannot attach stdin: job "${id}" was created without config.stdin`,
      });
    } finally {
      await client.stopJob(id);
    }
  });

  test(`${backend.name} attach: a TTY job sees a terminal sized before and after start`, async (t) => {
    const why = await backend.ttyUnsupported();
    if (why) return t.skip(why);
    const id = nextId();
    const out = collector();
    const script = "stty size; read line; stty size";
    const conn = await AttachConnection.open(daemon, id, {
      stdin: true,
      rows: 33,
      cols: 101,
      onWaiting: () =>
        void client.createJob({
          id,
          config: backend.job(["sh", "-c", script], { stdin: true, tty: true }),
        }),
      onData: out.onData,
    });
    await waitFor(() => out.text("stdout").includes("33 101"), "first size");
    conn.resize(40, 120);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await conn.write(Buffer.from("\r"));
    const exit = await conn.exit;
    assert.equal(exit?.status, "done");
    assert.match(out.text("stdout"), /33 101\r\n[\s\S]*40 120\r\n/);
  });

  test(`${backend.name} attach: two attachers see all output; one leaving disturbs nobody`, async () => {
    const id = nextId();
    await client.createJob({
      id,
      config: backend.job([
        "sh",
        "-c",
        "i=0; while [ $i -lt 30 ]; do echo line $i; i=$((i+1)); sleep 0.02; done",
      ]),
    });
    const a = collector();
    const b = collector();
    const connA = await AttachConnection.open(daemon, id, {
      logs: true,
      onData: a.onData,
    });
    const connB = await AttachConnection.open(daemon, id, {
      logs: true,
      onData: b.onData,
    });
    await waitFor(() => b.text("stdout").includes("line 5\n"), "some output");
    connB.close();
    const exit = await connA.exit;
    assert.equal(exit?.status, "done");
    const expected = Array.from({ length: 30 }, (_, i) => `line ${i}\n`).join(
      "",
    );
    assert.equal(a.text("stdout"), expected);
    assert.ok(expected.startsWith(b.text("stdout")), "what B saw is a prefix");
    assert.equal((await client.getJob(id)).status, "done");
  });

  test(`${backend.name} attach: an attacher that stops reading holds up neither the job nor the host`, async () => {
    const id = nextId();
    const count = 3_000_000; // about 21 MB, more than the sockets buffer
    const expected = createHash("sha256");
    let expectedBytes = 0;
    for (let i = 1; i <= count; i += 100_000) {
      let block = "";
      for (let n = i; n < i + 100_000; n++) block += `${n}\n`;
      expected.update(block);
      expectedBytes += block.length;
    }
    const url = `${daemon.url.replace(/^http/, "ws")}/jobs/${id}/attach`;
    const ws = new WebSocket(url, { headers: authHeader(daemon) });
    const got = createHash("sha256");
    let gotBytes = 0;
    const frames: string[] = [];
    const exit = new Promise<ExitPayload>((resolve, reject) => {
      ws.on("error", reject);
      ws.on("message", (message: Buffer) => {
        const frame = decodeServer(message);
        if (frame.type === "waiting") {
          void client.createJob({
            id,
            config: backend.job(["seq", "1", String(count)]),
          });
        } else if (frame.type === "success") {
          ws.pause(); // read nothing more until the job has ended
        } else if (frame.type === "data") {
          got.update(frame.data);
          gotBytes += frame.data.length;
        } else if (frame.type === "eof") {
          frames.push(`eof ${frame.stream}`);
        } else if (frame.type === "exit") {
          resolve(frame.exit);
        } else {
          reject(new Error(`Unexpected ${frame.type} frame`));
        }
      });
    });
    await waitFor(
      async () =>
        (await client.getJob(id).catch(() => null))?.status === "done",
      "the job to end while its attacher reads nothing",
    );
    assert.ok(gotBytes < expectedBytes, "the attacher was still behind");
    ws.resume();
    assert.deepEqual(await exit, {
      status: "done",
      exit_status: 0,
      signal: null,
    });
    assert.equal(gotBytes, expectedBytes);
    assert.equal(got.digest("hex"), expected.digest("hex"));
    assert.deepEqual(frames, ["eof stdout", "eof stderr"]);
    ws.close();
  });

  test(`${backend.name} attach: a stdout-only replay skips stderr and keeps order`, async () => {
    const id = nextId();
    await client.createJob({
      id,
      config: backend.job([
        "sh",
        "-c",
        "i=1; while [ $i -le 200 ]; do echo out $i; echo err $i >&2; i=$((i+1)); done",
      ]),
    });
    await waitFor(
      async () => (await client.getJob(id)).status === "done",
      "job end",
    );
    const out = collector();
    const conn = await AttachConnection.open(daemon, id, {
      logs: true,
      stderr: false,
      onData: out.onData,
      onEof: out.onEof,
    });
    assert.equal((await conn.exit)?.status, "done");
    const expected = Array.from({ length: 200 }, (_, i) => `out ${i + 1}\n`);
    assert.equal(out.text("stdout"), expected.join(""));
    assert.equal(out.text("stderr"), "");
    assert.deepEqual(out.eof, ["stdout"]);
  });

  test(`${backend.name} attach: an ended job replays its logs and ends with exit`, async () => {
    const id = nextId();
    await client.createJob({
      id,
      config: backend.job(["sh", "-c", "echo done-job; exit 4"]),
    });
    await waitFor(
      async () => (await client.getJob(id)).status === "crashed",
      "job end",
    );
    const out = collector();
    const conn = await AttachConnection.open(daemon, id, {
      logs: true,
      onData: out.onData,
    });
    assert.deepEqual(await conn.exit, {
      status: "crashed",
      exit_status: 4,
      signal: null,
    });
    assert.equal(out.text("stdout"), "done-job\n");
  });

  test(`${backend.name} attach: a waiting attacher gives up, and the job starts anyway`, async () => {
    const id = nextId();
    await assert.rejects(AttachConnection.open(daemon, id, { waitMs: 200 }), {
      message: `Job "${id}" did not appear within 200 ms`,
    });
    const job = await client.createJob({ id, config: backend.job(["true"]) });
    assert.equal(job.status, "running");
    const never = `${id}-never`;
    const started = Date.now();
    await assert.rejects(
      AttachConnection.open(daemon, never, { waitMs: 300 }),
      /did not appear within 300 ms/,
    );
    assert.ok(Date.now() - started >= 290);
  });

  test(`${backend.name} attach: bad flags are refused before the upgrade`, async () => {
    await assert.rejects(
      AttachConnection.open(daemon, "x", { rows: 10 }),
      (err: unknown) => {
        assert.ok(err instanceof ValidationError);
        assert.equal(err.field, "height");
        assert.equal(err.message, "Invalid size: give both height and width");
        return true;
      },
    );
    await assert.rejects(
      AttachConnection.open(daemon, "x", { waitMs: -1 }),
      /Invalid wait_ms "-1"/,
    );
  });

  test(`${backend.name} attach: input sent while waiting for the job is applied once it runs`, async () => {
    const id = nextId();
    const url = `${daemon.url.replace(/^http/, "ws")}/jobs/${id}/attach?stdin=1`;
    const ws = new WebSocket(url, { headers: authHeader(daemon) });
    let output = "";
    const exit = new Promise<ExitPayload>((resolve, reject) => {
      ws.on("error", reject);
      ws.on("message", (message: Buffer) => {
        const frame = decodeServer(message);
        if (frame.type === "waiting") {
          ws.send(
            encodeClient({ type: "stdin", data: Buffer.from("early\n") }),
          );
          void client.createJob({
            id,
            config: backend.job(["cat"], { stdin: true }),
          });
        } else if (frame.type === "success") {
          ws.send(encodeClient({ type: "stdin", data: Buffer.from("late\n") }));
          ws.send(encodeClient({ type: "stdin_close" }));
        } else if (frame.type === "data") {
          output += frame.data.toString();
        } else if (frame.type === "exit") {
          resolve(frame.exit);
        } else if (frame.type === "error") {
          reject(new Error(frame.message));
        }
      });
    });
    assert.deepEqual(await exit, {
      status: "done",
      exit_status: 0,
      signal: null,
    });
    assert.equal(output, "early\nlate\n");
    ws.close();
  });

  test(`${backend.name} attach: a client that floods stdin is slowed, not buffered by the host`, async () => {
    const id = nextId();
    await client.createJob({
      id,
      config: backend.job(["sleep", "60"], { stdin: true }),
    });
    try {
      const conn = await AttachConnection.open(daemon, id, { stdin: true });
      const rss = () => {
        const status = readFileSync(`/proc/${daemon.child.pid}/status`, "utf8");
        return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
      };
      const before = rss();
      const chunk = Buffer.alloc(1024 * 1024, 120);
      // 64 MiB offered to a job that never reads its stdin.
      const writes = Array.from({ length: 64 }, () => conn.write(chunk));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const grown = rss() - before;
      assert.ok(grown < 32 * 1024 * 1024, `host grew by ${grown} bytes`);
      conn.close();
      void Promise.all(writes);
    } finally {
      await client.stopJob(id);
    }
  });

  test(`${backend.name} attach: requireWaiting refuses a job that exists already`, async () => {
    const id = nextId();
    await client.createJob({ id, config: backend.job(["sleep", "30"]) });
    try {
      await assert.rejects(
        AttachConnection.open(daemon, id, { requireWaiting: true }),
        (err: unknown) => {
          // A 409 before the upgrade: the client sees a conflict.
          assert.ok(err instanceof ConflictError, String(err));
          assert.equal(
            err.message,
            `Cannot create job "${id}": it exists already`,
          );
          return true;
        },
      );
    } finally {
      await client.stopJob(id);
    }
  });

  test(`${backend.name} attach: a malformed id in the path is a 400`, async () => {
    const res = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(
        `${daemon.url.replace(/^http/, "ws")}/jobs/%ZZ/attach`,
        { headers: authHeader(daemon) },
      );
      ws.on("unexpected-response", (_req, r) => resolve(r.statusCode ?? 0));
      ws.on("open", () => reject(new Error("upgraded")));
      ws.on("error", () => undefined);
    });
    assert.equal(res, 400);
  });
}
