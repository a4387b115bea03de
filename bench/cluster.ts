/**
 * bench/cluster: the time from submitting N jobs (default 1,000, each
 * `sleep 600`) to all of them running, through the cluster (a one-member
 * etcd on loopback, 3 hosts, one of them the scheduler) against the same
 * jobs created straight through one host's API, in one run. Both sides
 * keep PARALLEL requests in flight.
 *
 *   npm run build && npx tsx bench/cluster.ts [jobs]
 */
import { performance } from "node:perf_hooks";

import { ClusterClient } from "../src/cluster/client.js";
import { HostClient } from "../src/host/client.js";
import { startEtcd } from "../test/cluster/etcd.js";
import { killLeftovers, startClusterHost } from "../test/cluster/hosts.js";
import { startDaemon, type DaemonProcess } from "../test/helpers.js";

const JOBS = Number(process.argv[2] ?? 1_000);
const PARALLEL = 50;
const CMD = ["sleep", "600"];
const DEADLINE_MS = 300_000;

async function inParallel(
  count: number,
  fn: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

async function direct(): Promise<number> {
  // 50 requests in flight: above the default start limit (32).
  const daemon = await startDaemon(
    ["--grace-ms", "1000", "--max-starts", "64"],
    { id: "direct" },
  );
  try {
    const client = new HostClient(daemon);
    const started = performance.now();
    let running = 0;
    await inParallel(JOBS, async (i) => {
      const job = await client.createJob({
        id: `direct-${i}`,
        config: { cmd: CMD },
      });
      if (job.status === "running") running++;
    });
    const elapsedMs = performance.now() - started;
    if (running !== JOBS) throw new Error(`direct: ${running}/${JOBS} ran`);
    return elapsedMs;
  } finally {
    await daemon.stop();
  }
}

async function cluster(): Promise<number> {
  const etcd = await startEtcd();
  const hosts: DaemonProcess[] = [];
  try {
    for (const [i, id] of ["b1", "b2", "b3"].entries()) {
      hosts.push(
        await startClusterHost(etcd.endpoints, {
          id,
          scheduler: i === 0,
          portBase: 60300 + i * 10,
          // The default a real host runs with; the tests' 2 s is too
          // short for a host starting hundreds of shims at once.
          leaseTtlS: 10,
        }),
      );
    }
    const client = await ClusterClient.open({ endpoints: etcd.endpoints });
    try {
      const running = new Set<string>();
      let allRunning!: () => void;
      const done = new Promise<void>((resolve) => (allRunning = resolve));
      const stop = await client.watch((change) => {
        const state = (change.value as { state?: string } | null)?.state;
        if (change.kind !== "status" || state !== "running") return;
        running.add(change.parts[0] as string);
        if (running.size === JOBS) allRunning();
      });
      const started = performance.now();
      await inParallel(JOBS, async (i) => {
        await client.submit({ id: `cluster-${i}`, config: { cmd: CMD } });
      });
      const submittedMs = performance.now() - started;
      const timeout = setTimeout(() => allRunning(), DEADLINE_MS);
      await done;
      clearTimeout(timeout);
      const elapsedMs = performance.now() - started;
      await stop();
      if (running.size !== JOBS) {
        throw new Error(`cluster: ${running.size}/${JOBS} ran`);
      }
      const perHost = (await client.hosts())
        .map((h) => `${h.host.id}=${h.active}`)
        .join(",");
      process.stderr.write(
        `cluster: submitted in ${submittedMs.toFixed(0)} ms; per host ${perHost}\n`,
      );
      return elapsedMs;
    } finally {
      client.close();
    }
  } finally {
    await Promise.all(hosts.map((h) => h.stop()));
    for (const h of hosts) killLeftovers(h.stateDir);
    await etcd.close();
  }
}

async function main(): Promise<void> {
  const directMs = await direct();
  const clusterMs = await cluster();
  const rate = (ms: number) => ((JOBS / ms) * 1000).toFixed(0);
  process.stdout.write(
    `cluster: ${JOBS} jobs to running through etcd on 3 hosts in ` +
      `${(clusterMs / 1000).toFixed(2)} s (${rate(clusterMs)} jobs/s); ` +
      `straight to one host's API in ${(directMs / 1000).toFixed(2)} s ` +
      `(${rate(directMs)} jobs/s); cluster/direct time ` +
      `${(clusterMs / directMs).toFixed(2)}\n`,
  );
}

await main();
