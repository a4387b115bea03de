/**
 * The pieces of `lorne shim` on their own: the frame codec, the spec
 * check, the exit file, the daemon's view of output another process
 * writes, and output reopened after a crash tore its last chunk. The whole
 * shim runs in the conformance suite and test/e2e.
 */
import assert from "node:assert/strict";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterEach, test } from "node:test";

import { Context, MemoryLogger } from "../../src/log/index.js";
import { OutputCursor } from "../../src/host/attach/cursor.js";
import { JobOutput, type OutputStream } from "../../src/host/output.js";
import { connectShim, killJobGroup } from "../../src/host/shim/client.js";
import { readExitFile, writeExitFile } from "../../src/host/shim/exitfile.js";
import {
  decodePosition,
  encodeFrame,
  encodePosition,
  FRAME,
  FrameReader,
  MAX_FRAME_BYTES,
} from "../../src/host/shim/protocol.js";
import {
  checkSocketPathFits,
  parseShimSpec,
  shimSocketPath,
} from "../../src/host/shim/spec.js";
import { ROOT, tempDir, waitFor } from "../helpers.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const remove of cleanups.splice(0)) remove();
});

function dir(): string {
  const d = tempDir("lorne-shim-");
  cleanups.push(d.remove);
  return d.path;
}

test("frames: split anywhere across reads, they come out whole and in order", () => {
  const bytes = Buffer.concat([
    encodeFrame(FRAME.role, "control"),
    encodeFrame(FRAME.stdin, Buffer.from([0, 1, 2, 255])),
    encodeFrame(FRAME.stdinClose),
    encodePosition({ stdout: 7, stderr: 2 ** 40, index: 15 }, 3),
  ]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const reader = new FrameReader();
    const frames = [
      ...reader.push(bytes.subarray(0, cut)),
      ...reader.push(bytes.subarray(cut)),
    ];
    assert.deepEqual(
      frames.map((f) => f.type),
      [FRAME.role, FRAME.stdin, FRAME.stdinClose, FRAME.output],
    );
    assert.equal(frames[0]?.payload.toString(), "control");
    assert.deepEqual([...(frames[1]?.payload ?? [])], [0, 1, 2, 255]);
    assert.equal(frames[2]?.payload.length, 0);
    assert.deepEqual(decodePosition(frames[3]?.payload ?? Buffer.alloc(0)), {
      position: { stdout: 7, stderr: 2 ** 40, index: 15 },
      droppedBytes: 3,
    });
  }
});

test("frames: a length over the limit is refused before it is buffered", () => {
  const header = Buffer.alloc(5);
  header.writeUInt8(FRAME.stdin, 0);
  header.writeUInt32BE(MAX_FRAME_BYTES + 1, 1);
  assert.throws(() => new FrameReader().push(header), {
    message: `Invalid frame: ${MAX_FRAME_BYTES + 1} bytes, more than ${MAX_FRAME_BYTES}`,
  });
  assert.throws(() => decodePosition(Buffer.alloc(8)), {
    message: "Invalid OUTPUT frame: not 32 bytes",
  });
});

test("spec: a good spec is read as given; bad ones name the field", () => {
  const good = {
    jobId: "j",
    dir: "/d",
    socket: "/s.sock",
    argv: ["sh", "-c", "true"],
    env: { PATH: "/bin" },
    stdin: true,
    ttySize: { rows: 30, cols: 100 },
  };
  assert.deepEqual(parseShimSpec(JSON.stringify(good)), {
    ...good,
    tty: false,
  });
  const cases: [unknown, string][] = [
    ["{", "Invalid shim spec: not JSON"],
    [[], "Invalid shim spec: spec must be an object"],
    [{ ...good, argv: [] }, "Invalid shim spec: argv must name a program"],
    [
      { ...good, argv: [1] },
      "Invalid shim spec: argv must be an array of strings",
    ],
    [{ ...good, env: { A: 1 } }, "Invalid shim spec: env.A must be a string"],
    [
      { ...good, jobId: "" },
      "Invalid shim spec: jobId must be a non-empty string",
    ],
    [
      { ...good, ttySize: { rows: 0, cols: 1 } },
      "Invalid shim spec: ttySize.rows must be an integer from 1 to 65535",
    ],
  ];
  for (const [value, message] of cases) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    assert.throws(
      () => parseShimSpec(text),
      (err: Error) => {
        assert.ok(err.message.startsWith(message), err.message);
        return true;
      },
    );
  }
});

