/**
 * JobOutput and OutputCursor on real files: each byte stored once, the
 * interleaved view rebuilt from the chunk index, readers at their own
 * pace, and a failing disk that drops output without tearing the files.
 */
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, test } from "node:test";

import {
  OutputCursor,
  type OutputPiece,
} from "../../src/host/attach/cursor.js";
import { JobOutput, type OutputStream } from "../../src/host/output.js";
import { tempDir } from "../helpers.js";

const BOTH = new Set<OutputStream>(["stdout", "stderr"]);
const TAG: Record<OutputStream, string> = { stdout: "o", stderr: "e" };
const dirs: (() => void)[] = [];

afterEach(() => {
  for (const remove of dirs.splice(0)) remove();
});

function jobDir(): string {
  const dir = tempDir("lorne-output-");
  dirs.push(dir.remove);
  return join(dir.path, "job");
}

function text(pieces: OutputPiece[]): string[] {
  return pieces.map((p) => `${p.stream}:${p.data.toString()}`);
}

async function collect(cursor: OutputCursor, maxBytes?: number) {
  const pieces: OutputPiece[] = [];
  for await (const piece of cursor.pieces(maxBytes)) pieces.push(piece);
  return pieces;
}

test("output: stores each byte once, in its stream's file, with an index", () => {
  const dir = jobDir();
  const output = new JobOutput(dir);
  output.write("stdout", Buffer.from("one\n"));
  output.write("stderr", Buffer.from("oops\n"));
  output.write("stdout", Buffer.from("two\n"));
  output.end();

  assert.deepEqual(readdirSync(dir).sort(), [
    "output.idx",
    "stderr.log",
    "stdout.log",
  ]);
  assert.equal(readFileSync(join(dir, "stdout.log"), "utf8"), "one\ntwo\n");
  assert.equal(readFileSync(join(dir, "stderr.log"), "utf8"), "oops\n");
  assert.deepEqual(
    readFileSync(join(dir, "output.idx")),
    Buffer.from([1, 0, 0, 0, 4, 2, 0, 0, 0, 5, 1, 0, 0, 0, 4]),
  );
  assert.deepEqual(output.position(), { stdout: 8, stderr: 5, index: 15 });
});

test("output: a chunk's memory may be reused once write returns", async () => {
  const output = new JobOutput(jobDir());
  const chunk = Buffer.from("first");
  output.write("stdout", chunk);
  chunk.write("XXXXX");
  output.end();
  const cursor = new OutputCursor(output, { fromStart: true, streams: BOTH });
  assert.deepEqual(text(await collect(cursor)), ["stdout:first"]);
});

test("cursor: rebuilds the interleaved view and joins neighbouring chunks", async () => {
  const output = new JobOutput(jobDir());
  for (const [stream, data] of [
    ["stdout", "a"],
    ["stdout", "b"],
    ["stderr", "c"],
    ["stdout", "d"],
    ["stderr", "e"],
    ["stderr", "f"],
  ] as const) {
    output.write(stream, Buffer.from(data));
  }
  output.end();

  const all = new OutputCursor(output, { fromStart: true, streams: BOTH });
  assert.deepEqual(text(await collect(all)), [
    "stdout:ab",
    "stderr:c",
    "stdout:d",
    "stderr:ef",
  ]);
  // One stream: its chunks are adjacent in its file whatever lies between.
  const stdout = new OutputCursor(output, {
    fromStart: true,
    streams: new Set(["stdout"]),
  });
  assert.deepEqual(text(await collect(stdout)), ["stdout:abd"]);
  const stderr = new OutputCursor(output, {
    fromStart: true,
    streams: new Set(["stderr"]),
  });
  assert.deepEqual(text(await collect(stderr)), ["stderr:cef"]);
});

test("cursor: read() fills the caller's buffer and splits a chunk across calls", () => {
  const output = new JobOutput(jobDir());
  output.write("stdout", Buffer.from("0123456789"));
  output.write("stderr", Buffer.from("xyz"));
  const cursor = new OutputCursor(output, { fromStart: true, streams: BOTH });

  const buffer = Buffer.alloc(6, "-");
  const reads: string[] = [];
  for (let got = cursor.read(buffer, 2); got; got = cursor.read(buffer, 2)) {
    reads.push(`${got.stream}:${buffer.toString("utf8", 2, 2 + got.bytes)}`);
  }
  assert.deepEqual(reads, [
    "stdout:0123",
    "stdout:4567",
    "stdout:89",
    "stderr:xyz",
  ]);
  assert.equal(buffer.toString("utf8", 0, 2), "--", "header room untouched");
  cursor.close();
  output.end();
});

