/**
 * The sinks: StreamLogger (stream and fd), MemoryLogger, and
 * BufferedLogger against real temp files, including its flush on
 * process exit in a child process.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, test } from "node:test";

import { ValidationError } from "../../src/errors.js";
import {
  BufferedLogger,
  MemoryLogger,
  StreamLogger,
  TimeText,
} from "../../src/log/index.js";

const dir = mkdtempSync(join(tmpdir(), "lorne-log-"));
const at = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
const clock = (): number => at;
let files = 0;

after(() => rmSync(dir, { recursive: true, force: true }));

function tempPath(): string {
  files++;
  return join(dir, `log-${files}.txt`);
}

function collector(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, text: () => chunks.join("") };
}

async function until(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("Condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test("StreamLogger: writes now= first and a newline per record", () => {
  const { stream, text } = collector();
  const logger = new StreamLogger(stream, { clock });
  logger.log({ a: 1, now: "dropped" });
  logger.log({ b: "x y" });
  assert.equal(
    text(),
    'now=2026-01-02T03:04:05+0000 a=1\nnow=2026-01-02T03:04:05+0000 b="x y"\n',
  );
});

test("StreamLogger: honours time, timeMs and mode options", () => {
  const plain = collector();
  new StreamLogger(plain.stream, { time: false, mode: "grohl" }).log({ k: "" });
  const precise = collector();
  new StreamLogger(precise.stream, { timeMs: true, clock }).log({ a: 1 });
  assert.equal(plain.text(), "k=nil\n");
  assert.equal(precise.text(), "now=2026-01-02T03:04:05.678+0000 a=1\n");
});

test("StreamLogger: writes to a file descriptor", () => {
  const path = tempPath();
  const fd = openSync(path, "w");
  new StreamLogger(fd, { time: false }).log({ a: 1 });
  closeSync(fd);
  assert.equal(readFileSync(path, "utf8"), "a=1\n");
});

test("StreamLogger: rejects an unknown mode", () => {
  assert.throws(
    () => new StreamLogger(process.stdout, { mode: "fancy" as "safe" }),
    new ValidationError(
      'Invalid log mode "fancy": expected "safe" or "grohl"',
      "mode",
    ),
  );
});

test("TimeText: formats milliseconds within one cached second", () => {
  const text = new TimeText(true);
  assert.equal(text.at(at), "2026-01-02T03:04:05.678+0000");
  assert.equal(text.at(at - 670), "2026-01-02T03:04:05.008+0000");
  assert.equal(text.at(at + 400), "2026-01-02T03:04:06.078+0000");
  assert.equal(new TimeText(false).at(at), "2026-01-02T03:04:05+0000");
});

test("MemoryLogger: keeps records and formats lines without time", () => {
  const logger = new MemoryLogger();
  logger.log({ a: 1 });
  logger.log({ b: "" });
  assert.deepEqual(logger.records, [{ a: 1 }, { b: "" }]);
  assert.deepEqual(logger.lines(), ["a=1", 'b=""']);
  assert.deepEqual(new MemoryLogger({ mode: "grohl" }).lines(), []);
  logger.clear();
  assert.deepEqual(logger.records, []);
});

test("BufferedLogger: holds lines until flushSync writes them all", () => {
  const path = tempPath();
  const logger = new BufferedLogger({ path, clock });
  for (let i = 0; i < 100; i++) logger.log({ i });
  assert.equal(readFileSync(path, "utf8"), "");

  logger.flushSync();
  const expected = Array.from(
    { length: 100 },
    (_, i) => `now=2026-01-02T03:04:05+0000 i=${i}\n`,
  ).join("");
  assert.equal(readFileSync(path, "utf8"), expected);
  logger.close();
});

test("BufferedLogger: writes every line of a large volume in order", () => {
  const path = tempPath();
  const logger = new BufferedLogger({
    path,
    time: false,
    maxBufferBytes: 4096,
  });
  for (let i = 0; i < 50_000; i++) logger.log({ i, text: "é😀 x" });
  logger.close();
  const lines = readFileSync(path, "utf8").split("\n");
  assert.equal(lines.length, 50_001);
  assert.equal(lines[0], 'i=0 text="é😀 x"');
  assert.equal(lines[49_999], 'i=49999 text="é😀 x"');
  assert.equal(lines[50_000], "");
});

test("BufferedLogger: flushes on its timer", async () => {
  const path = tempPath();
  const logger = new BufferedLogger({ path, time: false, flushMs: 10 });
  logger.log({ a: 1 });
  await until(() => readFileSync(path, "utf8") === "a=1\n");
  logger.close();
});

test("BufferedLogger: close is idempotent and later lines are dropped", () => {
  const path = tempPath();
  const logger = new BufferedLogger({ path, time: false });
  logger.log({ a: 1 });
  logger.close();
  logger.close();
  logger.log({ b: 2 });
  assert.equal(readFileSync(path, "utf8"), "a=1\n");
  assert.equal(logger.droppedLines, 1);
});

test("BufferedLogger: destroy discards what is buffered", () => {
  const path = tempPath();
  const logger = new BufferedLogger({ path, time: false });
  logger.log({ a: 1 });
  logger.destroy();
  logger.destroy();
  assert.equal(readFileSync(path, "utf8"), "");
  assert.equal(logger.droppedLines, 1);
});

test("BufferedLogger: reports a failed write and counts its lines", () => {
  const errors: unknown[] = [];
  const logger = new BufferedLogger({
    fd: 987_654,
    time: false,
    onError: (err) => errors.push(err),
  });
  logger.log({ a: 1 });
  logger.log({ b: 2 });
  logger.flushSync();
  assert.equal(logger.droppedLines, 2);
  assert.equal((errors[0] as NodeJS.ErrnoException).code, "EBADF");
  logger.destroy();
});

test("BufferedLogger: rejects bad options", () => {
  assert.throws(
    () => new BufferedLogger({ flushMs: 0 }),
    new ValidationError(
      "Invalid flushMs 0: expected a whole number of ms >= 1",
      "flushMs",
    ),
  );
});

// [how the child ends, the code that ends it, its exit status]
const endings: [string, string, number][] = [
  ["process.exit", "process.exit(3);", 3],
  ["an uncaught exception", "throw new Error('crash');", 1],
  ["a natural end", "", 0],
];

for (const [name, ending, status] of endings) {
  test(`BufferedLogger: flushes on ${name} in a child process`, () => {
    const path = tempPath();
    const script = `
      const { BufferedLogger, Context } = await import(${JSON.stringify(
        new URL("../../src/log/index.ts", import.meta.url).href,
      )});
      const logger = new BufferedLogger({ path: ${JSON.stringify(path)},
        time: false, flushMs: 60000 });
      const context = new Context({ data: { run: 1 }, logger });
      for (let i = 0; i < 3; i++) context.log({ i });
      ${ending}
    `;
    const result = spawnSync(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      { encoding: "utf8" },
    );
    assert.equal(result.status, status);
    assert.equal(
      readFileSync(path, "utf8"),
      "run=1 i=0\nrun=1 i=1\nrun=1 i=2\n",
    );
  });
}
