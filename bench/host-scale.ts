/**
 * bench/host-scale: how many process jobs per second a host starts and
 * stops through the API with its state in a file (`--state-store file`,
 * every change synced) and in memory, in one run; then what 1,000 running
 * jobs cost: the daemon's RSS, and the total PSS of their 1,000 shims
 * (each shim is a Node process; PSS shares the pages they have in common
 * fairly, so the sum is what they really take).
 *
 *   npm run build && npx tsx bench/host-scale.ts [jobs-per-rate-run] [held]
 *
 * Every job and daemon it starts is stopped before it exits.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

import { HostClient } from "../src/host/client.js";
import { startDaemon, type DaemonProcess } from "../test/helpers.js";

const RATE_JOBS = Number(process.argv[2] ?? 300);
const HELD_JOBS = Number(process.argv[3] ?? 1000);
/** Requests in flight at once, under the API's start limit of 32. */
const CONCURRENCY = 16;
const SLEEP = { cmd: ["sleep", "600"] };

/** Runs `work` on every item with at most `limit` running at once. */
async function eachLimited<T>(
  items: T[],
  limit: number,
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

/** A `kB` field of /proc/<pid>/status or smaps_rollup, in KiB. */
function procKib(path: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(
    readFileSync(path, "utf8"),
  );
  if (!match) throw new Error(`No ${field} in ${path}`);
  return Number(match[1]);
}

function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

async function startAll(client: HostClient, ids: string[]): Promise<void> {
  await eachLimited(ids, CONCURRENCY, async (id) => {
    const job = await client.createJob({ id, config: SLEEP });
    if (job.status !== "running") {
      throw new Error(`Job ${id} did not start: ${job.error}`);
    }
  });
}

async function stopAll(client: HostClient, ids: string[]): Promise<void> {
  await eachLimited(ids, CONCURRENCY, (id) => client.stopJob(id));
}

async function stopDaemon(daemon: DaemonProcess): Promise<void> {
  const code = await daemon.stop();
  if (code !== 0) throw new Error(`lorne host exited ${code}`);
}

// Starts then stops `RATE_JOBS` jobs on a daemon with this state store.
async function rate(store: "file" | "memory"): Promise<void> {
  const daemon = await startDaemon([
    "--state-store",
    store,
    "--grace-ms",
    "2000",
  ]);
  try {
    const client = new HostClient(daemon);
    await startAll(client, ["warm-up"]);
    await stopAll(client, ["warm-up"]);
    const ids = Array.from({ length: RATE_JOBS }, (_, i) => `rate-${i}`);
    const t0 = performance.now();
    await startAll(client, ids);
    const t1 = performance.now();
    await stopAll(client, ids);
    const t2 = performance.now();
    const perS = (n: number, ms: number) => ((n * 1000) / ms).toFixed(1);
    console.log(
      `host-scale rate store=${store} jobs=${RATE_JOBS} ` +
        `start_per_s=${perS(RATE_JOBS, t1 - t0)} ` +
        `stop_per_s=${perS(RATE_JOBS, t2 - t1)} ` +
        `start_and_stop_per_s=${perS(RATE_JOBS, t2 - t0)}`,
    );
  } finally {
    await stopDaemon(daemon);
  }
}

async function memory(): Promise<void> {
  const daemon = await startDaemon(["--grace-ms", "2000"]);
  const pid = daemon.child.pid as number;
  const ids = Array.from({ length: HELD_JOBS }, (_, i) => `held-${i}`);
  try {
    const client = new HostClient(daemon);
    await startAll(client, ["warm-up"]);
    await stopAll(client, ["warm-up"]);
    const idleKib = procKib(`/proc/${pid}/status`, "VmRSS");
    const t0 = performance.now();
    await startAll(client, ids);
    const startMs = performance.now() - t0;
    const running = (await client.host()).jobs.running;
    const rssKib = procKib(`/proc/${pid}/status`, "VmRSS");
    let pssKib = 0;
    let shimRssKib = 0;
    for (const id of ids) {
      const dir = join(daemon.stateDir, "jobs", id);
      const shim = readFileSync(join(dir, "shim.pid"), "utf8").trim();
      pssKib += procKib(`/proc/${shim}/smaps_rollup`, "Pss");
      shimRssKib += procKib(`/proc/${shim}/smaps_rollup`, "Rss");
    }
    console.log(
      `host-scale memory jobs=${HELD_JOBS} running=${running} ` +
        `start_ms=${startMs.toFixed(0)} daemon_rss_idle_mib=${mib(idleKib)} ` +
        `daemon_rss_mib=${mib(rssKib)} shims_pss_mib=${mib(pssKib)} ` +
        `shim_pss_mean_mib=${mib(pssKib / HELD_JOBS)} ` +
        `shims_rss_sum_mib=${mib(shimRssKib)}`,
    );
  } finally {
    await stopAll(new HostClient(daemon), ids).catch(() => undefined);
    await stopDaemon(daemon);
  }
}

// Shims of this bench's jobs still alive (found by their title).
function leftovers(): number {
  let n = 0;
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (/^lorne-shim (rate|held|warm)-/.test(cmdline)) n++;
    } catch {
      // gone meanwhile
    }
  }
  return n;
}

console.log(
  `host-scale load_1m=${readFileSync("/proc/loadavg", "utf8").split(" ")[0]}`,
);
await rate("file");
await rate("memory");
await memory();
const left = leftovers();
console.log(`host-scale leftover_shims=${left}`);
if (left !== 0) process.exitCode = 1;
