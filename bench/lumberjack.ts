/**
 * bench/lumberjack: events per second and MiB/s from a LumberjackClient to
 * a LumberjackReceiver on loopback, for 100-byte lines, in every
 * combination of protocol v1/v2, compression level 0/1/6 and TLS off/on,
 * against the raw rate of the same bytes over a plain socket.
 *
 * The receiver (onBatch only counts) runs in a child process, this file
 * with `receiver`, so client and receiver each have a core, as in a real
 * deployment. The client sends batches of BATCH events
 * `{ line, host: "bench" }` one after another, each awaited until acked
 * (the client keeps one batch in flight). TLS uses a server certificate
 * from a throwaway openssl CA in a temp dir, removed at the end.
 *
 * raw: the level-0 bytes of one batch of the same version (window frame
 * and data or JSON frames, encoded once), written to a server that only
 * counts bytes and sends a 6-byte ack each time a whole batch has arrived;
 * the sender waits for that ack before the next write. Same round trips
 * and same bytes as lumberjack at level 0, with no encoding or decoding.
 *
 * Each case warms up on its connection, then sends at least EVENTS events
 * (whole batches) for at least MIN_CASE_MS, stopping at CASE_LIMIT_MS.
 * ROUNDS rounds take turns; the median round counts. mib_s counts the
 * Lumberjack bytes the receiver read (after TLS, before inflating),
 * line_mib_s the 100-byte lines; MiB = 2^20 bytes. raw_frac is events/s
 * over raw tcp's for the same version. client_cpu and receiver_cpu are
 * each process's CPU time over the wall time (1.00 is one core busy; the
 * client's includes zlib's thread pool).
 *
 *   npx tsx bench/lumberjack.ts   (BENCH_EVENTS, BENCH_ROUNDS to change)
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer as netServer, connect as netConnect } from "node:net";
import type { Server, Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { createServer as tlsServer, connect as tlsConnect } from "node:tls";
import { fileURLToPath } from "node:url";

import { Context, MemoryLogger } from "../src/log/index.js";
import { LumberjackClient } from "../src/lumberjack/client.js";
import {
  encodeFrame,
  encodeFrames,
  objectToPairs,
  type Frame,
  type Version,
} from "../src/lumberjack/index.js";
import { LumberjackReceiver } from "../src/lumberjack/receiver.js";
import { CertFactory } from "../test/lumberjack/certs.js";

const LINE_BYTES = 100;
const BATCH = 1024;
const EVENTS = Number(process.env.BENCH_EVENTS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const WARMUP_BATCHES = 20;
// A case runs at least this long, so a fast one is not timed over a few
// milliseconds, and at most CASE_LIMIT_MS, so a slow one stays bounded.
const MIN_CASE_MS = 500;
const CASE_LIMIT_MS = 4000;
const RUN_LIMIT_MS = 300_000;
const MIB = 1024 * 1024;
const HOST = "127.0.0.1";
const ACK_BYTES = 6;

interface Pem {
  cert: string;
  key: string;
}

/** What the parent asks of the receiver process. */
type Request =
  | { op: "lumberjack"; tls?: Pem }
  | { op: "raw"; tls?: Pem; batchBytes: number }
  | { op: "stats" }
  | { op: "close" };

interface Stats {
  events: number;
  bytes: number;
  cpuMs: number;
}

interface Case {
  kind: "lumberjack" | "raw";
  version: Version;
  level: number;
  tls: boolean;
}

interface Sample {
  events: number;
  bytes: number;
  ms: number;
  clientCpuMs: number;
  receiverCpuMs: number;
}

async function main(): Promise<void> {
  const certs = new CertFactory();
  const child = fork(fileURLToPath(import.meta.url), ["receiver"], {
    execArgv: ["--import", "tsx"],
    cwd: fileURLToPath(new URL("..", import.meta.url)),
  });
  const limit = setTimeout(() => {
    console.error(`lumberjack bench: over ${RUN_LIMIT_MS} ms, stopping`);
    child.kill();
    certs.remove();
    process.exit(1);
  }, RUN_LIMIT_MS);
  try {
    const ca = certs.ca("bench-ca");
    const server = certs.leaf("bench-server", ca, { san: ["IP:127.0.0.1"] });
    const pem = { cert: server.cert, key: server.key };
    await run(child, pem, ca.cert);
  } finally {
    clearTimeout(limit);
    child.kill();
    certs.remove();
  }
}

