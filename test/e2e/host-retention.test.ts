/**
 * End to end: a real `lorne host` forgets ended jobs. Past the retention
 * period (or beyond the count bound, oldest first) a job leaves GET /jobs,
 * host.db and the disk, while running and younger jobs stay; `0` keeps
 * them all; `lorne rm` removes an ended job at once and refuses a running
 * one; readers of a job removed under them read on to its end; a restart
 * clears what a crash in the middle of a removal left; bad values of the
 * flags and config keys exit 2 naming them.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { request, type IncomingMessage } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";

import Database from "better-sqlite3";
import { WebSocket } from "ws";

import {
  decodeServer,
  type ServerFrame,
} from "../../src/host/attach/protocol.js";
import { HostClient } from "../../src/host/client.js";
import type { JobRecord } from "../../src/host/job.js";
import {
  authHeader,
  cliEnv,
  LORNE,
  ROOT,
  runLorne,
  startDaemon,
  tempDir,
  waitFor,
  type DaemonProcess,
} from "../helpers.js";

/** Generous for a loaded 2-core machine; every wait is on a condition. */
const WAIT_MS = 45_000;

test("retention: jobs ended longer than the retention leave GET /jobs, host.db and disk; running ones stay; an id comes back", async () => {
  const dir = tempDir();
  const config = join(dir.path, "host.json");
  writeFileSync(config, JSON.stringify({ ended_retention: "1s" }));
  const daemon = await startDaemon(["--config", config]);
  const client = new HostClient(daemon);
  try {
    await client.createJob({
      id: "sleeper",
      config: { cmd: ["sh", "-c", "echo up; sleep 60"] },
    });
    await client.createJob({ id: "quick", config: { cmd: ["echo", "hi"] } });

    await waitFor(
      async () => !(await client.listJobs()).some((j) => j.id === "quick"),
      "quick to be removed",
      WAIT_MS,
    );
    await assert.rejects(client.getJob("quick"), { code: "not_found" });
    assert.equal(existsSync(jobDir(daemon, "quick")), false);
    await waitFor(
      () => trashEntries(daemon).length === 0,
      "the trash",
      WAIT_MS,
    );
    await logLine(
      daemon,
      /at=removed_ended job\.id=quick status=done ended_for=\d+(\.\d+)?s reason=retention/,
    );
    assert.equal((await client.getJob("sleeper")).status, "running");
    assert.equal(existsSync(jobDir(daemon, "sleeper")), true);
    const metrics = await scrape(daemon);
    assert.equal(metrics.get('lorne_host_jobs{status="done"}'), 0);
    assert.equal(metrics.get('lorne_host_jobs{status="running"}'), 1);

    // The id is free again, and the new job's output is its own.
    await client.createJob({
      id: "quick",
      config: { cmd: ["sh", "-c", "echo again; sleep 60"] },
    });
    await waitFor(
      async () => (await readLogs(client, "quick")) === "again\n",
      "the new quick's output",
      WAIT_MS,
    );
    assert.equal(await daemon.stop(), 0);

    const db = new Database(join(daemon.stateDir, "host.db"), {
      readonly: true,
    });
    try {
      const rows = db.prepare("SELECT record FROM jobs ORDER BY seq").all();
      const records = (rows as { record: string }[]).map(
        (row) => JSON.parse(row.record) as JobRecord,
      );
      assert.deepEqual(
        records.map((r) => [r.id, r.config.cmd?.at(-1)]),
        [
          ["sleeper", "echo up; sleep 60"],
          ["quick", "echo again; sleep 60"],
        ],
      );
    } finally {
      db.close();
    }
  } finally {
    await daemon.stop();
    dir.remove();
  }
});

