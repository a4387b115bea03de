/**
 * The file reader: line splitting (table-driven, at several buffer sizes),
 * exact offsets, over-long lines skipped in bounded memory, growth between
 * reads, reset, the open/close contract, and a property test of the lines
 * and offsets against a model of the file's bytes.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFile, open, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, test } from "node:test";

import fc from "fast-check";

import {
  LorneError,
  NotFoundError,
  ValidationError,
} from "../../src/errors.js";
import {
  fingerprintMatches,
  readFingerprint,
} from "../../src/ship/identity.js";
import { FileReader, type ReadLine } from "../../src/ship/reader.js";
import { tempDir } from "../helpers.js";

const dir = tempDir("lorne-reader-");
after(() => dir.remove());
let fileCount = 0;

/** A new file in the temp dir holding `content`. */
async function fileWith(content: string | Buffer): Promise<string> {
  const path = join(dir.path, `file-${++fileCount}.log`);
  await writeFile(path, content);
  return path;
}

/** Reads until the end of the file's data; returns everything seen. */
async function drain(reader: FileReader, maxLines = 1000) {
  const lines: ReadLine[] = [];
  let skippedLines = 0;
  let skippedBytes = 0;
  for (let calls = 0; calls < 100_000; calls++) {
    const result = await reader.read(maxLines);
    assert.equal(result.offset, reader.offset);
    lines.push(...result.lines);
    skippedLines += result.skippedLines;
    skippedBytes += result.skippedBytes;
    if (result.eof) return { lines, skippedLines, skippedBytes };
  }
  throw new Error("drain: no end of file after 100000 reads");
}

/** Lines as [text, endOffset] pairs (latin1 keeps every byte visible). */
function pairs(lines: ReadLine[]): [string, number][] {
  return lines.map((l) => [l.bytes.toString("latin1"), l.endOffset]);
}

interface SplitCase {
  name: string;
  content: string | Buffer;
  maxLineBytes: number;
  lines: [string, number][];
  skippedLines: number;
  skippedBytes: number;
  offset: number;
}

const bytes = (...values: number[]) => Buffer.from(values);
const sha256 = (data: string) =>
  createHash("sha256").update(data).digest("hex");

const SPLIT_CASES: SplitCase[] = [
  ...[
    [
      "lf",
      "a\nbb\nccc\n",
      [
        ["a", 2],
        ["bb", 5],
        ["ccc", 9],
      ],
      9,
    ],
    [
      "crlf",
      "a\r\nbb\r\n",
      [
        ["a", 3],
        ["bb", 7],
      ],
      7,
    ],
    [
      "lone cr inside a line",
      "a\rb\n\rc\n",
      [
        ["a\rb", 4],
        ["\rc", 7],
      ],
      7,
    ],
    ["only one cr stripped", "x\r\r\n", [["x\r", 4]], 4],
    [
      "empty lines",
      "\n\n\r\n",
      [
        ["", 1],
        ["", 2],
        ["", 4],
      ],
      4,
    ],
    ["no trailing newline", "a\nbc", [["a", 2]], 2],
    ["only a partial line", "abc", [], 0],
    ["empty file", "", [], 0],
    [
      "exactly maxLineBytes",
      "12345\nxy\n",
      [
        ["12345", 6],
        ["xy", 9],
      ],
      9,
    ],
    ["exactly maxLineBytes with crlf", "12345\r\n", [["12345", 7]], 7],
    ["over-long partial last line", "ab\nabcdefgh", [["ab", 3]], 3],
  ].map(([name, content, lines, offset]) => ({
    name: name as string,
    content: content as string,
    maxLineBytes: 5,
    lines: lines as [string, number][],
    skippedLines: 0,
    skippedBytes: 0,
    offset: offset as number,
  })),
  {
    name: "one over maxLineBytes",
    content: "123456\nxy\n",
    maxLineBytes: 5,
    lines: [["xy", 10]],
    skippedLines: 1,
    skippedBytes: 7,
    offset: 10,
  },
  {
    name: "one over maxLineBytes with crlf",
    content: "123456\r\nxy\n",
    maxLineBytes: 5,
    lines: [["xy", 11]],
    skippedLines: 1,
    skippedBytes: 8,
    offset: 11,
  },
  {
    name: "over-long lines in a row, then a short one",
    content: "aaaa\nbbbbb\nc\n",
    maxLineBytes: 2,
    lines: [["c", 13]],
    skippedLines: 2,
    skippedBytes: 11,
    offset: 13,
  },
  {
    name: "over-long last line completed",
    content: "ok\ntoo long\n",
    maxLineBytes: 2,
    lines: [["ok", 3]],
    skippedLines: 1,
    skippedBytes: 9,
    offset: 12,
  },
  {
    name: "invalid utf-8 kept byte for byte",
    content: bytes(0xff, 0xfe, 10, 0xc3, 0x28, 13, 10, 0xed, 0xa0, 0x80, 10),
    maxLineBytes: 5,
    lines: [
      ["\xff\xfe", 3],
      ["\xc3\x28", 7],
      ["\xed\xa0\x80", 11],
    ],
    skippedLines: 0,
    skippedBytes: 0,
    offset: 11,
  },
];

