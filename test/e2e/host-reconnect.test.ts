/**
 * End to end: the CLI's followed streams (`lorne events`, `lorne logs
 * --follow`) across a daemon killed with SIGKILL or stopped with SIGTERM
 * and started again on the same port and state dir. They must go on where
 * they were, printing every event and every byte exactly once (saying
 * which events the host no longer keeps), give up after
 * `--reconnect-timeout` with an error, and not retry a refused token.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { HostClient } from "../../src/host/client.js";
import type { JobEvent } from "../../src/host/events.js";
import {
  authHeader,
  cliEnv,
  freePort,
  LORNE,
  readText,
  runLorne,
  startDaemon,
  tempDir,
  waitFor,
  type DaemonProcess,
} from "../helpers.js";

/** Bounds every CLI process a test starts. */
const CLI_TIMEOUT_MS = 60_000;

interface Follower {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `lorne ARGS` and keeps what it prints. */
function follow(args: string[], env: NodeJS.ProcessEnv): Follower {
  const child = spawn(process.execPath, [LORNE, ...args], {
    env,
    timeout: CLI_TIMEOUT_MS,
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
  }>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, closed };
}

/** A daemon on a fixed port, so a restarted one has the same URL. */
async function daemonOn(
  port: number,
  stateDir?: string,
): Promise<DaemonProcess> {
  return startDaemon(["--listen", `127.0.0.1:${port}`, "--grace-ms", "500"], {
    stateDir,
  });
}

async function kill(daemon: DaemonProcess): Promise<void> {
  daemon.child.kill("SIGKILL");
  await daemon.exited;
}

/** The events a `lorne events --json` follower printed so far. */
function printed(follower: Follower): JobEvent[] {
  return follower
    .stdout()
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as JobEvent);
}

function isStop(event: JobEvent, jobId: string): boolean {
  return event.job_id === jobId && event.event === "stop";
}

test(
  "reconnect: lorne events prints every event once, in order, across a SIGKILL and a SIGTERM restart",
  { timeout: 120_000 },
  async () => {
    const go = tempDir("lorne-reconnect-go-");
    const goFile = join(go.path, "go");
    const port = await freePort();
    let daemon = await daemonOn(port);
    const stateDir = daemon.stateDir;
    const env = cliEnv(daemon);
    const events = follow(["events", "--json"], env);
    try {
      let client = new HostClient(daemon);
      await client.createJob({ id: "before", config: { cmd: ["true"] } });
      // Ends while no daemon runs: its stop event is made by the next one.
      await client.createJob({
        id: "during",
        config: {
          // Bounded (120 s): a failed test leaves no job behind.
          cmd: [
            "sh",
            "-c",
            `n=0; while [ ! -e ${goFile} ] && [ $n -lt 2400 ]; do sleep 0.05; n=$((n+1)); done`,
          ],
        },
      });
      await waitFor(
        () => events.stdout().includes('"job_id":"during"'),
        "events to print the job that ends while the daemon is down",
      );

      await kill(daemon);
      writeFileSync(goFile, "");
      daemon = await daemonOn(port, stateDir);
      client = new HostClient(daemon);
      await client.createJob({ id: "after-kill", config: { cmd: ["true"] } });
      await waitFor(
        () => printed(events).some((e) => isStop(e, "after-kill")),
        "events to print the job made after the SIGKILL",
      );

      // A graceful stop ends the stream cleanly; that is a loss too.
      assert.equal(await daemon.stop(), 0);
      daemon = await daemonOn(port, stateDir);
      client = new HostClient(daemon);
      await client.createJob({ id: "after-term", config: { cmd: ["true"] } });

      // What the host keeps, read on a fresh stream, up to the last stop.
      const kept: number[] = [];
      const abort = new AbortController();
      for await (const e of client.events({ after: 0, signal: abort.signal })) {
        kept.push(e.id);
        if (isStop(e, "after-term")) break;
      }
      abort.abort();
      await waitFor(
        () => printed(events).some((e) => isStop(e, "after-term")),
        "events to print the last event",
      );
      assert.deepEqual(
        kept,
        Array.from({ length: kept.length }, (_, i) => i + 1),
        "the host keeps every event",
      );
      assert.deepEqual(
        printed(events).map((e) => e.id),
        kept,
        "every event once, in order",
      );
      const during = printed(events)
        .filter((e) => e.job_id === "during")
        .map((e) => e.event);
      assert.deepEqual(during, ["create", "start", "stop"]);
      const notes = events.stderr().split("\n");
      assert.equal(
        notes.filter((l) => l.endsWith("; reconnecting")).length,
        2,
        events.stderr(),
      );
      assert.equal(
        notes.filter((l) => l === "lorne events: Reconnected").length,
        2,
        events.stderr(),
      );
    } finally {
      events.child.kill("SIGKILL");
      await events.closed;
      await daemon.stop();
      go.remove();
    }
  },
);

