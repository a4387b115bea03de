/**
 * Docker backend: a daemon killed with SIGKILL while jobs start and run.
 * Containers outlive it; the next daemon on the same state dir finds them
 * by their labels. Running ones are taken over (their output goes on in
 * the same files, nothing lost or doubled, stop works), the ones that
 * ended meanwhile get their real exit codes, and no job stays `starting`.
 */
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";

import Database from "better-sqlite3";

import { HostClient } from "../../src/host/client.js";
import { readExitFile } from "../../src/host/shim/exitfile.js";
import {
  readText,
  startDaemon,
  waitFor,
  type DaemonProcess,
} from "../helpers.js";
import {
  containersOf,
  describeDocker,
  removeContainersOf,
  runningContainersOf,
  TEST_IMAGE,
  uniqueHostId,
} from "./engine.js";

const ARGS = ["--backend", "docker", "--grace-ms", "2000"];
const BATCH = 20;
// Starting and removing 60 containers, with room for a slow engine.
const SLOW_MS = 60_000;
// Prints numbered lines until stopped: any lost or doubled byte shows.
const COUNTER =
  "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.05; done";

await describeDocker("docker adopt", () => {
  const hostId = uniqueHostId("test-adopt");
  after(() => removeContainersOf(hostId));

  test("adopt: a daemon killed while 20 jobs start and 20 run; the next takes over the running ones", async (t) => {
    const first = await startDaemon(ARGS, { id: hostId });
    const daemons: DaemonProcess[] = [first];
    try {
      const client = new HostClient(first);
      const image = TEST_IMAGE;
      // Half count on; half end with their own code while no daemon runs.
      const running = await Promise.all(
        Array.from({ length: BATCH }, (_, i) =>
          client.createJob({
            config:
              i % 2 === 0
                ? { image, cmd: ["sh", "-c", COUNTER] }
                : {
                    image,
                    cmd: ["sh", "-c", `echo ending; sleep 1; exit ${10 + i}`],
                  },
          }),
        ),
      );
      for (const j of running) assert.equal(j.status, "running");
      const counters = running.filter((_, i) => i % 2 === 0);
      const ending = running.filter((_, i) => i % 2 === 1);
      await waitFor(
        async () => {
          const texts = await Promise.all(
            counters.map((j) => readText(client.logs(j.id))),
          );
          return texts.every((t) => t.includes("line 2\n"));
        },
        "every counter to print",
        SLOW_MS,
      );

      // Twenty more, not awaited: the daemon dies while they start.
      const creates = Promise.allSettled(
        Array.from({ length: BATCH }, () =>
          client.createJob({
            config: { image, cmd: ["sh", "-c", "echo late; exec sleep 60"] },
          }),
        ),
      );
      await waitFor(
        () =>
          first.lines.filter((line) => /\bat=create\b/.test(line)).length >=
          2 * BATCH,
        "the late jobs to be recorded",
        SLOW_MS,
      );
      const before = new Map<string, string>();
      for (const j of counters) {
        before.set(j.id, await readText(client.logs(j.id)));
      }
      first.child.kill("SIGKILL");
      await first.exited;
      await creates;
      await waitFor(
        async () =>
          (
            await Promise.all(
              ending.map((j) => runningContainersOf(hostId, j.id)),
            )
          ).every((ids) => ids.length === 0),
        "the ending jobs to end while no daemon runs",
        SLOW_MS,
      );
      const inodes = counters.map(
        (j) => statSync(join(first.stateDir, "jobs", j.id, "stdout.log")).ino,
      );

      const next = await startDaemon(ARGS, {
        stateDir: first.stateDir,
        id: hostId,
      });
      daemons.push(next);
      const again = new HostClient(next);
      const jobs = await again.listJobs();
      assert.equal(jobs.length, 2 * BATCH);
      assert.deepEqual(
        jobs.filter((j) => j.status === "starting"),
        [],
        "no job stays starting",
      );

      // The ones that ended meanwhile: their own exit codes.
      for (const j of ending) {
        const got = await again.getJob(j.id);
        const i = running.indexOf(j);
        assert.equal(got.status, "crashed", j.id);
        assert.equal(got.exit_status, 10 + i, j.id);
        assert.equal(await readText(again.logs(j.id)), "ending\n");
        assert.deepEqual(await containersOf(hostId, j.id), [], "removed");
      }

      // The counters: taken over, output going on in the same files.
      for (const [n, j] of counters.entries()) {
        assert.equal((await again.getJob(j.id)).status, "running", j.id);
        const path = join(next.stateDir, "jobs", j.id, "stdout.log");
        assert.equal(statSync(path).ino, inodes[n], "the same file");
      }
      const lines = await waitFor(
        async () => {
          const texts = await Promise.all(
            counters.map((j) => readText(again.logs(j.id))),
          );
          const grown = texts.every(
            (t, n) =>
              t.length > (before.get(counters[n]?.id ?? "")?.length ?? 0) + 40,
          );
          return grown && texts;
        },
        "the counters' output to go on",
        SLOW_MS,
      );
      for (const [n, text] of lines.entries()) {
        const id = counters[n]?.id ?? "";
        assert.ok(text.startsWith(before.get(id) ?? "?"), id);
        assertCounted(text, id);
      }

      // The late jobs: each running (taken over) or failed with a reason,
      // and then nothing of a failed one is left.
      const late = jobs.filter((j) => !running.some((r) => r.id === j.id));
      assert.equal(late.length, BATCH);
      for (const j of late) {
        if (j.status === "failed") {
          assert.match(j.error ?? "", /^The daemon stopped before/);
          assert.deepEqual(await containersOf(hostId, j.id), []);
        } else {
          assert.equal(j.status, "running", j.id);
        }
      }

      const failed = late.filter((j) => j.status === "failed").length;
      t.diagnostic(`late jobs: ${BATCH - failed} taken over, ${failed} failed`);

      // Stop works on every job taken over, and removes its container.
      const adopted = (await again.listJobs()).filter(
        (j) => j.status === "running",
      );
      assert.ok(adopted.length >= counters.length);
      const stopped = await Promise.all(
        adopted.map((j) => again.stopJob(j.id)),
      );
      for (const j of stopped) assert.equal(j.status, "stopped", j.id);
      for (const j of adopted) {
        assert.deepEqual(await containersOf(hostId, j.id), [], j.id);
      }
      const counted = await Promise.all(
        counters.map((j) => readText(again.logs(j.id))),
      );
      counted.forEach((text, n) => assertCounted(text, counters[n]?.id ?? ""));
      assert.equal(await next.stop(), 0);
    } finally {
      await Promise.all(daemons.map((d) => d.stop()));
      await removeContainersOf(hostId);
    }
  });

  test("adopt: a job whose container was removed before its exit was recorded ends with that exit", async () => {
    const first = await startDaemon(ARGS, { id: hostId });
    const daemons: DaemonProcess[] = [first];
    try {
      const client = new HostClient(first);
      const job = await client.createJob({
        config: { image: TEST_IMAGE, cmd: ["sh", "-c", "echo bye; exit 9"] },
      });
      const ended = await waitFor(
        async () => {
          const got = await client.getJob(job.id);
          return got.status !== "running" && got;
        },
        "the job to end",
        SLOW_MS,
      );
      assert.equal(ended.exit_status, 9);
      const dir = join(first.stateDir, "jobs", job.id);
      assert.equal(readExitFile(dir)?.exitStatus, 9, "written before removal");
      assert.deepEqual(await containersOf(hostId, job.id), []);
      first.child.kill("SIGKILL");
      await first.exited;

      // As if the daemon had died after removing the container, before
      // recording the exit: the record still says running.
      const db = new Database(join(first.stateDir, "host.db"));
      try {
        const row = db
          .prepare("SELECT record FROM jobs WHERE id = ?")
          .get(job.id) as { record: string };
        const record = JSON.parse(row.record) as Record<string, unknown>;
        Object.assign(record, {
          status: "running",
          exit_status: null,
          ended_at: null,
        });
        db.prepare("UPDATE jobs SET status = ?, record = ? WHERE id = ?").run(
          "running",
          JSON.stringify(record),
          job.id,
        );
      } finally {
        db.close();
      }

      const next = await startDaemon(ARGS, {
        stateDir: first.stateDir,
        id: hostId,
      });
      daemons.push(next);
      const again = new HostClient(next);
      const got = await again.getJob(job.id);
      assert.equal(got.status, "crashed");
      assert.equal(got.exit_status, 9);
      assert.equal(got.error, null);
      assert.equal(await readText(again.logs(job.id)), "bye\n");
      assert.equal(await next.stop(), 0);
    } finally {
      await Promise.all(daemons.map((d) => d.stop()));
      await removeContainersOf(hostId);
    }
  });
});

// "line 0\nline 1\n..." with no line missing or doubled.
function assertCounted(text: string, id: string): void {
  const lines = text.split("\n");
  assert.equal(lines.pop(), "", `${id}: ends with a whole line`);
  lines.forEach((line, i) => assert.equal(line, `line ${i}`, id));
}