test("retention: a restart removes what ended before the retention, keeps the younger, 0 keeps all, and clears a removal a crash cut short", async () => {
  const first = await startDaemon();
  const stateDir = first.stateDir;
  const daemons: DaemonProcess[] = [first];
  try {
    let client = new HostClient(first);
    for (const id of ["old1", "old2", "young", "bare"]) {
      await client.createJob({ id, config: { cmd: ["echo", id] } });
      await waitFor(
        async () => (await client.getJob(id)).status === "done",
        `${id} to end`,
        WAIT_MS,
      );
    }
    assert.equal(await first.stop(), 0);
    backdateEnd(stateDir, ["old1", "old2"], 2 * 86_400_000);
    // A crash after a record was deleted, before its directory was: the
    // directory waits in the trash. One before the record was deleted:
    // the record has no directory.
    mkdirSync(join(stateDir, "removed", "gone.1234.1"), { recursive: true });
    writeFileSync(join(stateDir, "removed", "gone.1234.1", "stdout.log"), "x");
    rmSync(join(stateDir, "jobs", "bare"), { recursive: true });

    // 0 keeps every ended job, however old, and --ended-max too.
    const keeping = await startDaemon(
      ["--ended-retention", "0", "--ended-max", "1"],
      { stateDir },
    );
    daemons.push(keeping);
    client = new HostClient(keeping);
    assert.deepEqual(ids(await client.listJobs()), [
      "old1",
      "old2",
      "young",
      "bare",
    ]);
    assert.match(
      keeping.lines.join("\n"),
      /fn=retention at=start ended_retention=forever ended_max=none trash_emptied=1/,
    );
    assert.deepEqual(trashEntries(keeping), []);
    assert.equal(existsSync(jobDir(keeping, "old1")), true);
    // A record without its directory: no output, and it can be removed.
    await assert.rejects(readLogs(client, "bare"), { code: "not_found" });
    assert.equal((await client.getJob("bare")).status, "done");
    assert.equal(await keeping.stop(), 0);

    // The default retention (a day): the backdated jobs go at start,
    // before the API answers; the young one stays.
    const sweeping = await startDaemon([], { stateDir });
    daemons.push(sweeping);
    client = new HostClient(sweeping);
    assert.deepEqual(ids(await client.listJobs()), ["young", "bare"]);
    for (const id of ["old1", "old2"]) {
      assert.match(
        sweeping.lines.join("\n"),
        new RegExp(
          `at=removed_ended job\\.id=${id} status=done ended_for=\\d+(\\.\\d+)?s reason=retention`,
        ),
      );
    }
    await waitFor(
      () =>
        !existsSync(jobDir(sweeping, "old1")) &&
        !existsSync(jobDir(sweeping, "old2")) &&
        trashEntries(sweeping).length === 0,
      "the old jobs' directories to go",
      WAIT_MS,
    );
    assert.equal(await readLogs(client, "young"), "young\n");
    assert.equal((await client.removeJob("bare")).id, "bare");
    assert.deepEqual(ids(await client.listJobs()), ["young"]);
    assert.equal(await sweeping.stop(), 0);
  } finally {
    await Promise.all(daemons.map((d) => d.stop()));
  }
});

test("retention: a daemon killed in the middle of removals leaves no directory without a record, and the next start finishes", async (t) => {
  const copies = 300;
  const first = await startDaemon();
  const stateDir = first.stateDir;
  const daemons: DaemonProcess[] = [first];
  let killed: ChildProcess | undefined;
  try {
    const client = new HostClient(first);
    await client.createJob({ id: "seed", config: { cmd: ["echo", "seed"] } });
    await waitFor(
      async () => (await client.getJob("seed")).status === "done",
      "seed to end",
      WAIT_MS,
    );
    assert.equal(await first.stop(), 0);
    // Many jobs that ended two days ago, each with its files: a backlog
    // the next start removes in several sweeps.
    addEndedCopies(stateDir, "seed", copies, 2 * 86_400_000);

    // Killed once it has begun removing: somewhere in the middle.
    const child = spawn(
      process.execPath,
      [LORNE, "host", "--listen", "127.0.0.1:0", "--state", stateDir],
      { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] },
    );
    killed = child;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line.includes("at=removed_ended")) child.kill("SIGKILL");
    });
    await exited;

    // Whatever it got to: every job directory still has its record.
    const db = new Database(join(stateDir, "host.db"), { readonly: true });
    const recorded = new Set(
      (db.prepare("SELECT id FROM jobs").all() as { id: string }[]).map(
        (row) => row.id,
      ),
    );
    db.close();
    assert.ok(recorded.has("seed"));
    // Where the kill landed varies; this says where it did.
    const trashed = existsSync(join(stateDir, "removed"))
      ? readdirSync(join(stateDir, "removed")).length
      : 0;
    t.diagnostic(
      `killed with ${recorded.size - 1} of ${copies} copies recorded, ` +
        `${trashed} directories in the trash`,
    );
    for (const dir of readdirSync(join(stateDir, "jobs"))) {
      assert.ok(recorded.has(dir), `jobs/${dir} has no record`);
    }

    const next = await startDaemon([], { stateDir });
    daemons.push(next);
    const nextClient = new HostClient(next);
    await waitFor(
      async () => (await nextClient.listJobs()).length === 1,
      "the backlog to be removed",
      WAIT_MS,
    );
    assert.deepEqual(ids(await nextClient.listJobs()), ["seed"]);
    await waitFor(
      () =>
        readdirSync(join(stateDir, "jobs")).join() === "seed" &&
        trashEntries(next).length === 0,
      "only seed's directory to be left",
      WAIT_MS,
    );
    assert.equal(await readLogs(nextClient, "seed"), "seed\n");
  } finally {
    if (killed?.exitCode === null) killed.kill("SIGKILL");
    await Promise.all(daemons.map((d) => d.stop()));
  }
});

