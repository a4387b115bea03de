/**
 * End to end: `lorne run` and `lorne attach` on a real terminal (util-linux
 * `script` gives it one): the job gets a TTY of the terminal's size by
 * default, the exit status comes back, the terminal leaves raw mode
 * afterwards, and Ctrl-P Ctrl-Q leaves the job running; a terminal that
 * hangs up (node-pty's master closed) leaves it running too.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { after, before, test } from "node:test";

import { spawn as spawnPty } from "node-pty";

import { HostClient } from "../../src/host/client.js";
import {
  cliEnv,
  LORNE,
  readText,
  startDaemon,
  waitFor,
  type DaemonProcess,
} from "../helpers.js";

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

/**
 * Like onTerminal, and types `keys` on the terminal once the output
 * includes `prompt`.
 */
async function typeOnTerminal(
  line: string,
  prompt: string,
  keys: string,
): Promise<string> {
  const child = spawn("script", ["-qec", line, "/dev/null"], {
    env: cliEnv(daemon),
    timeout: 30_000,
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const closed = new Promise<void>((resolve) =>
    child.once("close", () => resolve()),
  );
  await waitFor(() => out.includes(prompt), `"${prompt}" on the terminal`);
  child.stdin.write(keys);
  await closed;
  return out;
}

const DETACH = "\x10\x11"; // Ctrl-P Ctrl-Q

test("cli tty: Ctrl-P Ctrl-Q leaves lorne run and lorne attach, the job goes on", async () => {
  const client = new HostClient(daemon);
  const lorne = `"${process.execPath}" "${LORNE}"`;
  const job = "sh -c 'echo ready; exec sleep 60'";
  try {
    const run = await typeOnTerminal(
      `${lorne} run --id tty-leave -- ${job}; echo rc=$?`,
      "ready",
      DETACH,
    );
    assert.match(run, /lorne run: detached; job "tty-leave" goes on/);
    assert.ok(run.includes("rc=0"), run);
    assert.equal((await client.getJob("tty-leave")).status, "running");

    const attach = await typeOnTerminal(
      `${lorne} attach --logs tty-leave; echo rc=$?`,
      "ready",
      DETACH,
    );
    assert.match(attach, /lorne attach: detached; job "tty-leave" goes on/);
    assert.ok(attach.includes("rc=0"), attach);
    assert.equal((await client.getJob("tty-leave")).status, "running");
  } finally {
    await client.stopJob("tty-leave");
  }
});

/**
 * `lorne ARGS` on a node-pty terminal; `hangUp` closes the master side, as
 * a closed terminal window or a dropped ssh does, and resolves with how
 * the CLI ended.
 */
function onPty(args: string[]) {
  const term = spawnPty(process.execPath, [LORNE, ...args], {
    env: cliEnv(daemon),
    cols: 80,
    rows: 24,
  });
  let seen = "";
  term.onData((d) => (seen += d));
  const exited = new Promise<{ exitCode: number; signal?: number }>((resolve) =>
    term.onExit(resolve),
  );
  return {
    seen: () => seen,
    write: (text: string) => term.write(text),
    hangUp: () => {
      // UnixTerminal has destroy(); the IPty type does not say so.
      (term as typeof term & { destroy(): void }).destroy();
      return exited;
    },
  };
}

test("cli tty: a terminal that hangs up leaves the job running with its stdin open", async () => {
  const client = new HostClient(daemon);
  const id = "hangup";
  await client.createJob({
    id,
    config: {
      cmd: [
        "sh",
        "-c",
        'while read l; do echo "read:$l"; done; echo STDIN-CLOSED; sleep 60',
      ],
      stdin: true,
    },
  });
  try {
    const term = onPty(["attach", id]);
    term.write("abc\r");
    await waitFor(() => term.seen().includes("read:abc"), "a line read");
    const exit = await term.hangUp();
    // Killed by SIGHUP, as a hung-up process is (not SIGABRT or SIGSEGV).
    assert.equal(exit.signal, 1, JSON.stringify(exit));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const job = await client.getJob(id);
    assert.equal(job.status, "running");
    assert.equal(
      await readText(client.logs(id)),
      "read:abc\n",
      "the job's stdin stayed open",
    );
  } finally {
    await client.stopJob(id);
  }
});

test("cli tty: a raw-mode session whose terminal hangs up dies of SIGHUP at once, the job running", async () => {
  const client = new HostClient(daemon);
  const id = "hangup-raw";
  await client.createJob({
    id,
    config: {
      cmd: ["sh", "-c", "echo started; sleep 60"],
      tty: true,
      stdin: true,
    },
  });
  try {
    const term = onPty(["attach", "--logs", id]);
    await waitFor(() => term.seen().includes("started"), "the first line");
    const exit = await term.hangUp();
    assert.equal(exit.signal, 1, JSON.stringify(exit));
    assert.equal((await client.getJob(id)).status, "running");
  } finally {
    await client.stopJob(id);
  }
});
