/**
 * bench/host-start: how long the host takes from an API request to the
 * job's `start` event, against a bare child_process.spawn of the same
 * command, in one run. Then 200 jobs started at once, all expected to
 * reach `running`.
 *
 *   npm run build && npx tsx bench/host-start.ts [rounds]
 */
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";

import { HostClient } from "../src/host/client.js";
import type { JobEvent } from "../src/host/events.js";
import { startDaemon } from "../test/helpers.js";

const ROUNDS = Number(process.argv[2] ?? 200);
const CONCURRENT = 200;
const CMD = ["true"];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function bareSpawn(): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(CMD[0] as string, CMD.slice(1), {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.once("error", reject);
    child.once("spawn", () => resolve(performance.now() - started));
    child.stdout.resume();
    child.stderr.resume();
  });
}

async function main(): Promise<void> {
  const daemon = await startDaemon(["--grace-ms", "2000"]);
  const client = new HostClient(daemon);
  const waiting = new Map<string, (at: number) => void>();
  const events = new AbortController();
  void (async () => {
    for await (const event of client.events({
      signal: events.signal,
    }) as AsyncIterable<JobEvent>) {
      if (event.event === "start")
        waiting.get(event.job_id)?.(performance.now());
    }
  })().catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 200));

  const lorne: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < ROUNDS + 20; i++) {
    const id = `bench-${i}`;
    const started = await new Promise<number>((resolve, reject) => {
      const sent = performance.now();
      waiting.set(id, (at) => resolve(at - sent));
      client.createJob({ id, config: { cmd: CMD } }).catch(reject);
    });
    waiting.delete(id);
    const spawnMs = await bareSpawn();
    if (i >= 20) {
      lorne.push(started);
      bare.push(spawnMs);
    }
  }
  const lorneMs = median(lorne);
  const bareMs = median(bare);
  console.log(
    `host-start lorne api->start event median_ms=${lorneMs.toFixed(3)} rounds=${ROUNDS}`,
  );
  console.log(
    `host-start bare child_process.spawn median_ms=${bareMs.toFixed(3)} rounds=${ROUNDS}`,
  );
  console.log(
    `host-start overhead_ms=${(lorneMs - bareMs).toFixed(3)} goal_ms=5`,
  );

  const t0 = performance.now();
  const jobs = await Promise.all(
    Array.from({ length: CONCURRENT }, (_, i) =>
      client.createJob({ id: `many-${i}`, config: { cmd: ["sleep", "30"] } }),
    ),
  );
  const startMs = performance.now() - t0;
  const running = (await client.listJobs()).filter(
    (j) => j.id.startsWith("many-") && j.status === "running",
  ).length;
  console.log(
    `host-start concurrent jobs=${CONCURRENT} running=${running} ` +
      `all_running=${running === CONCURRENT} elapsed_ms=${startMs.toFixed(0)}`,
  );
  await Promise.all(jobs.map((j) => client.stopJob(j.id)));
  events.abort();
  const code = await daemon.stop();
  if (code !== 0) throw new Error(`daemon exited ${code}`);
}

await main();