for (const c of SPLIT_CASES) {
  test(`reader: splits lines: ${c.name}`, async () => {
    const path = await fileWith(c.content);
    // Buffer sizes down to 1 byte put every boundary inside a line.
    for (const bufferBytes of [1, 2, 3, 5, 65_536]) {
      for (const maxLines of [1, 1000]) {
        const what = `bufferBytes ${bufferBytes}, maxLines ${maxLines}`;
        const reader = await FileReader.open(path, {
          startOffset: 0,
          maxLineBytes: c.maxLineBytes,
          bufferBytes,
        });
        const got = await drain(reader, maxLines);
        await reader.close();
        assert.deepEqual(pairs(got.lines), c.lines, what);
        assert.equal(got.skippedLines, c.skippedLines, what);
        assert.equal(got.skippedBytes, c.skippedBytes, what);
        assert.equal(reader.offset, c.offset, what);
      }
    }
  });
}

test("reader: keeps a partial last line for later", async () => {
  const path = await fileWith("first\npart");
  const reader = await FileReader.open(path, {
    startOffset: 0,
    maxLineBytes: 100,
  });

  const one = await reader.read(10);
  assert.deepEqual(pairs(one.lines), [["first", 6]]);
  assert.deepEqual([one.offset, one.eof], [6, true]);
  const none = await reader.read(10);
  assert.deepEqual([none.lines.length, none.offset, none.eof], [0, 6, true]);

  await appendFile(path, "ial\r\nnext\n");
  const two = await reader.read(10);
  assert.deepEqual(pairs(two.lines), [
    ["partial", 15],
    ["next", 20],
  ]);
  assert.deepEqual([two.offset, two.eof], [20, true]);
  await reader.close();
});

test("reader: sees data appended after the end of the file", async () => {
  const path = await fileWith("");
  const reader = await FileReader.open(path, {
    startOffset: 0,
    maxLineBytes: 100,
    bufferBytes: 4,
  });
  const seen: [string, number][] = [];
  const expected: [string, number][] = [];
  let size = 0;
  for (let i = 0; i < 20; i++) {
    const line = `line ${i}\n`;
    await appendFile(path, line);
    size += line.length;
    expected.push([`line ${i}`, size]);
    const got = await drain(reader);
    seen.push(...pairs(got.lines));
    assert.equal(reader.offset, size);
  }
  assert.deepEqual(seen, expected);
  await reader.close();
});

