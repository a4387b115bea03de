/**
 * End to end: `lorne run` on a real terminal (util-linux `script` gives it
 * one): the job gets a TTY of the terminal's size by default, the exit
 * status comes back, and the terminal leaves raw mode afterwards.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, test } from "node:test";

import { cliEnv, LORNE, startDaemon, type DaemonProcess } from "../helpers.js";

let daemon: DaemonProcess;

before(async () => {
  daemon = await startDaemon();
});

after(async () => {
  assert.equal(await daemon.stop(), 0);
});

/** Runs a shell line inside `script`, so stdin and stdout are a terminal. */
function onTerminal(line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "script",
      ["-qec", line, "/dev/null"],
      { timeout: 30_000, env: cliEnv(daemon) },
      (err, stdout) =>
        err ? reject(new Error(String(err.message))) : resolve(stdout),
    );
  });
}

test("cli tty: run gives the job the terminal's size and restores the terminal", async () => {
  const lorne = `"${process.execPath}" "${LORNE}"`;
  const out = await onTerminal(
    `stty rows 33 cols 101; ${lorne} run -- sh -c 'stty size; test -t 0 && echo tty; exit 3'; ` +
      "echo rc=$?; stty -a | grep -o -- '-\\?icanon'",
  );
  const lines = out.split(/\r?\n/).map((l) => l.replace(/\r/g, ""));
  // Seen once in CI: the exit came but no output. The daemon's last lines
  // say what it saw of the job, should it happen again.
  const seen = `${JSON.stringify(out)}\n-- daemon:\n${daemon.lines.slice(-30).join("\n")}`;
  assert.ok(lines.includes("33 101"), seen);
  assert.ok(lines.includes("tty"), seen);
  assert.ok(lines.includes("rc=3"), out);
  assert.ok(lines.includes("icanon"), `terminal left in raw mode: ${out}`);
});

test("cli tty: --no-tty on a terminal runs the job without one", async () => {
  const lorne = `"${process.execPath}" "${LORNE}"`;
  const out = await onTerminal(
    `${lorne} run --no-tty --no-stdin -- sh -c 'test -t 1 || echo no-tty'; echo rc=$?`,
  );
  const lines = out.split(/\r?\n/).map((l) => l.replace(/\r/g, ""));
  assert.ok(lines.includes("no-tty"), out);
  assert.ok(lines.includes("rc=0"), out);
});

test("cli tty: a terminal with no size set (0x0) still runs the job", async () => {
  const lorne = `"${process.execPath}" "${LORNE}"`;
  const out = await onTerminal(
    `stty rows 0 cols 0; ${lorne} run -- sh -c 'echo hi; stty size'; echo rc=$?`,
  );
  const lines = out.split(/\r?\n/).map((l) => l.replace(/\r/g, ""));
  assert.ok(lines.includes("hi"), out);
  assert.ok(lines.includes("24 80"), out);
  assert.ok(lines.includes("rc=0"), out);
});