test("cursor: follows from now, and untilNow stops at what was on disk", async () => {
  const output = new JobOutput(jobDir());
  output.write("stdout", Buffer.from("before\n"));
  const live = new OutputCursor(output, { fromStart: false, streams: BOTH });
  const replay = new OutputCursor(output, {
    fromStart: true,
    streams: BOTH,
    untilNow: true,
  });
  const collecting = collect(live);
  output.write("stderr", Buffer.from("after\n"));
  output.write("stdout", Buffer.from("later\n"));
  output.end();

  assert.deepEqual(text(await collecting), [
    "stderr:after\n",
    "stdout:later\n",
  ]);
  assert.deepEqual(text(await collect(replay)), ["stdout:before\n"]);
});

test("cursor: wait() resolves when output comes and false once it ends", async () => {
  const output = new JobOutput(jobDir());
  const cursor = new OutputCursor(output, { fromStart: true, streams: BOTH });
  const first = cursor.wait();
  output.write("stdout", Buffer.from("x"));
  assert.equal(await first, true);
  assert.deepEqual(cursor.read(Buffer.alloc(4)), {
    stream: "stdout",
    bytes: 1,
  });
  const second = cursor.wait();
  output.end();
  assert.equal(await second, false);
  cursor.close();
});

test("cursor: a reader that falls far behind still gets every byte in order", async () => {
  const output = new JobOutput(jobDir());
  const cursor = new OutputCursor(output, { fromStart: true, streams: BOTH });
  // Which stream each byte belongs to, and the bytes, in arrival order.
  let expectedStreams = "";
  let expectedBytes = "";
  for (let i = 0; i < 10_000; i++) {
    const stream: OutputStream = i % 3 === 0 ? "stderr" : "stdout";
    const line = `${stream} ${i}\n`;
    output.write(stream, Buffer.from(line));
    expectedStreams += TAG[stream].repeat(line.length);
    expectedBytes += line;
  }
  output.end();

  // Pieces of at most 7 bytes: chunks are split as well as joined.
  let streams = "";
  let bytes = "";
  for (const piece of await collect(cursor, 7)) {
    assert.ok(piece.data.length <= 7);
    streams += TAG[piece.stream].repeat(piece.data.length);
    bytes += piece.data.toString();
  }
  assert.equal(bytes, expectedBytes);
  assert.equal(streams, expectedStreams);
});

test("cursor: close() ends a pending wait", async () => {
  const output = new JobOutput(jobDir());
  const cursor = new OutputCursor(output, { fromStart: true, streams: BOTH });
  const waiting = cursor.wait();
  cursor.close();
  assert.equal(await waiting, false);
  assert.equal(cursor.read(Buffer.alloc(4)), null);
  output.end();
});

test("output: a full disk drops the rest of the output, counted, and reports once", async () => {
  const dir = jobDir();
  mkdirSync(dir, { recursive: true });
  symlinkSync("/dev/full", join(dir, "stderr.log"));
  const errors: string[] = [];
  const output = new JobOutput(dir, (err) =>
    errors.push((err as NodeJS.ErrnoException).code ?? "?"),
  );
  output.write("stdout", Buffer.from("kept\n"));
  output.write("stderr", Buffer.from("lost\n"));
  output.write("stdout", Buffer.from("dropped\n"));
  output.end();

  assert.deepEqual(errors, ["ENOSPC"]);
  assert.equal(output.droppedBytes, 13);
  assert.deepEqual(output.position(), { stdout: 5, stderr: 0, index: 5 });
  const cursor = new OutputCursor(output, { fromStart: true, streams: BOTH });
  assert.deepEqual(text(await collect(cursor)), ["stdout:kept\n"]);
});

test("output: a chunk whose index record cannot be written is not counted", async () => {
  const dir = jobDir();
  mkdirSync(dir, { recursive: true });
  symlinkSync("/dev/full", join(dir, "output.idx"));
  const errors: string[] = [];
  const output = new JobOutput(dir, (err) =>
    errors.push((err as NodeJS.ErrnoException).code ?? "?"),
  );
  output.write("stdout", Buffer.from("hello\n"));
  output.end();

  assert.deepEqual(errors, ["ENOSPC"]);
  assert.equal(output.droppedBytes, 6);
  assert.equal(output.bytes("stdout"), 0);
  // The bytes reached stdout.log, but no reader goes past the index.
  assert.equal(readFileSync(join(dir, "stdout.log"), "utf8"), "hello\n");
  const cursor = new OutputCursor(output, { fromStart: true, streams: BOTH });
  assert.deepEqual(await collect(cursor), []);
});

test("output: writes after end are ignored; end is idempotent", () => {
  const dir = jobDir();
  const output = new JobOutput(dir);
  output.end();
  output.end();
  output.write("stdout", Buffer.from("late"));
  assert.equal(output.ended, true);
  assert.equal(output.droppedBytes, 0);
  assert.equal(readFileSync(join(dir, "stdout.log"), "utf8"), "");
  assert.equal(existsSync(join(dir, "output")), false);
});