test(
  "reconnect: lorne events says which events the restarted host no longer keeps and goes on from the oldest kept",
  { timeout: 120_000 },
  async () => {
    const history = ["--event-history", "3"];
    const port = await freePort();
    const first = await startDaemon([
      "--listen",
      `127.0.0.1:${port}`,
      ...history,
    ]);
    const stateDir = first.stateDir;
    await new HostClient(first).createJob({ config: { cmd: ["true"] } });
    const events = follow(["events", "--json"], cliEnv(first));
    let daemon = first;
    try {
      await waitFor(() => printed(events).length === 3, "the first job");
      await kill(first);
      await waitFor(
        () => events.stderr().includes("; reconnecting"),
        "the follower to notice",
      );
      // Meanwhile a daemon the follower cannot reach makes six more events.
      daemon = await startDaemon(history, { stateDir });
      const client = new HostClient(daemon);
      for (const id of ["gone-1", "gone-2"]) {
        await client.createJob({ id, config: { cmd: ["true"] } });
        await waitFor(
          async () => (await client.getJob(id)).status === "done",
          `${id} to end`,
        );
      }
      assert.equal(await daemon.stop(), 0);
      daemon = await startDaemon(
        ["--listen", `127.0.0.1:${port}`, ...history],
        {
          stateDir,
        },
      );

      await waitFor(
        () => printed(events).some((e) => isStop(e, "gone-2")),
        "the last kept event",
      );
      assert.deepEqual(
        printed(events).map((e) => e.id),
        [1, 2, 3, 7, 8, 9],
      );
      assert.match(
        events.stderr(),
        /\nlorne events: Reconnected\nlorne events: Events 4-6 are no longer kept\n$/,
      );
    } finally {
      events.child.kill("SIGKILL");
      await daemon.stop();
    }
  },
);

test(
  "reconnect: lorne events gives up after --reconnect-timeout, at once with 0, and ends on SIGTERM while waiting",
  { timeout: 120_000 },
  async () => {
    const port = await freePort();
    const daemon = await daemonOn(port);
    const env = cliEnv(daemon);
    const client = new HostClient(daemon);
    await client.createJob({ config: { cmd: ["true"] } });
    const invalid = await runLorne(["events", "--reconnect-timeout", "soon"], {
      env,
    });
    assert.deepEqual(invalid, {
      code: 2,
      stdout: "",
      stderr:
        'lorne: Invalid --reconnect-timeout "soon": expected a duration ' +
        "such as 500ms, 60s, 1h30m or 7d, at most 24d20h31m23s647ms\n",
    });
    const bounded = follow(["events", "--reconnect-timeout", "500ms"], env);
    const never = follow(["events", "--reconnect-timeout", "0"], env);
    const waiting = follow(["events", "--reconnect-timeout", "1h"], env);
    try {
      for (const f of [bounded, never, waiting]) {
        await waitFor(() => f.stdout().includes("event=create"), "an event");
      }
      await kill(daemon);

      const gaveUp = await bounded.closed;
      assert.equal(gaveUp.code, 1, bounded.stderr());
      const lines = bounded.stderr().trimEnd().split("\n");
      assert.match(
        lines[0] as string,
        /^lorne events: Lost the connection to lorne host at http:\/\/127\.0\.0\.1:\d+: .*; reconnecting$/,
      );
      assert.match(
        lines.at(-1) as string,
        /^lorne: Gave up reconnecting after 500ms: Cannot reach lorne host at http:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED/,
      );

      const once = await never.closed;
      assert.equal(once.code, 1, never.stderr());
      assert.match(
        never.stderr(),
        /^lorne: Lost the connection to lorne host at http:\/\/127\.0\.0\.1:\d+: .*\n$/,
      );

      await waitFor(
        () => waiting.stderr().includes("; reconnecting"),
        "the follower to start reconnecting",
      );
      waiting.child.kill("SIGTERM");
      assert.deepEqual(await waiting.closed, { code: null, signal: "SIGTERM" });
    } finally {
      for (const f of [bounded, never, waiting]) f.child.kill("SIGKILL");
      await daemon.stop();
    }
  },
);

test(
  "reconnect: a token the restarted host refuses is not retried",
  { timeout: 120_000 },
  async () => {
    const port = await freePort();
    let daemon = await daemonOn(port);
    const stateDir = daemon.stateDir;
    await new HostClient(daemon).createJob({ config: { cmd: ["true"] } });
    // The bound is far beyond the test's: only a refusal can end it.
    const events = follow(
      ["events", "--reconnect-timeout", "1h"],
      cliEnv(daemon),
    );
    try {
      await waitFor(() => events.stdout().includes("event=create"), "event");
      await kill(daemon);
      rmSync(join(stateDir, "token"));
      daemon = await daemonOn(port, stateDir);
      assert.ok(existsSync(join(stateDir, "token")), "a new token");

      const end = await events.closed;
      assert.equal(end.code, 1, events.stderr());
      const lines = events.stderr().trimEnd().split("\n");
      assert.equal(lines.length, 2, events.stderr());
      assert.match(lines[0] as string, /; reconnecting$/);
      assert.match(lines[1] as string, /^lorne: Invalid token/);
    } finally {
      events.child.kill("SIGKILL");
      await daemon.stop();
    }
  },
);

