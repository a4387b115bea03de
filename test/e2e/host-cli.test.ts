/**
 * End to end: the daemon's life (manifest boot, shutdown, leftovers, the
 * state dir lock) and the CLI client against a real daemon.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { test } from "node:test";

import { HostClient } from "../../src/host/client.js";
import {
  isAlive,
  LORNE,
  runLorne,
  startDaemon,
  tempDir,
  waitFor,
} from "../helpers.js";

test("daemon: boots the example manifest; the web service answers and the worker reaches it", async () => {
  const daemon = await startDaemon(["--manifest", "examples/manifest.json"], {
    env: { ...process.env, WORKER_INTERVAL_MS: "100" },
  });
  try {
    const client = new HostClient(daemon.url);
    const jobs = await client.listJobs();
    assert.deepEqual(
      jobs.map((j) => [j.id, j.status]),
      [
        ["web", "running"],
        ["worker", "running"],
      ],
    );
    const web = jobs[0];
    const page = await waitFor(async () => {
      const res = await fetch(`http://127.0.0.1:${web?.ports[0]}/`);
      return res.ok && res.text();
    }, "web page");
    assert.match(page, /Hello from lorne/);
    assert.match(
      page,
      /Job <code>web<\/code> on host\s+<code>test-host<\/code>/,
    );

    // The worker got the web port through the template and logs its checks.
    await waitFor(async () => {
      let out = "";
      for await (const c of client.logs("worker"))
        out += Buffer.from(c).toString();
      return out.includes("at=finish") && out.includes("status=200");
    }, "worker check lines");

    const ps = await runLorne(["ps", "--host", daemon.url]);
    assert.equal(ps.code, 0);
    assert.match(ps.stdout, /^ID\s+STATUS\s+PID\s+PORTS\s+CREATED\s+COMMAND$/m);
    assert.match(
      ps.stdout,
      /^web\s+running\s+\d+\s+\d+\s+\S+\s+node examples\/web\.mjs$/m,
    );
    assert.match(
      ps.stdout,
      /^worker\s+running\s+\d+\s+-\s+\S+\s+node examples\/worker\.mjs$/m,
    );
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});

test("daemon: SIGTERM stops every job, logs it, and exits 0 leaving no process", async () => {
  const daemon = await startDaemon();
  const client = new HostClient(daemon.url);
  const jobs = await Promise.all(
    [1, 2, 3].map(() => client.createJob({ config: { cmd: ["sleep", "60"] } })),
  );
  assert.equal(await daemon.stop(), 0);
  for (const job of jobs) assert.equal(isAlive(job.pid as number), false);
  const log = daemon.lines.join("\n");
  assert.match(log, /fn=daemon at=shutdown/);
  assert.match(log, /fn=daemon at=stopped/);
  assert.equal((log.match(/at=exit status=stopped/g) ?? []).length, 3);
  assert.deepEqual(readdirSync(daemon.stateDir).sort(), ["jobs"]);
});

test("daemon: a bad manifest stops it before anything starts, naming service and field", async () => {
  const state = tempDir();
  const bad = JSON.stringify([
    { id: "ok", cmd: ["sleep", "60"] },
    { id: "broken", cmd: ["echo", "{{ .Nope "] },
  ]);
  await assert.rejects(
    startDaemon(["--manifest", "-"], { stdin: bad, stateDir: state.path }),
    (err: Error) => {
      assert.match(err.message, /exited 1/);
      assert.match(err.message, /service "broken"/);
      assert.match(err.message, /cmd\[1\]/);
      return true;
    },
  );
  assert.deepEqual(readdirSync(state.path), [], "nothing was created");
  state.remove();
});

test("daemon: a second daemon on the same state dir is refused", async () => {
  const daemon = await startDaemon();
  try {
    await assert.rejects(
      startDaemon([], { stateDir: daemon.stateDir }),
      /is using it/,
    );
  } finally {
    await daemon.stop();
  }
});

test("daemon: --force stops jobs a killed daemon left running", async () => {
  const first = await startDaemon();
  const job = await new HostClient(first.url).createJob({
    config: { cmd: ["sleep", "60"] },
  });
  first.child.kill("SIGKILL");
  await first.exited;
  assert.equal(isAlive(job.pid as number), true, "job outlived its daemon");

  const warned = await startDaemon([], { stateDir: first.stateDir });
  assert.match(warned.lines.join("\n"), /at=leftover_jobs count=1/);
  await warned.stop();
  assert.equal(isAlive(job.pid as number), true);

  const forced = await startDaemon(["--force", "--grace-ms", "2000"], {
    stateDir: first.stateDir,
  });
  try {
    await waitFor(() => !isAlive(job.pid as number), "leftover job to die");
  } finally {
    await forced.stop();
  }
});

test("daemon: port exhaustion fails the job with a clear error", async () => {
  const daemon = await startDaemon(["--ports", "57500-57500"]);
  try {
    const client = new HostClient(daemon.url);
    const first = await client.createJob({
      config: { cmd: ["sleep", "60"], tcp_ports: 1 },
    });
    assert.equal(first.status, "running");
    const second = await client.createJob({
      config: { cmd: ["sleep", "60"], tcp_ports: 1 },
    });
    assert.equal(second.status, "failed");
    assert.equal(
      second.error,
      "Cannot allocate a TCP port: all ports in 57500-57500 are in use",
    );
  } finally {
    await daemon.stop();
  }
});

test("cli: run in the foreground prints output and exits with the job's status", async () => {
  const daemon = await startDaemon();
  try {
    const env = { ...process.env, LORNE_HOST: daemon.url };
    const result = await runLorne(
      [
        "run",
        "--env",
        "WHO=world",
        "--",
        "sh",
        "-c",
        'echo "hi $WHO"; echo warn >&2; exit 3',
      ],
      { env },
    );
    assert.equal(result.stdout, "hi world\n");
    assert.equal(result.stderr, "warn\n");
    assert.equal(result.code, 3);

    const missing = await runLorne(["run", "--", "/no/such/cmd"], { env });
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /^lorne run: Cannot start "\/no\/such\/cmd"/);

    const detached = await runLorne(
      ["run", "--detach", "--id", "sleeper", "--", "sleep", "60"],
      { env },
    );
    assert.equal(detached.stdout, "sleeper\n");
    const inspect = await runLorne(["inspect", "sleeper"], { env });
    assert.equal(
      (JSON.parse(inspect.stdout) as { status: string }).status,
      "running",
    );
    const stop = await runLorne(["stop", "sleeper"], { env });
    assert.equal(stop.stdout, "sleeper stopped\n");
    const all = await runLorne(["ps", "--all", "--json"], { env });
    const ids = (JSON.parse(all.stdout) as { id: string }[]).map((j) => j.id);
    assert.ok(ids.includes("sleeper"));
    const running = await runLorne(["ps"], { env });
    assert.doesNotMatch(running.stdout, /sleeper/);

    const logs = await runLorne(["logs", "--stream", "stdout", "sleeper"], {
      env,
    });
    assert.equal(logs.code, 0);
    const events = spawn(
      process.execPath,
      [LORNE, "events", "--job", "sleeper"],
      { env },
    );
    let printed = "";
    events.stdout.on("data", (d: Buffer) => (printed += d.toString()));
    await waitFor(
      () => printed.includes("event=stop"),
      "events to print the stop",
    );
    events.kill();
    const lines = printed.trim().split("\n");
    assert.deepEqual(
      lines.map((l) =>
        /event=(\w+) job\.id=sleeper status=(\w+)/.exec(l)?.slice(1),
      ),
      [
        ["create", "starting"],
        ["start", "running"],
        ["stop", "stopped"],
      ],
    );

    const notFound = await runLorne(["inspect", "ghost"], { env });
    assert.equal(notFound.code, 1);
    assert.equal(notFound.stderr, 'lorne: Job "ghost" not found\n');

    const badFlag = await runLorne(["run", "--ports", "x", "--", "true"], {
      env,
    });
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /Invalid --ports "x"/);

    const unreachable = await runLorne(["ps", "--host", "http://127.0.0.1:1"]);
    assert.equal(unreachable.code, 1);
    assert.match(
      unreachable.stderr,
      /Cannot reach lorne host at http:\/\/127\.0\.0\.1:1/,
    );
  } finally {
    await daemon.stop();
  }
});
