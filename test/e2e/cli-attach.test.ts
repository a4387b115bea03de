/**
 * End to end: how `lorne attach` and `lorne run` leave a job (signals, a
 * broken pipe, repeated Ctrl-C), which stdin `lorne attach` forwards, what
 * attaching to a job that never started prints, and `lorne run --id` of a
 * job that exists already, against a real daemon and real processes.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";

import { WebSocketServer } from "ws";

import { encodeServer } from "../../src/host/attach/protocol.js";
import type { HostClient } from "../../src/host/client.js";
import {
  cliEnv,
  LORNE,
  ROOT,
  runLorne,
  startDaemon,
  waitFor,
  type DaemonProcess,
  useDaemon,
} from "../helpers.js";

let daemon: DaemonProcess;
let client: HostClient;
useDaemon(["--grace-ms", "500"], (d, c) => ((daemon = d), (client = c)));

interface Cli {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts `lorne ARGS` against `on` with stdin a pipe left open. */
function startLorne(args: string[], on = daemon): Cli {
  const child = spawn(process.execPath, [LORNE, ...args], {
    cwd: ROOT,
    env: cliEnv(on),
    timeout: 30_000,
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("close", (code) => resolve(code)),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

async function status(id: string): Promise<string> {
  return (await client.getJob(id)).status;
}

const ready = ["sh", "-c", "echo ready; exec sleep 60"];

for (const [signal, code, said] of [
  ["SIGINT", 130, "interrupted"],
  ["SIGTERM", 143, "terminated"],
  ["SIGHUP", 129, "hung up"],
] as const) {
  test(`cli attach: ${signal} leaves the job running, exit ${code}`, async () => {
    const id = `leave-${signal}`;
    await client.createJob({ id, config: { cmd: ready } });
    try {
      const cli = startLorne(["attach", "--logs", id]);
      await waitFor(() => cli.stdout() === "ready\n", `ready from ${id}`);
      cli.child.kill(signal);

      assert.equal(await cli.exited, code);
      assert.equal(
        cli.stderr(),
        `lorne attach: ${said}; job "${id}" goes on (lorne attach ${id})\n`,
      );
      assert.equal(await status(id), "running");
      // The host logs the session's end, the client's leaving too.
      await waitFor(
        () =>
          daemon.lines.some(
            (l) =>
              l.includes("fn=attach") &&
              l.includes(`job.id=${id}`) &&
              l.includes("at=finish reason=client_left"),
          ),
        `the host to log that ${id}'s attacher left`,
      );
    } finally {
      await client.stopJob(id);
    }
  });
}

test("cli attach: a reader that goes away leaves the job running, exit 0", async () => {
  const id = "leave-pipe";
  await client.createJob({
    id,
    config: { cmd: ["sh", "-c", "while :; do echo tick; sleep 0.05; done"] },
  });
  try {
    const cli = startLorne(["attach", id]);
    await waitFor(() => cli.stdout().includes("tick"), "a tick");
    cli.child.stdout?.destroy();

    assert.equal(await cli.exited, 0);
    assert.equal(cli.stderr(), "");
    assert.equal(await status(id), "running");
  } finally {
    await client.stopJob(id);
  }
});

test("cli attach: --sig-proxy passes SIGINT on to the job", async () => {
  const id = "proxy-int";
  await client.createJob({ id, config: { cmd: ready } });
  const cli = startLorne(["attach", "--logs", "--sig-proxy", id]);
  await waitFor(() => cli.stdout() === "ready\n", `ready from ${id}`);
  cli.child.kill("SIGINT");

  assert.equal(await cli.exited, 130);
  const record = await client.getJob(id);
  assert.equal(record.status, "crashed");
  assert.equal(record.signal, "SIGINT");
});

test("cli attach: a job that failed to start prints its error, exit 127", async () => {
  const id = "never-started";
  const job = await client.createJob({ id, config: { cmd: ["/nonexistent"] } });
  assert.equal(job.status, "failed");

  const result = await runLorne(["attach", id], { env: cliEnv(daemon) });
  assert.equal(result.code, 127);
  assert.equal(result.stdout, "");
  assert.equal(result.stderr, `lorne attach: ${job.error}\n`);
});

test("cli attach: stdin at its end closes nothing without --stdin; with --stdin it reaches the job", async () => {
  const id = "shared-stdin";
  await client.createJob({
    id,
    config: {
      cmd: ["sh", "-c", "echo ready; cat; echo cat-ended"],
      stdin: true,
    },
  });
  // Its stdin ends at once (as with </dev/null, cron or ssh -n).
  const watcher = startLorne(["attach", "--logs", id]);
  watcher.child.stdin?.end();
  await waitFor(() => watcher.stdout() === "ready\n", `ready from ${id}`);

  const writer = await runLorne(["attach", "--stdin", id], {
    env: cliEnv(daemon),
    input: "hello\n",
  });
  assert.equal(writer.stdout, "hello\ncat-ended\n");
  assert.equal(writer.code, 0);
  assert.equal(await watcher.exited, 0);
  assert.equal(watcher.stdout(), "ready\nhello\ncat-ended\n");
});

test("cli run: a third Ctrl-C within 2 s leaves a job that ignores them", async () => {
  const id = "ignores-int";
  const cli = startLorne([
    "run",
    "--id",
    id,
    "--",
    "sh",
    "-c",
    "trap '' INT; echo ready; while :; do sleep 1; done",
  ]);
  try {
    await waitFor(() => cli.stdout() === "ready\n", `ready from ${id}`);
    for (let i = 0; i < 3; i++) {
      cli.child.kill("SIGINT");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    assert.equal(await cli.exited, 130);
    assert.equal(
      cli.stderr(),
      `lorne run: interrupted 3 times; job "${id}" goes on (lorne attach ${id})\n`,
    );
    assert.equal(await status(id), "running");
  } finally {
    await client.stopJob(id);
  }
});

test("cli run: --id of an existing job is refused before any of its output", async () => {
  await client.createJob({ id: "re1", config: { cmd: ["echo", "old"] } });
  await waitFor(async () => (await status("re1")) === "done", "re1 to end");
  // Running and without config.stdin: the conflict still wins.
  await client.createJob({ id: "tk2", config: { cmd: ready } });
  try {
    for (const id of ["re1", "tk2"]) {
      const result = await runLorne(["run", "--id", id, "--", "echo", "new"], {
        env: cliEnv(daemon),
      });
      assert.equal(result.stdout, "", id);
      assert.equal(
        result.stderr,
        `lorne: Cannot create job "${id}": it exists already\n`,
      );
      assert.equal(result.code, 1);
    }
  } finally {
    await client.stopJob("tk2");
  }
});

test("cli run: --id of a job an earlier daemon ended replaces it, attached as with -d", async () => {
  const first = await startDaemon();
  const env = (d: DaemonProcess) => cliEnv(d);
  for (const id of ["old-a", "old-d"]) {
    const result = await runLorne(["run", "--id", id, "--", "echo", "one"], {
      env: env(first),
    });
    assert.equal(result.stdout, "one\n");
  }
  assert.equal(await first.stop(), 0);
  const second = await startDaemon([], { stateDir: first.stateDir });
  try {
    const attached = await runLorne(
      ["run", "--id", "old-a", "--", "echo", "two"],
      { env: env(second) },
    );
    assert.equal(attached.stderr, "");
    assert.equal(attached.stdout, "two\n");
    assert.equal(attached.code, 0);
    const detached = await runLorne(
      ["run", "-d", "--id", "old-d", "--", "echo", "two"],
      { env: env(second) },
    );
    assert.equal(detached.stdout, "old-d\n");

    // Now a job of this daemon: refused, as any existing job is.
    const again = await runLorne(
      ["run", "--id", "old-a", "--", "echo", "three"],
      { env: env(second) },
    );
    assert.equal(again.stdout, "");
    assert.equal(
      again.stderr,
      `lorne: Cannot create job "old-a": it exists already\n`,
    );
  } finally {
    assert.equal(await second.stop(), 0);
  }
});

test("cli run: --detach gives a job stdin only with --stdin, for a later attach --stdin", async () => {
  const opts = { env: cliEnv(daemon) };
  const plain = await runLorne(["run", "-d", "--", "cat"], opts);
  assert.equal(plain.code, 0);
  const plainId = plain.stdout.trim();
  // No stdin: cat reads end-of-file at once and is done.
  await waitFor(async () => (await status(plainId)) === "done", "cat done");
  assert.equal((await client.getJob(plainId)).config.stdin, undefined);

  const open = await runLorne(["run", "-d", "--stdin", "--", "cat"], opts);
  assert.equal(open.code, 0);
  const id = open.stdout.trim();
  assert.equal((await client.getJob(id)).config.stdin, true);
  assert.equal(await status(id), "running");
  const writer = await runLorne(["attach", "--stdin", id], {
    ...opts,
    input: "fed later\n",
  });
  assert.equal(writer.stdout, "fed later\n");
  assert.equal(writer.code, 0);
  assert.equal(await status(id), "done");
});

test("cli run: a host that drops the create request is said to maybe have made the job", async () => {
  // A stand-in host: it holds the attacher as waiting, then drops the
  // connection of the create request, as a daemon killed mid-request does.
  const server = createServer((req) => req.socket.destroy());
  const wss = new WebSocketServer({ server });
  wss.on("connection", (ws) => ws.send(encodeServer({ type: "waiting" })));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const result = await runLorne(
      ["run", "--no-stdin", "--id", "dropped", "--", "true"],
      {
        env: {
          ...process.env,
          LORNE_HOST: `http://127.0.0.1:${port}`,
          LORNE_TOKEN: "t",
          LORNE_SOCKET: "",
        },
      },
    );
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /; job "dropped" may have been created all the same \(lorne inspect dropped\)\n$/,
    );
  } finally {
    wss.close();
    server.close();
  }
});

test("cli run: a create the host refuses ends the run at once with the host's error", async () => {
  // The host holds the attacher for the job (30 s by default): without
  // giving up on a failed create, this would wait that long.
  const result = await runLorne(
    ["run", "--no-stdin", "--workdir", "relative", "--", "true"],
    { env: cliEnv(daemon), timeoutMs: 10_000 },
  );
  assert.equal(result.code, 2, result.stderr);
  assert.match(
    result.stderr,
    /^lorne: Invalid config\.working_dir "relative": expected an absolute path/,
  );
});