test("reader: honours maxLines and maxBytes", async () => {
  // Ten lines of 9 bytes + "\n": line i ends at 10 * (i + 1).
  const content = Array.from({ length: 10 }, (_, i) => `line-000${i}\n`);
  const path = await fileWith(content.join(""));
  const reader = await FileReader.open(path, {
    startOffset: 0,
    maxLineBytes: 100,
  });

  const three = await reader.read(3);
  assert.deepEqual(
    three.lines.map((l) => l.endOffset),
    [10, 20, 30],
  );
  assert.deepEqual([three.offset, three.eof], [30, false]);

  // 9 + 9 + 9 bytes reach 25 with the third line, which is included.
  const byBytes = await reader.read(100, 25);
  assert.deepEqual(
    byBytes.lines.map((l) => l.endOffset),
    [40, 50, 60],
  );
  assert.equal(byBytes.offset, 60);

  const rest = await reader.read(100);
  assert.deepEqual(
    pairs(rest.lines).map(([text]) => text),
    ["line-0006", "line-0007", "line-0008", "line-0009"],
  );
  assert.deepEqual([rest.offset, rest.eof], [100, true]);
  await reader.close();
});

test("reader: starts at startOffset and starts again on reset", async () => {
  const path = await fileWith("a\nbb\nccc\n");
  const reader = await FileReader.open(path, {
    startOffset: 2,
    maxLineBytes: 100,
  });
  assert.equal(reader.offset, 2);
  assert.deepEqual(pairs((await drain(reader)).lines), [
    ["bb", 5],
    ["ccc", 9],
  ]);

  reader.reset();
  assert.equal(reader.offset, 0);
  assert.deepEqual(pairs((await reader.read(1)).lines), [["a", 2]]);

  // A truncated and rewritten file: the caller resets to 0.
  await writeFile(path, "new\n");
  reader.reset();
  assert.deepEqual(pairs((await drain(reader)).lines), [["new", 4]]);

  reader.reset(5);
  await writeFile(path, "a\nbb\nccc\n");
  assert.deepEqual(pairs((await drain(reader)).lines), [["ccc", 9]]);
  await reader.close();
});

test("reader: lines handed out stay intact through later reads", async () => {
  const texts = Array.from(
    { length: 500 },
    (_, i) => `entry ${i} ${"x".repeat(i % 37)}`,
  );
  const path = await fileWith(texts.map((t) => `${t}\n`).join(""));
  const reader = await FileReader.open(path, {
    startOffset: 0,
    maxLineBytes: 100,
    bufferBytes: 64,
  });
  const kept = (await drain(reader, 1)).lines;
  assert.deepEqual(
    kept.map((l) => l.bytes.toString()),
    texts,
  );
  await reader.close();
});

test("reader: skips a 50 MB line in bounded memory", async () => {
  const MiB = 1024 * 1024;
  const path = await fileWith("before\n");
  const chunk = Buffer.alloc(MiB, 0x78);
  for (let i = 0; i < 50; i++) await appendFile(path, chunk);
  const reader = await FileReader.open(path, {
    startOffset: 0,
    maxLineBytes: 1024,
    bufferBytes: 64 * 1024,
  });

  // The line has no "\n" yet: it is dropped, the offset stays at its start.
  const first = await reader.read(10);
  assert.deepEqual(pairs(first.lines), [["before", 7]]);
  assert.deepEqual(
    [first.offset, first.skippedLines, first.skippedBytes, first.eof],
    [7, 0, 0, true],
  );
  // Holding the line would take 50 MiB of buffers; the reader holds 64 KiB.
  assert.ok(
    process.memoryUsage().arrayBuffers < 20 * MiB,
    `arrayBuffers ${process.memoryUsage().arrayBuffers}`,
  );

  await appendFile(path, "\r\nafter\n");
  const second = await reader.read(10);
  assert.deepEqual(pairs(second.lines), [["after", 7 + 50 * MiB + 2 + 6]]);
  assert.deepEqual(
    [second.skippedLines, second.skippedBytes, second.offset],
    [1, 50 * MiB + 2, 7 + 50 * MiB + 2 + 6],
  );
  await reader.close();

  // A restart from the offset saved before the "\n" skips it again.
  const again = await FileReader.open(path, {
    startOffset: 7,
    maxLineBytes: 1024,
    bufferBytes: 64 * 1024,
  });
  const result = await again.read(10);
  assert.deepEqual(pairs(result.lines), [["after", 7 + 50 * MiB + 8]]);
  assert.deepEqual(
    [result.skippedLines, result.skippedBytes],
    [1, 50 * MiB + 2],
  );
  await again.close();
});