test("retention: beyond --ended-max the oldest ended jobs go first, and running jobs do not count", async () => {
  const daemon = await startDaemon(["--ended-max", "2"]);
  const client = new HostClient(daemon);
  try {
    await client.createJob({ id: "sleeper", config: { cmd: ["sleep", "60"] } });
    for (const id of ["j1", "j2", "j3", "j4"]) {
      await client.createJob({ id, config: { cmd: ["true"] } });
      await waitFor(
        async () => (await client.getJob(id)).status === "done",
        `${id} to end`,
        WAIT_MS,
      );
    }
    await waitFor(
      async () => (await client.listJobs()).length === 3,
      "two ended jobs to be left",
      WAIT_MS,
    );
    assert.deepEqual(ids(await client.listJobs()), ["sleeper", "j3", "j4"]);
    for (const id of ["j1", "j2"]) {
      await logLine(
        daemon,
        new RegExp(`job\\.id=${id} status=done .*reason=max`),
      );
    }
    assert.equal(existsSync(jobDir(daemon, "j1")), false);
    assert.equal(existsSync(jobDir(daemon, "j4")), true);
  } finally {
    await daemon.stop();
  }
});

test("rm: removes an ended job at once; a running one gets 409 and runs on; an unknown one 404", async () => {
  const daemon = await startDaemon();
  const client = new HostClient(daemon);
  const env = cliEnv(daemon);
  try {
    await client.createJob({
      id: "s",
      config: { cmd: ["sh", "-c", "echo hi; sleep 60"] },
    });
    await waitFor(
      async () => (await readLogs(client, "s")) === "hi\n",
      "s's output",
      WAIT_MS,
    );

    const refused = await runLorne(["rm", "s"], { env });
    assert.equal(
      refused.stderr,
      'lorne: Cannot remove job "s": it is running; stop it first\n',
    );
    assert.equal(refused.code, 1);
    const res = await fetch(`${daemon.url}/jobs/s?remove=1`, {
      method: "DELETE",
      headers: authHeader(daemon),
    });
    assert.equal(res.status, 409);
    assert.deepEqual(await res.json(), {
      code: "conflict",
      message: 'Cannot remove job "s": it is running; stop it first',
    });
    assert.equal((await client.getJob("s")).status, "running");
    assert.equal(await readLogs(client, "s"), "hi\n");

    assert.equal(
      (await runLorne(["stop", "s"], { env })).stdout,
      "s stopped\n",
    );
    const removed = await runLorne(["rm", "s"], { env });
    assert.deepEqual([removed.stdout, removed.code], ["s removed\n", 0]);
    // The answer waits for the files.
    assert.equal(existsSync(jobDir(daemon, "s")), false);
    assert.deepEqual(trashEntries(daemon), []);
    await logLine(
      daemon,
      /at=removed_ended job\.id=s status=stopped ended_for=\S+ reason=request/,
    );
    const again = await runLorne(["rm", "s"], { env });
    assert.deepEqual(
      [again.stderr, again.code],
      ['lorne: Job "s" not found\n', 1],
    );
    const unknown = await fetch(`${daemon.url}/jobs/nope?remove=1`, {
      method: "DELETE",
      headers: authHeader(daemon),
    });
    assert.equal(unknown.status, 404);
    assert.equal(
      ((await unknown.json()) as { code: string }).code,
      "not_found",
    );

    const metrics = await scrape(daemon);
    assert.equal(metrics.get('lorne_host_jobs{status="stopped"}'), 0);
    assert.equal(metrics.get('lorne_host_jobs{status="running"}'), 0);
  } finally {
    await daemon.stop();
  }
});