test("spec: socket paths are short hashes, and a state dir too long is refused", () => {
  const path = shimSocketPath("/var/lib/lorne", "x".repeat(128));
  assert.match(path, /^\/var\/lib\/lorne\/shims\/[0-9a-f]{20}\.sock$/);
  assert.notEqual(path, shimSocketPath("/var/lib/lorne", "y"));
  checkSocketPathFits("/var/lib/lorne");
  const long = `/${"d".repeat(90)}`;
  assert.throws(() => checkSocketPathFits(long), {
    message: new RegExp(
      `^Cannot use state dir "${long}": its job control sockets .* more than the 107`,
    ),
  });
});

test("exit file: written whole, read back; missing is null; damaged is named", () => {
  const d = dir();
  assert.equal(readExitFile(d), null);
  const exit = {
    exitStatus: null,
    signal: "SIGKILL",
    oomKilled: false,
    endedAt: "2026-12-04T00:00:00.000Z",
    position: { stdout: 3, stderr: 0, index: 5 },
    droppedBytes: 0,
  };
  writeExitFile(d, exit);
  assert.deepEqual(readExitFile(d), exit);
  // One line, so a reader never sees half a record.
  assert.match(readFileSync(join(d, "exit.json"), "utf8"), /^\{.*\}\n$/);
  // Why an exit is odd (a container that vanished) is kept too.
  const odd = { ...exit, exitStatus: 137, error: "Container vanished" };
  writeExitFile(d, odd);
  assert.deepEqual(readExitFile(d), odd);
  writeFileSync(join(d, "exit.json"), "{nope");
  assert.throws(() => readExitFile(d), {
    message: `Cannot read "${join(d, "exit.json")}": not JSON`,
  });
  writeFileSync(join(d, "exit.json"), JSON.stringify({ ...exit, position: 1 }));
  assert.throws(() => readExitFile(d), {
    message: `Cannot read "${join(d, "exit.json")}": not an exit record`,
  });
});

test("view: follows what another writer reports, never moves back, ends once", async () => {
  const d = join(dir(), "job");
  const writer = new JobOutput(d);
  const view = JobOutput.view(d);
  const cursor = new OutputCursor(view, {
    fromStart: true,
    streams: new Set<OutputStream>(["stdout", "stderr"]),
  });
  writer.write("stdout", Buffer.from("one "));
  writer.write("stderr", Buffer.from("two "));
  view.advanceTo(writer.position());
  view.advanceTo({ stdout: 0, stderr: 0, index: 0 }); // stale: ignored
  writer.write("stdout", Buffer.from("three"));
  writer.end();
  view.advanceTo(writer.position(), 2);
  view.end();
  const got: string[] = [];
  for await (const piece of cursor.pieces()) {
    got.push(`${piece.stream}:${piece.data.toString()}`);
  }
  assert.deepEqual(got, ["stdout:one ", "stderr:two ", "stdout:three"]);
  assert.equal(view.droppedBytes, 2);
  assert.throws(() => JobOutput.view(d).write("stdout", Buffer.from("x")), {
    message: "Cannot write to a view of job output",
  });
});

test("resume: a torn last chunk is cut off and writing goes on after the rest", () => {
  const d = join(dir(), "job");
  const first = new JobOutput(d);
  first.write("stdout", Buffer.from("hello "));
  first.write("stderr", Buffer.from("oops"));
  first.end();
  // A crash mid-chunk: its bytes written, its index record half written.
  appendFileSync(join(d, "stdout.log"), "torn");
  appendFileSync(join(d, "output.idx"), Buffer.from([1, 0, 0]));

  const again = JobOutput.resume(d);
  assert.deepEqual(again.position(), { stdout: 6, stderr: 4, index: 10 });
  again.write("stdout", Buffer.from("world"));
  again.end();
  assert.equal(readFileSync(join(d, "stdout.log"), "utf8"), "hello world");
  assert.equal(readFileSync(join(d, "output.idx")).length, 15);
  const ended = JobOutput.ended(d);
  assert.deepEqual(ended?.position(), { stdout: 11, stderr: 4, index: 15 });
  assert.equal(ended?.ended, true);
  assert.equal(JobOutput.ended(join(d, "missing")), null);
});