test("reader: does not read an over-long line again", async () => {
  const path = await fileWith("x".repeat(100));
  const reader = await FileReader.open(path, {
    startOffset: 0,
    maxLineBytes: 10,
    bufferBytes: 16,
  });
  const first = await reader.read(10);
  assert.deepEqual([first.lines.length, first.offset, first.eof], [0, 0, true]);

  // Bytes already skipped are not looked at again: a reader that went
  // back to offset 0 would find this "short" line.
  const handle = await open(path, "r+");
  await handle.write("short\n", 0);
  await handle.close();
  await appendFile(path, "\nnext\n");
  const second = await reader.read(10);
  assert.deepEqual(pairs(second.lines), [["next", 106]]);
  assert.deepEqual([second.skippedLines, second.skippedBytes], [1, 101]);
  await reader.close();
});

test("reader: stat and fingerprint work after rename and delete", async () => {
  const path = await fileWith("hello\n");
  const reader = await FileReader.open(path, {
    startOffset: 0,
    maxLineBytes: 100,
  });
  const moved = `${path}.1`;
  await rename(path, moved);
  reader.rename(moved);
  assert.equal(reader.path, moved);
  await appendFile(moved, "world\n");
  await unlink(moved);

  assert.deepEqual(await reader.stat(), {
    size: 12,
    identity: reader.identity,
  });
  assert.deepEqual(pairs((await drain(reader)).lines), [
    ["hello", 6],
    ["world", 12],
  ]);
  // The descriptor serves positional fingerprint reads, after the delete.
  const fp = await readFingerprint(reader.fd, 12);
  assert.deepEqual(fp, { length: 12, hash: sha256("hello\nworld\n") });
  assert.equal(await fingerprintMatches(reader.fd, fp), true);
  await reader.close();
});

test("reader: open, read and close errors", async () => {
  const missing = join(dir.path, "missing.log");
  await assert.rejects(
    FileReader.open(missing, { startOffset: 0, maxLineBytes: 10 }),
    (err) =>
      err instanceof NotFoundError &&
      err.message === `Cannot open "${missing}": no such file`,
  );
  const fifo = join(dir.path, "fifo");
  execFileSync("mkfifo", [fifo]);
  for (const notFile of [dir.path, fifo]) {
    await assert.rejects(
      FileReader.open(notFile, { startOffset: 0, maxLineBytes: 10 }),
      (err) =>
        err instanceof ValidationError &&
        err.field === "path" &&
        err.message === `Cannot read "${notFile}": it is not a regular file`,
    );
  }

  const path = await fileWith("a\n");
  const bad: [Record<string, number>, string, string][] = [
    [
      { startOffset: -1 },
      "startOffset",
      "Invalid startOffset -1: must be a non-negative integer",
    ],
    [
      { maxLineBytes: 1.5 },
      "maxLineBytes",
      "Invalid maxLineBytes 1.5: must be a non-negative integer",
    ],
    [
      { bufferBytes: 0 },
      "bufferBytes",
      "Invalid bufferBytes 0: must be a positive integer",
    ],
  ];
  for (const [options, field, message] of bad) {
    await assert.rejects(
      FileReader.open(path, { startOffset: 0, maxLineBytes: 10, ...options }),
      (err) =>
        err instanceof ValidationError &&
        err.field === field &&
        err.message === message,
    );
  }

  const reader = await FileReader.open(path, {
    startOffset: 0,
    maxLineBytes: 10,
  });
  await assert.rejects(
    reader.read(0),
    (err) =>
      err instanceof ValidationError &&
      err.field === "maxLines" &&
      err.message ===
        `Cannot read "${path}": maxLines and maxBytes must be at least 1`,
  );
  const inFlight = reader.read(1);
  await assert.rejects(
    reader.read(1),
    (err) =>
      err instanceof LorneError &&
      err.code === "conflict" &&
      err.message === `Cannot read "${path}": a read is already in progress`,
  );
  assert.deepEqual(pairs((await inFlight).lines), [["a", 2]]);

  await reader.close();
  await reader.close();
  await assert.rejects(
    reader.read(1),
    (err) =>
      err instanceof LorneError &&
      err.code === "internal" &&
      err.message === `Cannot read "${path}": the reader is closed`,
  );
});

