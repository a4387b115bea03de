/**
 * bench/attach: throughput of a job's stdout through attach, against the
 * same command's stdout read straight from a pipe, taking turns in one
 * run. The job writes 200 MB (`head -c 209715200 /dev/zero`) on the
 * process backend of a real `lorne host` daemon.
 *
 * - lorne: `AttachConnection.open` to an id that does not exist yet; on
 *   `waiting` the job is created under that id (so no byte is missed);
 *   timed from the open call to the `exit` frame, counting data bytes.
 * - pipe: `child_process.spawn` of the command, its stdout read in this
 *   process; timed from the spawn call to the pipe's close.
 * - capture (for where the time goes): the same job with nobody attached,
 *   timed from the create request to its `stop` event; this is what the
 *   daemon takes to drain the job's pipe into its output files.
 *
 * MB is 10^6 bytes. Each round's byte count is checked. Each job's output
 * directory is deleted once its round is over: otherwise the 200 MB every
 * job leaves on disk (stdout.log) piles up as dirty pages, and after about
 * 2 GB the kernel's writeback slows every later round, which would
 * measure the disk rather than attach.
 *
 *   npm run build && npx tsx bench/attach.ts [rounds]
 */
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

import { AttachConnection } from "../src/host/attach/client.js";
import { HostClient } from "../src/host/client.js";
import type { JobEvent } from "../src/host/events.js";
import { startDaemon } from "../test/helpers.js";

const ROUNDS = Number(process.argv[2] ?? 5);
const BYTES = 200 * 1024 * 1024;
const CMD = ["head", "-c", String(BYTES), "/dev/zero"];
const GOAL_RATIO = 0.5;

if (!Number.isInteger(ROUNDS) || ROUNDS < 1) {
  throw new Error(
    `Invalid rounds "${process.argv[2]}": expected a whole number >= 1`,
  );
}

// Resolvers for jobs whose `stop` event the capture rounds wait for.
const stopWaiters = new Map<string, () => void>();

interface Round {
  bytes: number;
  ms: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function mbPerSecond(round: Round): number {
  return round.bytes / 1e6 / (round.ms / 1000);
}

function throughPipe(): Promise<Round> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(CMD[0] as string, CMD.slice(1), {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let bytes = 0;
    child.once("error", reject);
    child.stdout.on("data", (chunk: Buffer) => (bytes += chunk.length));
    child.once("close", (code) => {
      if (code !== 0) reject(new Error(`${CMD.join(" ")} exited ${code}`));
      else resolve({ bytes, ms: performance.now() - started });
    });
  });
}

async function throughAttach(client: HostClient, id: string): Promise<Round> {
  let bytes = 0;
  let created: Promise<unknown> = Promise.resolve();
  const started = performance.now();
  const conn = await AttachConnection.open(client.endpoint, id, {
    onWaiting: () => {
      created = client.createJob({ id, config: { cmd: CMD } });
    },
    onData: (_stream, data) => (bytes += data.length),
  });
  const exit = await conn.exit;
  const ms = performance.now() - started;
  await created;
  if (exit?.status !== "done") {
    throw new Error(`Job ${id} ended ${JSON.stringify(exit)}`);
  }
  return { bytes, ms };
}

async function watchStops(client: HostClient, signal: AbortSignal) {
  for await (const event of client.events({
    signal,
  }) as AsyncIterable<JobEvent>) {
    if (event.event === "stop") stopWaiters.get(event.job_id)?.();
  }
}

async function captureOnly(client: HostClient, id: string): Promise<Round> {
  const started = performance.now();
  const stopped = new Promise<void>((resolve) => stopWaiters.set(id, resolve));
  await client.createJob({ id, config: { cmd: CMD } });
  await stopped;
  const ms = performance.now() - started;
  stopWaiters.delete(id);
  const job = await client.getJob(id);
  if (job.status !== "done") throw new Error(`Job ${id} ended ${job.status}`);
  return { bytes: BYTES, ms };
}

function check(round: Round, who: string): Round {
  if (round.bytes !== BYTES) {
    throw new Error(`${who} delivered ${round.bytes} bytes, not ${BYTES}`);
  }
  return round;
}

async function main(): Promise<void> {
  const daemon = await startDaemon(["--grace-ms", "2000"], {
    id: "bench-attach",
  });
  const client = new HostClient(daemon);
  const lorne: Round[] = [];
  const pipe: Round[] = [];
  const capture: Round[] = [];
  // The job has ended and the host has closed its files.
  const forget = (id: string) =>
    rmSync(join(daemon.stateDir, "jobs", id), { recursive: true });
  const events = new AbortController();
  const watching = watchStops(client, events.signal).catch(() => undefined);
  try {
    // One warm-up each (page cache, JIT, the daemon's first job).
    check(await throughAttach(client, "warm"), "attach");
    check(await throughPipe(), "pipe");
    await captureOnly(client, "warm-capture");
    for (const job of ["warm", "warm-capture"]) forget(job);
    for (let i = 0; i < ROUNDS; i++) {
      const id = `bench-${i}`;
      lorne.push(check(await throughAttach(client, id), "attach"));
      pipe.push(check(await throughPipe(), "pipe"));
      capture.push(await captureOnly(client, `capture-${i}`));
      for (const job of [id, `capture-${i}`]) forget(job);
    }
  } finally {
    events.abort();
    await watching;
    const code = await daemon.stop();
    if (code !== 0) process.exitCode = 1;
  }

  const lorneRate = median(lorne.map(mbPerSecond));
  const pipeRate = median(pipe.map(mbPerSecond));
  const list = (rounds: Round[]) =>
    rounds.map((r) => mbPerSecond(r).toFixed(1)).join(",");
  console.log(
    `attach lorne attach median_mb_s=${lorneRate.toFixed(1)} ` +
      `median_ms=${median(lorne.map((r) => r.ms)).toFixed(0)} ` +
      `rounds=${ROUNDS} mb_s=${list(lorne)}`,
  );
  console.log(
    `attach raw pipe median_mb_s=${pipeRate.toFixed(1)} ` +
      `median_ms=${median(pipe.map((r) => r.ms)).toFixed(0)} ` +
      `rounds=${ROUNDS} mb_s=${list(pipe)}`,
  );
  console.log(
    `attach lorne capture only median_mb_s=` +
      `${median(capture.map(mbPerSecond)).toFixed(1)} ` +
      `median_ms=${median(capture.map((r) => r.ms)).toFixed(0)} ` +
      `rounds=${ROUNDS} mb_s=${list(capture)}`,
  );
  const ratio = lorneRate / pipeRate;
  console.log(
    `attach ratio=${ratio.toFixed(2)} goal>=${GOAL_RATIO} ` +
      `met=${ratio >= GOAL_RATIO}`,
  );
}

await main();
