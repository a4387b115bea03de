/**
 * The process backend's capture sockets: what the job end writes reaches
 * `onChunk` whole and in order, the reader closes once the job end is
 * closed, sets handed out one after another never mix up their output,
 * nothing is left behind in the temp dir, and a place where no socket can
 * be made is refused (the backend then falls back to Node's pipes).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, test } from "node:test";

import { CaptureSockets } from "../../src/host/shim/capture.js";
import type { OutputStream } from "../../src/host/output.js";
import { tempDir, waitFor } from "../helpers.js";

const savedTmpdir = process.env.TMPDIR;
const dirs: (() => void)[] = [];

afterEach(() => {
  if (savedTmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmpdir;
  for (const remove of dirs.splice(0)) remove();
});

// Points os.tmpdir() at a fresh directory of the test's own.
function ownTmpdir(): string {
  const dir = tempDir("lorne-capture-test-");
  dirs.push(dir.remove);
  process.env.TMPDIR = dir.path;
  return dir.path;
}

function closed(socket: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => socket.once("close", () => resolve()));
}

// Runs `script` with its stdout and stderr on a set's job ends.
async function run(
  captures: Awaited<ReturnType<CaptureSockets["open"]>>,
  script: string,
): Promise<void> {
  const child = spawn("sh", ["-c", script], {
    stdio: ["ignore", captures.stdout.jobEnd, captures.stderr.jobEnd],
  });
  captures.stdout.jobEnd.destroy();
  captures.stderr.jobEnd.destroy();
  await Promise.all([
    closed(child),
    closed(captures.stdout.reader),
    closed(captures.stderr.reader),
  ]);
}

function numbers(n: number): string {
  let text = "";
  for (let i = 1; i <= n; i++) text += `${i}\n`;
  return text;
}

function sha(text: string | Buffer): string {
  return createHash("sha256").update(text).digest("hex");
}

test("capture: a child's stdout and stderr arrive whole and in order; close leaves nothing", async () => {
  const tmp = ownTmpdir();
  const sockets = new CaptureSockets();
  const got = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  const captures = await sockets.open((stream: OutputStream, chunk) => {
    got[stream].push(Buffer.from(chunk)); // the chunk's memory is reused
  });
  await run(captures, "seq 1 300000; seq 1 1000 >&2");

  assert.equal(sha(Buffer.concat(got.stdout)), sha(numbers(300_000)));
  assert.equal(sha(Buffer.concat(got.stderr)), sha(numbers(1000)));
  assert.ok(got.stdout.length > 1, "read in more than one chunk");
  // Each set's directory lives only while the set is made (the next set
  // is being made ahead now).
  await waitFor(() => readdirSync(tmp).length === 0, "no directory left");
  sockets.close();
});

test("capture: sets handed out one after another keep their jobs apart", async () => {
  ownTmpdir();
  const sockets = new CaptureSockets();
  try {
    const texts: string[] = [];
    const sets = [];
    for (let i = 0; i < 3; i++) {
      texts.push("");
      sets.push(
        await sockets.open((stream, chunk) => {
          texts[i] += `${stream}:${chunk.toString()}`;
        }),
      );
    }
    await Promise.all(
      sets.map((set, i) => run(set, `echo job ${i}; echo err ${i} >&2`)),
    );
    assert.deepEqual(
      texts.map((t) => [...t.split(/(?<=\n)/)].sort()),
      [0, 1, 2].map((i) => [`stderr:err ${i}\n`, `stdout:job ${i}\n`]),
    );
  } finally {
    sockets.close();
  }
});

test("capture: a temp dir whose socket path would be cut short is refused", async () => {
  const deep = join(ownTmpdir(), "d".repeat(100));
  mkdirSync(deep);
  process.env.TMPDIR = deep;
  const sockets = new CaptureSockets();
  await assert.rejects(
    sockets.open(() => undefined),
    (err: Error) => {
      assert.match(
        err.message,
        /^Cannot listen on ".*\/lorne-capture-[^/]+\/std(out|err)": the path is too long$/,
      );
      return true;
    },
  );
  sockets.close();
  assert.deepEqual(readdirSync(deep), [], "its directory is removed");
});

test("capture: a missing temp dir is refused until it exists again", async () => {
  const tmp = join(ownTmpdir(), "later");
  process.env.TMPDIR = tmp;
  const sockets = new CaptureSockets();
  await assert.rejects(
    sockets.open(() => undefined),
    { code: "ENOENT" },
  );

  mkdirSync(tmp);
  for (let i = 0; i < 2; i++) {
    let text = "";
    const set = await sockets.open((_s, chunk) => (text += chunk.toString()));
    await run(set, `echo ${i}`);
    assert.equal(text, `${i}\n`);
  }
  sockets.close();
  await waitFor(() => readdirSync(tmp).length === 0, "no directory left");
});