async function run(child: ChildProcess, pem: Pem, ca: string): Promise<void> {
  const events = makeEvents();
  const cases: Case[] = [];
  for (const version of [1, 2] as const) {
    for (const tls of [false, true]) {
      cases.push({ kind: "raw", version, level: 0, tls });
    }
  }
  for (const version of [1, 2] as const) {
    for (const level of [0, 1, 6]) {
      for (const tls of [false, true]) {
        cases.push({ kind: "lumberjack", version, level, tls });
      }
    }
  }

  const samples = new Map<Case, Sample[]>(cases.map((c) => [c, []]));
  const started = performance.now();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of cases) {
      const tls = c.tls ? pem : undefined;
      const sample =
        c.kind === "raw"
          ? await measureRaw(child, c, tls, ca, events)
          : await measureClient(child, c, tls, ca, events);
      samples.get(c)?.push(sample);
    }
    const elapsed = ((performance.now() - started) / 1000).toFixed(1);
    console.error(`round ${round}/${ROUNDS} done after ${elapsed} s`);
  }

  const rawRate = new Map<Version, number>();
  for (const c of cases) {
    const all = samples.get(c) ?? [];
    const rates = all.map((s) => (s.events / s.ms) * 1000);
    const mid = all[rates.indexOf(median(rates))] as Sample;
    const eventsS = median(rates);
    if (c.kind === "raw" && !c.tls) rawRate.set(c.version, eventsS);
    const raw = rawRate.get(c.version) ?? eventsS;
    console.log(
      `${label(c)} events_s=${Math.round(eventsS)}` +
        ` mib_s=${((mid.bytes / MIB / mid.ms) * 1000).toFixed(1)}` +
        ` line_mib_s=${((eventsS * LINE_BYTES) / MIB).toFixed(1)}` +
        ` bytes_per_event=${(mid.bytes / mid.events).toFixed(1)}` +
        ` raw_frac=${(eventsS / raw).toFixed(2)}` +
        ` client_cpu=${(mid.clientCpuMs / mid.ms).toFixed(2)}` +
        ` receiver_cpu=${(mid.receiverCpuMs / mid.ms).toFixed(2)}` +
        ` events=${mid.events}` +
        ` range=${Math.round(Math.min(...rates))}-${Math.round(Math.max(...rates))}`,
    );
  }
}

async function measureClient(
  child: ChildProcess,
  c: Case,
  tls: Pem | undefined,
  ca: string,
  events: Record<string, unknown>[],
): Promise<Sample> {
  const { port } = (await ask(child, { op: "lumberjack", tls })) as {
    port: number;
  };
  const client = new LumberjackClient({
    host: HOST,
    port,
    version: c.version,
    compressionLevel: c.level,
    ...(tls ? { tls: { ca } } : {}),
  });
  let reported = 0;
  client.on("sent", (info) => (reported += info.events));
  await client.connect();
  for (let i = 0; i < WARMUP_BATCHES; i++) await client.send(events);
  reported = 0;

  const { sample, received } = await timed(child, () => client.send(events));
  await client.close();
  // What the receiver logged while the case ran, but for the usual lines.
  const { odd } = (await ask(child, { op: "close" })) as {
    odd: Record<string, unknown>[];
  };

  if (received !== sample.events) {
    throw new Error(
      `${label(c)}: sent ${sample.events} events, receiver has ${received}`,
    );
  }
  if (reported !== sample.events) {
    console.error(
      `note: ${label(c)}: 'sent' reported ${reported} of ${sample.events} events`,
    );
  }
  for (const record of odd) {
    console.error(
      `note: ${label(c)}: receiver logged ${JSON.stringify(record)}`,
    );
  }
  return sample;
}

