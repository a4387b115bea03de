/**
 * End to end: 1,000 process jobs started and stopped through the API in
 * waves. Afterwards the port pool is empty again and the daemon holds
 * exactly the file descriptors it held before the waves: nothing a job
 * used (shim pipes and sockets, output files, API connections) is kept.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { test } from "node:test";

import { HostClient } from "../../src/host/client.js";
import type { JobRecord } from "../../src/host/job.js";
import { authHeader, startDaemon, waitFor } from "../helpers.js";

const WAVES = 10;
const PER_WAVE = 100;
/** Starts (and stops) in progress at once, under the API's limit of 32. */
const CONCURRENCY = 16;
const PORTS = ["--ports", "64500-64799"];

// Keep-alive connections would count as daemon descriptors for a while
// after each request; without them every connection closes with its
// request, so the counts before and after compare exactly.
http.globalAgent = new http.Agent({ keepAlive: false });

/**
 * What each open descriptor of `pid` points at, sorted, with socket and
 * pipe inode numbers left out: the spare shim's stdio (a socket pair) is
 * a new one after every start, the same kind and count.
 */
function openFds(pid: number): string[] {
  const dir = `/proc/${pid}/fd`;
  return readdirSync(dir)
    .map((fd) => {
      try {
        return readlinkSync(join(dir, fd)).replace(
          /^(socket|pipe):\[\d+\]$/,
          "$1",
        );
      } catch {
        return "closed meanwhile";
      }
    })
    .sort();
}

/**
 * Processes of this test's jobs and their shims still alive: shims are the
 * daemon's children with a wave job's title, jobs carry the daemon's host
 * id. (Matching titles alone also found another run's waves on the same
 * machine.)
 */
function waveProcesses(daemonPid: number, hostId: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const parent = /^PPid:\s+(\d+)$/m.exec(
        readFileSync(`/proc/${pid}/status`, "utf8"),
      )?.[1];
      if (
        /^lorne-shim w\d+-\d+/.test(cmdline) &&
        parent === String(daemonPid)
      ) {
        found.push(`${pid} shim`);
      }
      const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
      if (
        environ.includes(`LORNE_HOST_ID=${hostId}`) &&
        environ.some((v) => /^LORNE_JOB_ID=w\d+-\d+$/.test(v))
      ) {
        found.push(`${pid} job`);
      }
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Runs `work` on every item with at most `limit` running at once. */
async function eachLimited<T, R>(
  items: T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return results;
}

test(
  "waves: 1,000 jobs started and stopped leave the port pool and the daemon's descriptors as they were",
  {
    timeout: 300_000,
  },
  async (t) => {
    const hostId = `waves-${process.pid}`;
    const daemon = await startDaemon([...PORTS, "--grace-ms", "2000"], {
      id: hostId,
    });
    const pid = daemon.child.pid as number;
    const client = new HostClient(daemon);
    const portsInUse = async () => {
      const res = await fetch(`${daemon.url}/metrics`, {
        headers: { ...authHeader(daemon), connection: "close" },
      });
      const line = (await res.text())
        .split("\n")
        .find((l) => l.startsWith("lorne_host_ports_in_use "));
      return Number(line?.split(" ")[1]);
    };
    try {
      // A warm-up job: modules loaded, the spare shim and its pipes in place.
      const warm = await client.createJob({
        id: "warm-up",
        config: { cmd: ["sleep", "600"], tcp_ports: 1 },
      });
      await client.stopJob(warm.id);
      let before: string[] = [];
      // Stable over two looks 200 ms apart: the spare shim has started.
      await waitFor(async () => {
        const first = openFds(pid);
        await new Promise((resolve) => setTimeout(resolve, 200));
        before = openFds(pid);
        return JSON.stringify(first) === JSON.stringify(before);
      }, "the daemon's descriptors to settle");
      assert.equal((await client.host()).ports.used, 0);

      const all: JobRecord[] = [];
      const started = Date.now();
      for (let wave = 0; wave < WAVES; wave++) {
        const ids = Array.from({ length: PER_WAVE }, (_, i) => `w${wave}-${i}`);
        const jobs = await eachLimited(ids, CONCURRENCY, (id) =>
          client.createJob({
            id,
            config: { cmd: ["sleep", "600"], tcp_ports: 1 + (all.length % 2) },
          }),
        );
        for (const job of jobs) assert.equal(job.status, "running", job.id);
        const held = jobs.reduce((n, j) => n + j.ports.length, 0);
        assert.equal((await client.host()).ports.used, held);
        const stopped = await eachLimited(ids, CONCURRENCY, (id) =>
          client.stopJob(id),
        );
        for (const job of stopped) assert.equal(job.status, "stopped", job.id);
        assert.equal((await client.host()).ports.used, 0, `after wave ${wave}`);
        all.push(...jobs);
        t.diagnostic(`wave ${wave} done at ${Date.now() - started} ms`);
      }
      t.diagnostic(`${all.length} jobs in ${Date.now() - started} ms`);

      assert.equal(await portsInUse(), 0);
      const after = await waitFor(
        () => {
          const now = openFds(pid);
          return JSON.stringify(now) === JSON.stringify(before) && now;
        },
        "the daemon's descriptors to return to the baseline",
        15_000,
      ).catch((err: Error) => {
        const now = openFds(pid);
        const extra = now.filter((fd) => !before.includes(fd));
        throw new Error(
          `${err.message}: ${before.length} before, ${now.length} now; ` +
            `new: ${extra.slice(0, 20).join(" ")}`,
        );
      });
      assert.equal(after.length, before.length);
      // No shim, socket or pid file is left behind.
      assert.deepEqual(readdirSync(join(daemon.stateDir, "shims")), []);
      for (const job of all) {
        const dir = join(daemon.stateDir, "jobs", job.id);
        assert.equal(readdirSync(dir).includes("pid"), false, job.id);
      }
      // Pids are reused after some thousand processes, so shims and jobs
      // are found by what they carry: the shim's title, the job's env.
      assert.deepEqual(waveProcesses(pid, hostId), []);
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  },
);