/** What a reader must have returned once it has read `data` to its end. */
function model(data: Buffer, maxLineBytes: number) {
  const lines: [string, number][] = [];
  let skippedLines = 0;
  let skippedBytes = 0;
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== 10) continue;
    let end = i;
    if (end > start && data[end - 1] === 13) end -= 1;
    if (end - start > maxLineBytes) {
      skippedLines += 1;
      skippedBytes += i + 1 - start;
    } else {
      lines.push([data.subarray(start, end).toString("latin1"), i + 1]);
    }
    start = i + 1;
  }
  return { lines, skippedLines, skippedBytes, offset: start };
}

// Bytes with many "\n" and "\r" among arbitrary ones.
const byteArb = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(10, 13) },
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 255 }) },
);

test("reader: lines, skips and offsets match the file's bytes (property)", async () => {
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(byteArb, { maxLength: 60 }), { maxLength: 6 }),
      fc.integer({ min: 0, max: 12 }),
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 1, max: 5 }),
      async (writes, maxLineBytes, bufferBytes, maxLines) => {
        const path = join(dir.path, `property-${++run}.log`);
        await writeFile(path, "");
        const reader = await FileReader.open(path, {
          startOffset: 0,
          maxLineBytes,
          bufferBytes,
        });
        const lines: ReadLine[] = [];
        let skippedLines = 0;
        let skippedBytes = 0;
        let data = Buffer.alloc(0);
        try {
          for (const write of writes) {
            await appendFile(path, Buffer.from(write));
            data = Buffer.concat([data, Buffer.from(write)]);
            const got = await drain(reader, maxLines);
            lines.push(...got.lines);
            skippedLines += got.skippedLines;
            skippedBytes += got.skippedBytes;

            const want = model(data, maxLineBytes);
            assert.deepEqual(pairs(lines), want.lines);
            assert.deepEqual(
              [skippedLines, skippedBytes, reader.offset],
              [want.skippedLines, want.skippedBytes, want.offset],
            );
            assertRebuilds(data, lines, skippedBytes, reader.offset);
          }
        } finally {
          await reader.close();
          await unlink(path);
        }
      },
    ),
    { numRuns: 300 },
  );
});

// The file up to `offset` is the returned lines, each with "\n" or "\r\n",
// and between them nothing but skipped lines, whose bytes add up.
function assertRebuilds(
  data: Buffer,
  lines: ReadLine[],
  skippedBytes: number,
  offset: number,
): void {
  let position = 0;
  let gaps = 0;
  for (const line of lines) {
    const lf = Buffer.concat([line.bytes, bytes(10)]);
    const crlf = Buffer.concat([line.bytes, bytes(13, 10)]);
    const tail = data.subarray(0, line.endOffset);
    const ending = tail.subarray(-crlf.length).equals(crlf) ? crlf : lf;
    assert.ok(tail.subarray(-ending.length).equals(ending));
    const lineStart = line.endOffset - ending.length;
    assert.ok(lineStart >= position);
    gaps += lineStart - position;
    position = line.endOffset;
  }
  gaps += offset - position;
  assert.equal(gaps, skippedBytes);
}
