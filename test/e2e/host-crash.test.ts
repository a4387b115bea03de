/**
 * End to end: the daemon killed with SIGKILL in the middle of things, and
 * a shim killed under a running job. The restarted daemon must take over
 * every job still running (output continuing in the same files, stdin and
 * stop working), record the real exit codes of jobs that ended while it
 * was down, leave no job `starting`, and hand back to the pool every port
 * except those of the jobs it took over.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { AttachConnection } from "../../src/host/attach/client.js";
import { HostClient } from "../../src/host/client.js";
import type { JobRecord } from "../../src/host/job.js";
import {
  isAlive,
  readText,
  startDaemon,
  tempDir,
  waitFor,
  type DaemonProcess,
} from "../helpers.js";

const FIRST_PORT = 64400;
/** One port per job of the first daemon: the pool is exactly used up. */
const PORT_COUNT = 40;
const ARGS = [
  "--ports",
  `${FIRST_PORT}-${FIRST_PORT + PORT_COUNT - 1}`,
  "--grace-ms",
  "2000",
];
const PRINTERS = 8;
const READERS = 6;
const ENDERS = 6;
const STARTING = 20;

// Prints 0, 1, 2, ... one line every 20 ms until stopped.
const PRINT = "i=0; while :; do echo $i; i=$((i+1)); sleep 0.02; done";

/** Lines 0..n-1 in order, each once; returns n. */
function checkSequence(text: string, id: string): number {
  const lines = text.split("\n");
  assert.equal(lines.pop(), "", `${id}: output ends with a newline`);
  lines.forEach((line, i) =>
    assert.equal(line, String(i), `${id}: line ${i} (no gap, no repeat)`),
  );
  return lines.length;
}

function lineCount(path: string): number {
  return readFileSync(path, "utf8").split("\n").length - 1;
}

