/**
 * End to end: the CLI client (run, ps, inspect, logs, stop, events) against
 * a real daemon on the process backend. What the daemon and its API do on
 * every backend is in test/conformance.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";

import { cliEnv, LORNE, runLorne, startDaemon, waitFor } from "../helpers.js";

test("cli: run in the foreground prints output and exits with the job's status", async () => {
  const daemon = await startDaemon(["--ports", "64000-64009"]);
  try {
    const env = cliEnv(daemon);
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
      [
        "run",
        "--detach",
        "--ports",
        "2",
        "--id",
        "sleeper",
        "--",
        "sleep",
        "60",
      ],
      { env },
    );
    assert.equal(detached.stdout, "sleeper\n");
    const inspect = await runLorne(["inspect", "sleeper"], { env });
    const record = JSON.parse(inspect.stdout) as {
      status: string;
      ports: number[];
    };
    assert.equal(record.status, "running");
    assert.equal(record.ports.length, 2);
    const port = await runLorne(["port", "sleeper"], { env });
    assert.equal(port.stdout, `${record.ports[0]}\n`);
    const second = await runLorne(["port", "sleeper", "1"], { env });
    assert.equal(second.stdout, `${record.ports[1]}\n`);
    const third = await runLorne(["port", "sleeper", "2"], { env });
    assert.equal(third.code, 1);
    assert.equal(
      third.stderr,
      'lorne: Job "sleeper" has no port 2; it has 2\n',
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
