/**
 * End to end: the state dir on a 2 MiB tmpfs that fills up while a job
 * runs. Requests that need a write get a 503 naming the state file, the
 * daemon logs why and stays up, a job's end is kept until it can be
 * written, and once space returns new jobs start and are recorded. The
 * state file passes SQLite's integrity check afterwards. Needs root (or
 * CAP_SYS_ADMIN) to mount; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import Database from "better-sqlite3";

import { HostClient } from "../../src/host/client.js";
import type { JobRecord } from "../../src/host/job.js";
import {
  authHeader,
  startDaemon,
  tempDir,
  waitFor,
  type DaemonProcess,
} from "../helpers.js";

const ARGS = ["--ports", "64450-64459", "--grace-ms", "2000"];

/** Mounts a 2 MiB tmpfs on a new dir; the reason it cannot, as a string. */
function mountTiny(): { path: string; unmount: () => void } | string {
  const path = mkdtempSync(join(tmpdir(), "lorne-full-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", path], {
      stdio: "pipe",
    });
  } catch (err) {
    rmSync(path, { recursive: true, force: true });
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return `cannot mount a tmpfs (needs root): ${stderr || String(err)}`;
  }
  return {
    path,
    unmount: () => {
      execFileSync("umount", [path]);
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/** Writes `path` until the file system is full. */
function fill(path: string): void {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
}

test(
  "disk full: clear 503s and log lines, no lost or damaged state, and recovery once space returns",
  {
    timeout: 60_000,
  },
  async (t) => {
    const mount = mountTiny();
    if (typeof mount === "string") {
      t.skip(mount);
      return;
    }
    const state = mount.path;
    const filler = join(state, "filler");
    const copy = tempDir("lorne-full-copy-");
    const daemons: DaemonProcess[] = [];
    try {
      const daemon = await startDaemon(ARGS, { stateDir: state });
      daemons.push(daemon);
      const client = new HostClient(daemon);
      // A job that writes output all along, into the same file system.
      const steady = await client.createJob({
        id: "steady",
        config: {
          cmd: ["sh", "-c", "while :; do echo line; sleep 0.02; done"],
          tcp_ports: 1,
        },
      });
      assert.equal(steady.status, "running");

      fill(filler);
      const res = await fetch(`${daemon.url}/jobs/refused`, {
        method: "PUT",
        headers: { ...authHeader(daemon), "content-type": "application/json" },
        body: JSON.stringify({ config: { cmd: ["true"], tcp_ports: 1 } }),
      });
      assert.equal(res.status, 503);
      const message =
        `Cannot save state to "${join(state, "host.db")}": ` +
        "database or disk is full";
      assert.deepEqual(await res.json(), { code: "unavailable", message });
      // Nothing of the refused job is kept, in memory either.
      assert.equal(
        (
          await fetch(`${daemon.url}/jobs/refused`, {
            headers: authHeader(daemon),
          })
        ).status,
        404,
      );
      assert.equal((await client.host()).ports.used, 1);
      // The daemon's log is buffered: the line may come after the answer.
      const logged = await waitFor(
        () =>
          daemon.lines.find((l) =>
            /at=request method=PUT path=\/jobs\/refused status=503/.test(l),
          ),
        "the refused request's log line",
      );
      assert.match(logged, / err=".*database or disk is full"/);

      // The job's end cannot be written yet: it is retried, the stop waits.
      const stopping = client.stopJob(steady.id);
      await waitFor(
        () =>
          daemon.lines.some((l) =>
            /job\.id=steady at=state_error err=".*database or disk is full" attempt=2/.test(
              l,
            ),
          ),
        "the end's record to be retried",
      );
      assert.equal((await client.getJob(steady.id)).status, "running");
      assert.equal(daemon.child.exitCode, null, "the daemon is up");

      rmSync(filler);
      const stopped = await stopping;
      assert.equal(stopped.status, "stopped");
      assert.equal(stopped.signal, "SIGTERM");
      const after = await client.createJob({
        id: "after",
        config: { cmd: ["sh", "-c", "echo fine"], tcp_ports: 1 },
      });
      assert.equal(after.status, "running");
      const done = await waitFor(async () => {
        const j = await client.getJob(after.id);
        return j.status === "done" && j;
      }, "the new job to end");
      assert.equal((await client.host()).ports.used, 0);
      const listed = await client.listJobs();
      assert.equal(await daemon.stop(), 0);

      // A copy of the state file is whole and holds what the API said.
      for (const name of ["host.db", "host.db-wal"]) {
        const from = join(state, name);
        if (existsSync(from)) copyFileSync(from, join(copy.path, name));
      }
      const db = new Database(join(copy.path, "host.db"), { readonly: true });
      try {
        assert.deepEqual(db.pragma("integrity_check"), [
          { integrity_check: "ok" },
        ]);
        const rows = db
          .prepare("SELECT id, status, record FROM jobs ORDER BY seq")
          .all() as { id: string; status: string; record: string }[];
        assert.deepEqual(
          rows.map((r) => [r.id, r.status]),
          [
            ["steady", "stopped"],
            ["after", "done"],
          ],
        );
        assert.deepEqual(JSON.parse(rows[1]?.record ?? "") as JobRecord, done);
        assert.equal(
          (db.prepare("SELECT count(*) AS n FROM ports").get() as { n: number })
            .n,
          0,
        );
      } finally {
        db.close();
      }

      // And a daemon started on it again finds the same jobs.
      const again = await startDaemon(ARGS, { stateDir: state });
      daemons.push(again);
      assert.deepEqual(await new HostClient(again).listJobs(), listed);
      assert.equal(await again.stop(), 0);
    } finally {
      await Promise.all(daemons.map((d) => d.stop()));
      copy.remove();
      mount.unmount();
    }
  },
);