// Prints 0, 1, 2, ... one line every 20 ms until the go file appears, or
// for at most 120 s (a failed test leaves no job behind).
function printUntil(goFile: string): string {
  return `i=0; while [ ! -e ${goFile} ] && [ $i -lt 6000 ]; do echo $i; i=$((i+1)); sleep 0.02; done`;
}

/** Lines 0..n-1 in order, each once; returns n. */
function checkSequence(text: string): number {
  const lines = text.split("\n");
  assert.equal(lines.pop(), "", "output ends with a newline");
  lines.forEach((line, i) =>
    assert.equal(line, String(i), `line ${i} (no gap, no repeat)`),
  );
  return lines.length;
}

function lineCount(path: string): number {
  return readFileSync(path, "utf8").split("\n").length - 1;
}

test(
  "reconnect: lorne logs --follow prints every line once across a SIGKILL restart and ends with the job",
  { timeout: 120_000 },
  async () => {
    const go = tempDir("lorne-reconnect-go-");
    const goFile = join(go.path, "go");
    const port = await freePort();
    let daemon = await daemonOn(port);
    const stateDir = daemon.stateDir;
    const stdoutLog = join(stateDir, "jobs", "printer", "stdout.log");
    const job = await new HostClient(daemon).createJob({
      id: "printer",
      config: { cmd: ["sh", "-c", printUntil(goFile)] },
    });
    const logs = follow(["logs", "--follow", job.id], cliEnv(daemon));
    try {
      await waitFor(() => logs.stdout().includes("\n5\n"), "some lines");
      await kill(daemon);
      // The job prints on while no daemon runs.
      const atKill = lineCount(stdoutLog);
      await waitFor(() => lineCount(stdoutLog) > atKill + 10, "more lines");
      daemon = await daemonOn(port, stateDir);
      const atRestart = lineCount(stdoutLog);
      await waitFor(
        () => logs.stdout().split("\n").length > atRestart + 10,
        "the follower to print lines made after the restart",
      );
      writeFileSync(goFile, "");

      const end = await logs.closed;
      assert.equal(end.code, 0, logs.stderr());
      const printedLines = checkSequence(logs.stdout());
      assert.equal(printedLines, lineCount(stdoutLog), "every line");
      assert.match(
        logs.stderr(),
        /^lorne logs: Lost the connection to lorne host at http:\/\/127\.0\.0\.1:\d+: .*; reconnecting\n(lorne logs: Lost .*\n)?lorne logs: Reconnected\n$/,
      );
      assert.equal(
        (await new HostClient(daemon).getJob(job.id)).status,
        "done",
      );
    } finally {
      logs.child.kill("SIGKILL");
      await daemon.stop();
      go.remove();
    }
  },
);

test(
  "reconnect: lorne logs --follow of a job the host's SIGTERM stopped prints the rest once the host is back, then ends",
  { timeout: 120_000 },
  async () => {
    const port = await freePort();
    let daemon = await daemonOn(port);
    const stateDir = daemon.stateDir;
    const stdoutLog = join(stateDir, "jobs", "printer", "stdout.log");
    const job = await new HostClient(daemon).createJob({
      id: "printer",
      config: { cmd: ["sh", "-c", printUntil(join(stateDir, "never"))] },
    });
    const logs = follow(["logs", "--follow", job.id], cliEnv(daemon));
    try {
      await waitFor(() => logs.stdout().includes("\n5\n"), "some lines");
      assert.equal(await daemon.stop(), 0);
      await waitFor(
        () => logs.stderr().includes("; reconnecting"),
        "the follower to notice",
      );
      daemon = await daemonOn(port, stateDir);

      const end = await logs.closed;
      assert.equal(end.code, 0, logs.stderr());
      assert.equal(checkSequence(logs.stdout()), lineCount(stdoutLog));
      assert.equal(
        (await new HostClient(daemon).getJob(job.id)).status,
        "stopped",
      );
    } finally {
      logs.child.kill("SIGKILL");
      await daemon.stop();
    }
  },
);

test("logs: offset starts that many bytes into the view, and is validated", async () => {
  const daemon = await startDaemon();
  try {
    const client = new HostClient(daemon);
    const job = await client.createJob({
      config: { cmd: ["sh", "-c", "printf abc; printf def; printf ghi"] },
    });
    await waitFor(
      async () => (await client.getJob(job.id)).status === "done",
      "the job to end",
    );
    const cases: [number, string][] = [
      [0, "abcdefghi"],
      [4, "efghi"],
      [9, ""],
      [20, ""],
    ];
    for (const [offset, want] of cases) {
      for (const stream of ["stdout", "all"] as const) {
        for (const followed of [false, true]) {
          const text = await readText(
            client.logs(job.id, { offset, stream, follow: followed }),
          );
          assert.equal(text, want, `offset ${offset} ${stream} ${followed}`);
        }
      }
    }
    const res = await fetch(`${daemon.url}/jobs/${job.id}/logs?offset=-1`, {
      headers: authHeader(daemon),
    });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), {
      code: "validation_error",
      message: 'Invalid offset "-1": expected a byte count from 0',
      field: "offset",
    });
  } finally {
    await daemon.stop();
  }
});