async function measureRaw(
  child: ChildProcess,
  c: Case,
  tls: Pem | undefined,
  ca: string,
  events: Record<string, unknown>[],
): Promise<Sample> {
  const batch = encodeBatch(c.version, events);
  const { port } = (await ask(child, {
    op: "raw",
    tls,
    batchBytes: batch.length,
  })) as { port: number };
  const socket = tls
    ? tlsConnect({ host: HOST, port, ca })
    : netConnect({ host: HOST, port });
  await once(socket, tls ? "secureConnect" : "connect");
  socket.setNoDelay(true);
  let ackBytes = 0;
  let wake: (() => void) | undefined;
  socket.on("data", (chunk: Buffer) => {
    ackBytes += chunk.length;
    wake?.();
  });
  let written = 0;
  const sendBatch = async (): Promise<void> => {
    written++;
    socket.write(batch);
    while (ackBytes < written * ACK_BYTES) {
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  for (let i = 0; i < WARMUP_BATCHES; i++) await sendBatch();

  const { sample } = await timed(child, sendBatch);
  socket.end();
  await once(socket, "close");
  await ask(child, { op: "close" });
  return sample;
}

// Sends batches until EVENTS events and MIN_CASE_MS, or CASE_LIMIT_MS;
// the receiver's counters are read just before and just after.
async function timed(
  child: ChildProcess,
  sendBatch: () => Promise<void>,
): Promise<{ sample: Sample; received: number }> {
  const before = (await ask(child, { op: "stats" })) as Stats;
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  let events = 0;
  for (;;) {
    const elapsed = performance.now() - t0;
    if (elapsed >= CASE_LIMIT_MS) break;
    if (events >= EVENTS && elapsed >= MIN_CASE_MS) break;
    await sendBatch();
    events += BATCH;
  }
  const ms = performance.now() - t0;
  const clientCpuMs = cpuMs(process.cpuUsage(cpu));
  const after = (await ask(child, { op: "stats" })) as Stats;

  const sample = {
    events,
    bytes: after.bytes - before.bytes,
    ms,
    clientCpuMs,
    receiverCpuMs: after.cpuMs - before.cpuMs,
  };
  return { sample, received: after.events - before.events };
}

/** The receiver process: one server at a time, driven by messages. */
function runReceiver(): void {
  const logger = new MemoryLogger();
  let receiver: LumberjackReceiver | undefined;
  let raw: Server | undefined;
  const rawSockets = new Set<Socket>();
  let rawBytes = 0;
  let events = 0;
  const reply = (message: unknown) => process.send?.(message);
  process.on("disconnect", () => process.exit(0));
  process.on("message", (request: Request) => {
    void handle(request).then(reply, (err: unknown) =>
      reply({ error: String(err) }),
    );
  });

  async function handle(request: Request): Promise<unknown> {
    switch (request.op) {
      case "lumberjack": {
        receiver = new LumberjackReceiver({
          host: HOST,
          port: 0,
          ...(request.tls ? { tls: request.tls } : {}),
          log: new Context({ logger }),
          onBatch: (batch) => {
            events += batch.length;
            return Promise.resolve();
          },
        });
        return { port: (await receiver.listen()).port };
      }
      case "raw": {
        raw = rawServer(request.batchBytes, request.tls, (socket) => {
          rawSockets.add(socket);
          socket.once("close", () => rawSockets.delete(socket));
        });
        raw.listen(0, HOST);
        await once(raw, "listening");
        return { port: (raw.address() as { port: number }).port };
      }
      case "stats": {
        const bytes = receiver?.stats().bytes ?? rawBytes;
        const used = cpuMs(process.cpuUsage());
        return { events, bytes, cpuMs: used } satisfies Stats;
      }
      case "close": {
        if (receiver !== undefined) await receiver.close();
        if (raw !== undefined) {
          for (const socket of rawSockets) socket.destroy();
          raw.close();
        }
        receiver = raw = undefined;
        rawBytes = events = 0;
        const odd = logger.records.filter((r) => !expected(r));
        logger.clear();
        return { odd };
      }
    }
  }

  function rawServer(
    batchBytes: number,
    tls: Pem | undefined,
    track: (socket: Socket) => void,
  ): Server {
    const ack = encodeFrame({ type: "ack", version: 2, seq: BATCH });
    const onSocket = (socket: Socket) => {
      track(socket);
      socket.setNoDelay(true);
      let pending = 0;
      socket.on("data", (chunk: Buffer) => {
        rawBytes += chunk.length;
        pending += chunk.length;
        for (; pending >= batchBytes; pending -= batchBytes) socket.write(ack);
      });
      socket.on("end", () => socket.end());
    };
    return tls ? tlsServer(tls, onSocket) : netServer(onSocket);
  }
}

function cpuMs(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000;
}

function expected(record: Record<string, unknown>): boolean {
  if (record.at === "close") return record.reason === "client_closed";
  return ["listening", "connect", "closed"].includes(String(record.at));
}

async function ask(child: ChildProcess, request: Request): Promise<unknown> {
  const answer = once(child, "message");
  child.send(request);
  const [message] = (await answer) as [{ error?: string }];
  if (message.error !== undefined) throw new Error(message.error);
  return message;
}

function label(c: Case): string {
  const tls = c.tls ? "on" : "off";
  return c.kind === "raw"
    ? `raw ${c.tls ? "tls" : "tcp"} v${c.version}`
    : `lumberjack v${c.version} level=${c.level} tls=${tls}`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** A batch as the client writes it at level 0: window, then the events. */
function encodeBatch(
  version: Version,
  events: Record<string, unknown>[],
): Buffer {
  const frames: Frame[] = [{ type: "window", version, size: events.length }];
  events.forEach((event, i) => {
    frames.push(
      version === 1
        ? { type: "data", version, seq: i + 1, pairs: objectToPairs(event) }
        : {
            type: "json",
            version,
            seq: i + 1,
            payload: Buffer.from(JSON.stringify(event)),
          },
    );
  });
  return encodeFrames(frames);
}

// Log-like lines whose fields differ and which end in a random trace id,
// so zlib finds about what it finds in real logs rather than one line
// repeated; a fixed seed keeps the bytes the same from run to run.
function makeEvents(): Record<string, unknown>[] {
  let seed = 0x2545f491;
  const next = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const words = ["started", "finished", "retrying", "attached", "stopped"];
  const events: Record<string, unknown>[] = [];
  for (let i = 0; i < BATCH; i++) {
    const time = `2026-12-04T17:${pad(next(60))}:${pad(next(60))}.${next(1000)}Z`;
    let line =
      `${time} at=${words[next(words.length)]} status=${[200, 404][next(2)]}` +
      ` elapsed=${next(5000)}ms path=/v1/jobs/${next(100000)} trace=`;
    while (line.length < LINE_BYTES) line += next(16).toString(16);
    events.push({ line, host: "bench" });
  }
  return events;
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

if (process.argv[2] === "receiver") runReceiver();
else await main();