test(
  "crash: a daemon killed while 20 jobs start and 20 run is replaced; jobs, exits and ports come out right",
  {
    timeout: 180_000,
  },
  async () => {
    const go = tempDir("lorne-crash-go-");
    const goFile = join(go.path, "go");
    const daemons: DaemonProcess[] = [];
    const pids: number[] = [];
    try {
      const first = await startDaemon(ARGS);
      daemons.push(first);
      const jobsDir = join(first.stateDir, "jobs");
      let client = new HostClient(first);
      const make = (id: string, cmd: string, stdin = false) =>
        client.createJob({
          id,
          config: { cmd: ["sh", "-c", cmd], tcp_ports: 1, stdin },
        });

      // 20 running: printers, stdin readers, and jobs that end with a known
      // code once the go file appears (while no daemon runs).
      const running = await Promise.all([
        ...Array.from({ length: PRINTERS }, (_, i) =>
          make(`print-${i}`, PRINT),
        ),
        ...Array.from({ length: READERS }, (_, i) =>
          make(`read-${i}`, 'read line; echo "got $line"', true),
        ),
        ...Array.from({ length: ENDERS }, (_, i) =>
          make(
            `end-${i}`,
            `while [ ! -e ${goFile} ]; do sleep 0.05; done; exit ${10 + i}`,
          ),
        ),
      ]);
      for (const job of running) {
        assert.equal(job.status, "running", job.id);
        pids.push(job.pid as number);
      }

      // 20 more in flight: the daemon dies while some are still starting.
      const starts = Array.from({ length: STARTING }, (_, i) =>
        make(`start-${i}`, "sleep 600").catch((err: Error) => err),
      );
      await waitFor(
        async () => (await client.host()).jobs.starting > 0,
        "a job to be starting",
      );
      first.child.kill("SIGKILL");
      await first.exited;
      const answered = await Promise.all(starts);
      for (const a of answered) {
        if (!(a instanceof Error) && a.pid !== null) pids.push(a.pid);
      }
      const linesAtKill = new Map(
        Array.from({ length: PRINTERS }, (_, i) => [
          `print-${i}`,
          lineCount(join(jobsDir, `print-${i}`, "stdout.log")),
        ]),
      );

      writeFileSync(goFile, "");
      await waitFor(
        () =>
          Array.from({ length: ENDERS }, (_, i) =>
            existsSync(join(jobsDir, `end-${i}`, "exit.json")),
          ).every(Boolean),
        "the enders to end while no daemon runs",
      );

      const next = await startDaemon(ARGS, { stateDir: first.stateDir });
      daemons.push(next);
      client = new HostClient(next);
      const jobs = await client.listJobs();
      const byId = new Map(jobs.map((j) => [j.id, j]));
      assert.deepEqual(
        jobs.filter((j) => j.status === "starting").map((j) => j.id),
        [],
        "no job stays starting",
      );
      for (let i = 0; i < ENDERS; i++) {
        const job = byId.get(`end-${i}`) as JobRecord;
        assert.equal(job.status, "crashed", job.id);
        assert.equal(job.exit_status, 10 + i, job.id);
        assert.equal(job.error, null, job.id);
      }
      const log = next.lines.join("\n");
      for (const job of running.filter((j) => !j.id.startsWith("end-"))) {
        const now = byId.get(job.id) as JobRecord;
        assert.equal(now.status, "running", job.id);
        assert.equal(now.pid, job.pid, job.id);
        assert.match(log, new RegExp(`job\\.id=${job.id} at=adopted`));
      }
      // The starts in flight: running (taken over), failed, or never made.
      const started: JobRecord[] = [];
      for (let i = 0; i < STARTING; i++) {
        const job = byId.get(`start-${i}`);
        if (job === undefined) continue;
        if (job.status === "failed") {
          assert.notEqual(job.error, null, job.id);
          continue;
        }
        assert.equal(job.status, "running", job.id);
        assert.equal(isAlive(job.pid as number), true, job.id);
        pids.push(job.pid as number);
        started.push(job);
      }

      // Only the running jobs hold ports, one each, and the rest are free:
      // exactly that many new jobs get one, the next finds none.
      const holders = jobs.filter((j) => j.status === "running");
      const held = holders.flatMap((j) => j.ports);
      for (const j of holders) assert.equal(j.ports.length, 1, j.id);
      assert.equal(new Set(held).size, held.length, "no port held twice");
      assert.equal((await client.host()).ports.used, held.length);
      const free = PORT_COUNT - held.length;
      const extras = await Promise.all(
        Array.from({ length: free }, (_, i) =>
          client.createJob({
            id: `extra-${i}`,
            config: { cmd: ["sleep", "600"], tcp_ports: 1 },
          }),
        ),
      );
      for (const job of extras) {
        assert.equal(job.status, "running", job.id);
        assert.equal(held.includes(job.ports[0] as number), false, job.id);
        pids.push(job.pid as number);
      }
      const none = await client.createJob({
        id: "one-too-many",
        config: { cmd: ["sleep", "600"], tcp_ports: 1 },
      });
      assert.equal(none.status, "failed");
      assert.match(none.error ?? "", /^Cannot allocate a TCP port: all ports/);
      await Promise.all(extras.map((j) => client.stopJob(j.id)));

      // The printers' output goes on in the same files without a gap.
      for (const [id, atKill] of linesAtKill) {
        await waitFor(
          () => lineCount(join(jobsDir, id, "stdout.log")) > atKill + 10,
          `${id} to print on`,
        );
        assert.equal((await client.stopJob(id)).status, "stopped", id);
        checkSequence(await readText(client.logs(id)), id);
      }
      // Stdin reaches the readers through the new daemon.
      for (let i = 0; i < READERS; i++) {
        const id = `read-${i}`;
        const conn = await AttachConnection.open(next, id, {
          stdin: true,
          logs: false,
        });
        await conn.write(Buffer.from(`hello ${i}\n`));
        assert.deepEqual(await conn.exit, {
          status: "done",
          exit_status: 0,
          signal: null,
        });
        assert.equal(await readText(client.logs(id)), `got hello ${i}\n`);
      }
      for (const job of started) {
        assert.equal((await client.stopJob(job.id)).status, "stopped");
      }
      assert.equal((await client.host()).ports.used, 0, "every port returned");
      assert.equal(await next.stop(), 0);
      for (const pid of pids) assert.equal(isAlive(pid), false, `pid ${pid}`);
    } finally {
      await Promise.all(daemons.map((d) => d.stop()));
      for (const pid of pids) {
        try {
          process.kill(-pid, "SIGKILL");
        } catch {
          // ended already
        }
      }
      go.remove();
    }
  },
);

test(
  "crash: a shim killed with SIGKILL ends its job with an unknown exit naming the shim and kills its processes",
  {
    timeout: 60_000,
  },
  async () => {
    const daemon = await startDaemon(ARGS);
    try {
      const client = new HostClient(daemon);
      const job = await client.createJob({
        id: "orphan",
        config: { cmd: ["sh", "-c", "sleep 600 & echo $!; wait"] },
      });
      assert.equal(job.status, "running");
      const child = Number(
        await waitFor(
          async () => (await readText(client.logs(job.id))).trim(),
          "the child's pid",
        ),
      );
      const dir = join(daemon.stateDir, "jobs", job.id);
      const shim = Number(readFileSync(join(dir, "shim.pid"), "utf8"));
      assert.equal(isAlive(shim), true);
      process.kill(shim, "SIGKILL");

      const ended = await waitFor(async () => {
        const j = await client.getJob(job.id);
        return j.status !== "running" && j;
      }, "the job to end");
      assert.equal(ended.status, "crashed");
      assert.equal(ended.exit_status, null);
      assert.equal(ended.signal, null);
      assert.equal(
        ended.error,
        "The job's exit status is unknown: its shim died",
      );
      await waitFor(
        () => !isAlive(job.pid as number) && !isAlive(child),
        "the job's processes to be gone",
      );
      assert.match(daemon.lines.join("\n"), /job\.id=orphan at=shim_lost/);
      assert.equal((await client.host()).id, "test-host");
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  },
);
