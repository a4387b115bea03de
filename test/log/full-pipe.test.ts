/**
 * BufferedLogger with `blockMs: 0` (what the daemons use) on a real pipe
 * that its reader stops reading: the process goes on (its event loop
 * answers), what does not fit is kept up to a bound, the oldest lines
 * beyond it are dropped and counted, and a line says how many once the
 * pipe is read again. Nothing else is lost or reordered.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

import { BufferedLogger } from "../../src/log/index.js";
import { ValidationError } from "../../src/errors.js";

const CHILD = fileURLToPath(
  new URL("./fixtures/full-pipe-child.ts", import.meta.url),
);
const TOTAL = 20_000; // about 2 MB of lines, far more than a pipe holds
const MAX_PENDING_BYTES = 64 * 1024;

test("full pipe: a logger that must not block keeps going, drops the oldest lines past its bound, and says how many", async () => {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", CHILD, String(TOTAL), String(MAX_PENDING_BYTES)],
    { stdio: ["ignore", "pipe", "inherit", "ipc"] },
  );
  const stdout = child.stdout;
  assert.ok(stdout);
  stdout.pause(); // nobody reads: the pipe fills up
  const messages: Record<string, number>[] = [];
  child.on("message", (m) => messages.push(m as Record<string, number>));
  const next = async (key: string) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const found = messages.find((m) => key in m);
      if (found) {
        messages.splice(messages.indexOf(found), 1);
        return found[key] as number;
      }
      if (Date.now() > deadline) throw new Error(`no "${key}" from the child`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  try {
    // With the pipe full the child still logs everything and answers.
    assert.equal(await next("logged"), TOTAL);
    child.send("ping");
    const dropped = await next("dropped");
    assert.ok(dropped > 0, "lines beyond the bound are dropped");

    const chunks: Buffer[] = [];
    stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    stdout.resume();
    child.send("close");
    await once(child, "close");
    // Lines still waiting when it was asked may have been dropped since.
    const final = await next("final");
    assert.ok(final >= dropped);

    const lines = Buffer.concat(chunks).toString("utf8").split("\n");
    assert.equal(lines.pop(), "", "the output ends with a whole line");
    const numbers: number[] = [];
    let reported = 0;
    for (const line of lines) {
      const n = /^now=\S+ at=line i=(\d+) pad=x{80}$/.exec(line);
      const d =
        /^now=\S+ at=log_dropped lines=(\d+) reason="output not read"$/.exec(
          line,
        );
      assert.ok(n || d, `a whole line: ${JSON.stringify(line)}`);
      if (n) numbers.push(Number(n[1]));
      else reported += Number(d?.[1]);
    }
    assert.equal(reported, final, "the drops are reported exactly");
    assert.equal(numbers.length + final, TOTAL, "nothing else is lost");
    for (let k = 1; k < numbers.length; k++) {
      assert.ok(
        (numbers[k] as number) > (numbers[k - 1] as number),
        "in order",
      );
    }
    // The newest lines are kept (the drops are the oldest of the backlog).
    assert.equal(numbers.at(-1), TOTAL - 1);
  } finally {
    child.kill("SIGKILL");
  }
});

test("full pipe: blockMs and maxPendingBytes are checked", () => {
  assert.throws(
    () => new BufferedLogger({ fd: 1, blockMs: -1 }),
    (err: unknown) =>
      err instanceof ValidationError && /Invalid blockMs -1/.test(err.message),
  );
  assert.throws(
    () => new BufferedLogger({ fd: 1, maxPendingBytes: 0 }),
    (err: unknown) =>
      err instanceof ValidationError &&
      /Invalid maxPendingBytes 0/.test(err.message),
  );
});