test("resume: an index that claims more than a file holds is refused, not guessed", () => {
  const d = join(dir(), "job");
  const first = new JobOutput(d);
  first.write("stdout", Buffer.from("hello"));
  first.end();
  writeFileSync(join(d, "stdout.log"), "he");
  assert.throws(() => JobOutput.resume(d), {
    message: `Cannot resume output: "${join(d, "stdout.log")}" holds 2 bytes, the index says 5`,
  });
});

test("shim: a daemon gone before it reads the answer leaves the job running, to be taken over with its start time", async () => {
  const d = dir();
  const spec = {
    jobId: "orphan",
    dir: join(d, "job"),
    socket: join(d, "s.sock"),
    argv: ["sh", "-c", "echo up; sleep 30"],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LORNE_JOB_ID: "orphan" },
  };
  const shim = spawn(
    process.execPath,
    ["--import", "tsx", join(ROOT, "src/host/shim/entry.ts")],
    { stdio: ["pipe", "pipe", "ignore"], detached: true },
  );
  // The reader of the answer is gone before the answer is written.
  shim.stdout.destroy();
  shim.stdin.end(`${JSON.stringify(spec)}\n`);
  const output = JobOutput.view(spec.dir);
  // The job has run a while before anybody takes it over.
  await waitFor(() => {
    try {
      return readFileSync(join(spec.dir, "stdout.log"), "utf8") === "up\n";
    } catch {
      return false;
    }
  }, "the job's first line");
  await new Promise((resolve) => setTimeout(resolve, 300));
  const takenOverAt = Date.now();
  const running = await waitFor(
    () =>
      connectShim({
        jobId: "orphan",
        hostId: "h",
        socket: spec.socket,
        dir: spec.dir,
        output,
        stdin: false,
        log: new Context({ logger: new MemoryLogger() }),
      }).catch(() => null),
    "the shim's socket",
  );
  assert.equal(shim.exitCode, null, "the shim is still running");
  assert.ok(running.pid !== null && running.pid > 0);
  assert.equal(readFileSync(join(spec.dir, "pid"), "utf8"), `${running.pid}\n`);
  // Its start is when the shim spawned it, not when it was taken over;
  // its exit record says the same.
  const startedAt = Date.parse(running.startedAt as string);
  assert.ok(startedAt <= takenOverAt - 250, `${running.startedAt}`);
  running.signal("SIGTERM");
  const exit = await running.exited;
  assert.equal(exit.signal, "SIGTERM");
  assert.equal(readExitFile(spec.dir)?.startedAt, running.startedAt);
  assert.equal(readFileSync(join(spec.dir, "stdout.log"), "utf8"), "up\n");
});

test("shim: a dead shim's job is killed only if it is this host's", async () => {
  const env = { ...process.env, LORNE_JOB_ID: "j", LORNE_HOST_ID: "other" };
  const child = spawn("sleep", ["30"], {
    env,
    detached: true,
    stdio: "ignore",
  });
  const pid = child.pid ?? 0;
  const gone = new Promise((resolve) => child.once("exit", resolve));
  try {
    await waitFor(
      () =>
        readFileSync(`/proc/${pid}/environ`, "utf8").includes("LORNE_JOB_ID=j"),
      "the child's environment",
    );
    killJobGroup(pid, "j", "mine");
    killJobGroup(pid, "k", "other");
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(child.exitCode, null);
    assert.equal(child.signalCode, null);
    killJobGroup(pid, "j", "other");
    await gone;
    assert.equal(child.signalCode, "SIGKILL");
  } finally {
    child.kill("SIGKILL");
  }
});
