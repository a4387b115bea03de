/**
 * Conformance, part two: the daemon's life on every backend (manifest boot,
 * shutdown, a bad manifest, the state dir lock, leftovers and `--force`,
 * port exhaustion). Each test runs daemons of its own.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { HostClient } from "../../src/host/client.js";
import type { JobRecord } from "../../src/host/job.js";
import {
  cliEnv,
  readText,
  runLorne,
  startDaemon,
  tempDir,
  waitFor,
} from "../helpers.js";
import type { BackendUnderTest } from "./backend.js";

/** Registers the daemon tests for one backend; see the module comment. */
export function defineDaemonTests(backend: BackendUnderTest): void {
  const { job, hostId } = backend;
  const ports = `${backend.firstPort}-${backend.firstPort + 99}`;
  const args = [...backend.daemonArgs, "--ports", ports];

  test("daemon: boots the manifest; the web service answers and the worker reaches it", async () => {
    const fixture = backend.manifest;
    const daemon = await startDaemon([...args, "--manifest", fixture.path], {
      id: hostId,
      env: { ...process.env, ...fixture.env },
    });
    let jobs: JobRecord[] = [];
    try {
      const client = new HostClient(daemon);
      // The daemon listens first, then starts the services in order.
      jobs = await waitFor(async () => {
        const list = await client.listJobs();
        return list.length === 2 && list.every((j) => j.status !== "starting")
          ? list
          : null;
      }, "both services to start");
      assert.deepEqual(
        jobs.map((j) => [j.id, j.status]),
        [
          ["web", "running"],
          ["worker", "running"],
        ],
      );
      const web = jobs[0] as JobRecord;
      const page = await waitFor(async () => {
        const res = await fetch(`http://127.0.0.1:${web.ports[0]}/`);
        return res.ok && res.text();
      }, "web page");
      for (const pattern of fixture.page(hostId)) assert.match(page, pattern);

      // The worker got web's address through the template and reached it.
      await waitFor(
        async () =>
          fixture.workerReachedWeb.test(await readText(client.logs("worker"))),
        "worker to reach web",
      );

      const ps = await runLorne(["ps", "--host", daemon.url], {
        env: cliEnv(daemon),
      });
      assert.equal(ps.code, 0);
      assert.match(
        ps.stdout,
        /^ID\s+STATUS\s+PID\s+PORTS\s+CREATED\s+COMMAND$/m,
      );
      for (const line of fixture.ps) assert.match(ps.stdout, line);
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
    for (const j of jobs) assert.equal(await backend.isGone(j, hostId), true);
  });

  test("daemon: SIGTERM stops every job, logs it, and exits 0 leaving nothing running", async () => {
    const daemon = await startDaemon(args, { id: hostId });
    const client = new HostClient(daemon);
    const jobs = await Promise.all(
      [1, 2, 3].map(() => client.createJob({ config: job(["sleep", "60"]) })),
    );
    for (const j of jobs) assert.equal(j.status, "running");
    assert.equal(await daemon.stop(), 0);
    for (const j of jobs) assert.equal(await backend.isGone(j, hostId), true);
    const log = daemon.lines.join("\n");
    assert.match(log, /fn=daemon at=shutdown/);
    assert.match(log, /fn=daemon at=stopped/);
    assert.equal((log.match(/at=exit status=stopped/g) ?? []).length, 3);
    // The lock is gone; the state file stays, its WAL checkpointed away,
    // and the token, which clients keep using across restarts.
    const left = readdirSync(daemon.stateDir).sort();
    assert.deepEqual(
      left.filter((name) => name !== "shims"),
      ["host.db", "jobs", "token"],
    );
    // Every shim ended with its job and took its socket along.
    if (left.includes("shims")) {
      assert.deepEqual(readdirSync(join(daemon.stateDir, "shims")), []);
    }
  });

  test("daemon: a bad manifest stops it before anything starts, naming service and field", async () => {
    const state = tempDir();
    const bad = JSON.stringify([
      backend.service({ id: "ok", cmd: ["sleep", "60"] }),
      backend.service({ id: "broken", cmd: ["echo", "{{ .Nope "] }),
    ]);
    try {
      await assert.rejects(
        startDaemon([...args, "--manifest", "-"], {
          stdin: bad,
          stateDir: state.path,
          id: hostId,
        }),
        (err: Error) => {
          // Bad input: exit status 2 (docs/host.md).
          assert.match(err.message, /exited 2/);
          assert.match(err.message, /service "broken"/);
          assert.match(err.message, /cmd\[1\]/);
          return true;
        },
      );
      assert.deepEqual(readdirSync(state.path), [], "nothing was created");
    } finally {
      state.remove();
    }
  });

  test("daemon: a second daemon on the same state dir is refused", async () => {
    const daemon = await startDaemon(args, { id: hostId });
    try {
      await assert.rejects(
        startDaemon(args, { stateDir: daemon.stateDir, id: hostId }),
        /is using it/,
      );
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  });

  test(
    "daemon: a killed daemon's running job is taken over by the next one",
    {
      skip: backend.adopts ? false : "this backend cannot take jobs over yet",
    },
    async () => {
      const first = await startDaemon(args, { id: hostId });
      const stateDir = first.stateDir;
      const daemons = [first];
      let kept: JobRecord | undefined;
      try {
        const client = new HostClient(first);
        // Without a shim to hold it, a job's stdin ends with its daemon:
        // then the job waits in a sleep instead of a read.
        const waits = backend.keepsStdin
          ? job(["sh", "-c", "echo before; read x; echo after $x"], {
              stdin: true,
            })
          : job(["sh", "-c", "echo before; exec sleep 60"]);
        const created = await client.createJob({ config: waits });
        // The pid the first daemon knew (a container's comes a bit later).
        kept = await waitFor(async () => {
          const j = await client.getJob(created.id);
          return (j.pid !== null || backend.reportsPid) && j;
        }, "the job's pid");
        await waitFor(
          async () => (await readText(client.logs(created.id))) === "before\n",
          "the job's first output",
        );
        const ended = await client.createJob({
          config: job(["sh", "-c", "sleep 0.3; exit 7"]),
        });
        first.child.kill("SIGKILL");
        await first.exited;
        // The short job ends while no daemon runs.
        await waitFor(
          () => backend.hasEnded(ended, hostId),
          "short job to end",
        );

        const next = await startDaemon(args, { stateDir, id: hostId });
        daemons.push(next);
        const again = new HostClient(next);
        const taken = await again.getJob(kept.id);
        assert.equal(taken.status, "running");
        assert.equal(taken.pid, kept.pid);
        assert.match(
          next.lines.join("\n"),
          new RegExp(`job\\.id=${kept.id} at=adopted`),
        );
        // Its output so far is there, and stop works on it.
        assert.equal(await readText(again.logs(kept.id)), "before\n");
        const stopped = await again.stopJob(kept.id);
        assert.equal(stopped.status, "stopped");
        await waitFor(() => backend.isGone(taken, hostId), "job to be gone");
        // The job that ended meanwhile has its real exit status.
        const short = await again.getJob(ended.id);
        assert.equal(short.status, "crashed");
        assert.equal(short.exit_status, 7);
        assert.equal(await next.stop(), 0);
      } finally {
        await Promise.all(daemons.map((d) => d.stop()));
        if (kept) await backend.destroy(kept, hostId);
      }
    },
  );

  test("daemon: --force stops jobs a killed daemon left running that no record explains", async () => {
    // A state file in memory: the next daemon has no record of the job.
    const memory = [...args, "--state-store", "memory"];
    const first = await startDaemon(memory, { id: hostId });
    const stateDir = first.stateDir;
    const daemons = [first];
    let leftover: JobRecord | undefined;
    try {
      leftover = await new HostClient(first).createJob({
        config: job(["sleep", "60"]),
      });
      first.child.kill("SIGKILL");
      await first.exited;
      assert.equal(
        await backend.isGone(leftover, hostId),
        false,
        "job outlived its daemon",
      );

      const warned = await startDaemon(memory, { stateDir, id: hostId });
      daemons.push(warned);
      assert.match(warned.lines.join("\n"), /at=leftover_jobs count=1/);
      assert.equal(await warned.stop(), 0);
      assert.equal(await backend.isGone(leftover, hostId), false);

      const forced = await startDaemon(
        [...memory, "--force", "--grace-ms", "2000"],
        { stateDir, id: hostId },
      );
      daemons.push(forced);
      const left = leftover;
      await waitFor(
        () => backend.isGone(left, hostId),
        "leftover job to be gone",
      );
      assert.equal(await forced.stop(), 0);
    } finally {
      await Promise.all(daemons.map((d) => d.stop()));
      if (leftover) await backend.destroy(leftover, hostId);
    }
  });

  test("daemon: port exhaustion fails the job with a clear error", async () => {
    const only = backend.firstPort + 500;
    const daemon = await startDaemon(
      [...backend.daemonArgs, "--ports", `${only}-${only}`],
      { id: hostId },
    );
    try {
      const client = new HostClient(daemon);
      const first = await client.createJob({
        config: job(["sleep", "60"], { tcp_ports: 1 }),
      });
      assert.equal(first.status, "running");
      assert.deepEqual(first.ports, [only]);
      const second = await client.createJob({
        config: job(["sleep", "60"], { tcp_ports: 1 }),
      });
      assert.equal(second.status, "failed");
      assert.equal(
        second.error,
        `Cannot allocate a TCP port: all ports in ${only}-${only} are in use`,
      );
      assert.equal(await backend.isGone(second, hostId), true);
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  });
}