test("rm: a following logs reader and an attacher of a job removed under them read all its output and end cleanly", async () => {
  // More than loopback's socket buffers hold, so both readers are still
  // reading (paused) when the job is removed.
  const bytes = 32 * 1024 * 1024;
  const expected = createHash("sha256")
    .update(Buffer.alloc(bytes, "a"))
    .digest("hex");
  const daemon = await startDaemon();
  const client = new HostClient(daemon);
  const headers = authHeader(daemon);
  let ws: WebSocket | undefined;
  let follow: IncomingMessage | undefined;
  try {
    await client.createJob({
      id: "big",
      config: { cmd: ["sh", "-c", `head -c ${bytes} /dev/zero | tr '\\0' a`] },
    });
    await waitFor(
      async () => (await client.getJob("big")).status === "done",
      "big to end",
      WAIT_MS,
    );

    // The follower: its response has started, then it stops reading.
    follow = await new Promise<IncomingMessage>((resolve, reject) => {
      request(`${daemon.url}/jobs/big/logs?follow=1`, { headers }, resolve)
        .once("error", reject)
        .end();
    });
    follow.pause();
    const followed = readAll(follow);

    // The attacher: attached (the success frame came), then stops reading.
    const socket = new WebSocket(
      `${daemon.url.replace(/^http/, "ws")}/jobs/big/attach?logs=1&stream=1`,
      { headers, perMessageDeflate: false, maxPayload: 0 },
    );
    ws = socket;
    const frames: ServerFrame[] = [];
    const hash = createHash("sha256");
    let attached = 0;
    const success = new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.on("message", (message: Buffer) => {
        const frame = decodeServer(message);
        if (frame.type === "data") {
          hash.update(frame.data);
          attached += frame.data.length;
        } else {
          frames.push(frame);
        }
        if (frame.type === "success") {
          socket.pause();
          resolve();
        }
      });
    });
    const closed = new Promise<number>((resolve) =>
      socket.once("close", (code) => resolve(code)),
    );
    await success;

    assert.equal((await client.removeJob("big")).status, "done");
    // Removed while the attacher was still reading (the sockets cannot
    // hold 32 MiB), so what follows is read from files no longer there.
    assert.ok(attached < bytes, `attached ${attached} of ${bytes} bytes`);
    assert.equal(existsSync(jobDir(daemon, "big")), false);
    await assert.rejects(client.getJob("big"), { code: "not_found" });

    follow.resume();
    socket.resume();
    const followedOut = await followed;
    assert.equal(followedOut.complete, true);
    assert.equal(followedOut.bytes, bytes);
    assert.equal(followedOut.sha256, expected);
    assert.equal(await closed, 1000);
    assert.equal(attached, bytes);
    assert.equal(hash.digest("hex"), expected);
    assert.deepEqual(frames, [
      { type: "success" },
      { type: "eof", stream: "stdout" },
      { type: "eof", stream: "stderr" },
      {
        type: "exit",
        exit: { status: "done", exit_status: 0, signal: null },
      },
    ]);
  } finally {
    ws?.terminate();
    follow?.destroy();
    await daemon.stop();
  }
});

test("retention: bad --ended-retention, --ended-max and config values exit 2 naming them", async () => {
  const dir = tempDir();
  const duration =
    "expected a duration such as 500ms, 60s, 1h30m or 7d, at most 3650d";
  const count = "expected a whole number from 1 to 10000000";
  // Flags, or a config file's content; the message may name the file.
  const cases: [string[] | object, (file: string) => string][] = [
    [
      ["--ended-retention", "5x"],
      () => `Invalid --ended-retention "5x": ${duration}`,
    ],
    [
      ["--ended-retention", "3651d"],
      () => `Invalid --ended-retention "3651d": ${duration}`,
    ],
    [["--ended-max", "0"], () => `Invalid --ended-max "0": ${count}`],
    [
      ["--ended-max", "10000001"],
      () => `Invalid --ended-max "10000001": ${count}`,
    ],
    [
      { ended_retention: "1y" },
      () => `Invalid config ended_retention "1y": ${duration}`,
    ],
    [
      { ended_retention: 86400 },
      (file) =>
        `Invalid config "${file}": field "ended_retention" must be a string`,
    ],
    [{ ended_max: 1.5 }, () => `Invalid config ended_max "1.5": ${count}`],
    [
      { ended_max: "5" },
      (file) => `Invalid config "${file}": field "ended_max" must be a number`,
    ],
  ];
  try {
    // At once: each is a separate process that stops before it starts.
    await Promise.all(
      cases.map(async ([input, expected], i) => {
        const file = join(dir.path, `host-${i}.json`);
        const state = join(dir.path, `state-${i}`);
        const message = expected(file);
        let args: string[];
        if (Array.isArray(input)) {
          args = input as string[];
        } else {
          writeFileSync(file, JSON.stringify(input));
          args = ["--config", file];
        }
        const result = await runLorne([
          "host",
          "--listen",
          "127.0.0.1:0",
          "--state",
          state,
          ...args,
        ]);
        assert.equal(result.stderr, `lorne host: ${message}\n`, message);
        assert.equal(result.code, 2, message);
        // Refused before anything was made.
        assert.equal(existsSync(state), false, message);
      }),
    );
  } finally {
    dir.remove();
  }
});

// The daemon's log is read through a pipe: a line may come a moment
// after the change the API shows.
async function logLine(daemon: DaemonProcess, pattern: RegExp): Promise<void> {
  await waitFor(
    () => daemon.lines.some((line) => pattern.test(line)),
    `a log line matching ${pattern}`,
    WAIT_MS,
  );
}

function jobDir(daemon: DaemonProcess, id: string): string {
  return join(daemon.stateDir, "jobs", id);
}

function trashEntries(daemon: DaemonProcess): string[] {
  const trash = join(daemon.stateDir, "removed");
  return existsSync(trash) ? readdirSync(trash) : [];
}

function ids(jobs: JobRecord[]): string[] {
  return jobs.map((job) => job.id);
}

async function readLogs(client: HostClient, id: string): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of client.logs(id)) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

async function scrape(daemon: DaemonProcess): Promise<Map<string, number>> {
  const res = await fetch(`${daemon.url}/metrics`, {
    headers: authHeader(daemon),
  });
  assert.equal(res.status, 200);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

// Adds `count` ended jobs copied from `seedId` (record and directory),
// ended `agoMs` ago, to a stopped daemon's state.
function addEndedCopies(
  stateDir: string,
  seedId: string,
  count: number,
  agoMs: number,
): void {
  const db = new Database(join(stateDir, "host.db"));
  try {
    const row = db
      .prepare("SELECT record FROM jobs WHERE id = ?")
      .get(seedId) as { record: string };
    const seed = JSON.parse(row.record) as JobRecord;
    const endedAt = new Date(Date.now() - agoMs).toISOString();
    const insert = db.prepare(
      "INSERT INTO jobs (id, status, record) VALUES (?, ?, ?)",
    );
    const added = Array.from({ length: count }, (_, i) => `copy-${i}`);
    db.transaction(() => {
      for (const id of added) {
        const record = { ...seed, id, ended_at: endedAt };
        insert.run(id, record.status, JSON.stringify(record));
        cpSync(join(stateDir, "jobs", seedId), join(stateDir, "jobs", id), {
          recursive: true,
        });
      }
    })();
  } finally {
    db.close();
  }
}

// Moves the recorded end of these jobs `agoMs` into the past, as if they
// had ended that long ago (the daemon is stopped).
function backdateEnd(stateDir: string, jobIds: string[], agoMs: number): void {
  const db = new Database(join(stateDir, "host.db"));
  try {
    const endedAt = new Date(Date.now() - agoMs).toISOString();
    const update = db.prepare(
      "UPDATE jobs SET record = json_set(record, '$.ended_at', ?) WHERE id = ?",
    );
    for (const id of jobIds) {
      assert.equal(update.run(endedAt, id).changes, 1, id);
    }
  } finally {
    db.close();
  }
}

// Reads a response to its end: how many bytes, their hash, and whether
// it ended cleanly (not cut off).
function readAll(
  res: IncomingMessage,
): Promise<{ bytes: number; sha256: string; complete: boolean }> {
  const hash = createHash("sha256");
  let bytes = 0;
  res.on("data", (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
  });
  return new Promise((resolve) => {
    res.once("close", () =>
      resolve({ bytes, sha256: hash.digest("hex"), complete: res.complete }),
    );
  });
}
