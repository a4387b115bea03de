/**
 * Benchmark: lines per second for one record shape, written to /dev/null,
 * by three contenders in the same run:
 *
 * - lorne: a Context with 5 bound keys logging 3 more through a
 *   BufferedLogger (logfmt, with `now=`);
 * - pino: `pino.child` with the same 5 bindings logging the same 3 keys to
 *   `pino.destination({ dest: "/dev/null", sync: false })` (JSON, with
 *   `time` and `level`; `base: null` so no pid/hostname is added);
 * - logfmt: `logfmt.stringify` of the same merged record, written to an
 *   fs write stream on /dev/null.
 *
 * Each contender warms up, then runs ROUNDS rounds of LINES lines, taking
 * turns; the median round counts. Run alone: `npx tsx bench/log.ts`.
 */
import { createWriteStream, openSync, closeSync } from "node:fs";
import { createRequire } from "node:module";
import { once } from "node:events";
import { performance } from "node:perf_hooks";

import { pino } from "pino";

import { BufferedLogger, Context } from "../src/log/index.js";

const LINES = Number(process.env.BENCH_LINES ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const WARMUP_LINES = 100_000;

const bindings = {
  app: "lorne",
  host: "host-1",
  pid: 4242,
  "job.id": "job-7f3a",
  region: "eu-west-1",
};

interface Contender {
  name: string;
  /** Logs `count` lines and resolves once they have been handed off. */
  run(count: number): Promise<void>;
  close(): Promise<void>;
}

// The logfmt package ships no types; this is the one function used.
const require = createRequire(import.meta.url);
const logfmt = require("logfmt") as { stringify(data: object): string };

function lorne(): Contender {
  const fd = openSync("/dev/null", "w");
  const logger = new BufferedLogger({ fd });
  const context = new Context({ data: bindings, logger });
  return {
    name: "lorne",
    run(count) {
      for (let i = 0; i < count; i++) {
        context.log({ at: "request", status: 200, path: "/v1/jobs" });
      }
      logger.flushSync();
      return Promise.resolve();
    },
    close() {
      logger.close();
      closeSync(fd);
      return Promise.resolve();
    },
  };
}

function pinoContender(): Contender {
  const destination = pino.destination({ dest: "/dev/null", sync: false });
  const child = pino({ base: null }, destination).child(bindings);
  return {
    name: "pino",
    async run(count) {
      for (let i = 0; i < count; i++) {
        child.info({ at: "request", status: 200, path: "/v1/jobs" });
      }
      await new Promise<void>((resolve, reject) =>
        destination.flush((err) => (err ? reject(err) : resolve())),
      );
    },
    close() {
      destination.end();
      return Promise.resolve();
    },
  };
}

function logfmtContender(): Contender {
  const stream = createWriteStream("/dev/null");
  return {
    name: "logfmt",
    async run(count) {
      for (let i = 0; i < count; i++) {
        const record = { ...bindings, at: "request", status: 200 };
        const line = logfmt.stringify({ ...record, path: "/v1/jobs" });
        if (!stream.write(line + "\n")) await once(stream, "drain");
      }
    },
    async close() {
      stream.end();
      await once(stream, "close");
    },
  };
}

async function measure(contender: Contender): Promise<number> {
  const started = performance.now();
  await contender.run(LINES);
  return (LINES / (performance.now() - started)) * 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function main(): Promise<void> {
  const contenders = [lorne(), pinoContender(), logfmtContender()];
  const rates = new Map<string, number[]>();
  for (const contender of contenders) {
    await contender.run(WARMUP_LINES);
    rates.set(contender.name, []);
  }

  for (let round = 0; round < ROUNDS; round++) {
    for (const contender of contenders) {
      rates.get(contender.name)?.push(await measure(contender));
    }
  }
  for (const contender of contenders) await contender.close();

  const result = new Map<string, number>();
  for (const [name, values] of rates) {
    const rate = median(values);
    result.set(name, rate);
    const text = Math.round(rate).toLocaleString("en-US").padStart(11);
    process.stdout.write(`log ${name.padEnd(7)} ${text} lines/s\n`);
  }
  const ratio = (result.get("lorne") ?? 0) / (result.get("pino") ?? 1);
  process.stdout.write(`log lorne/pino ${ratio.toFixed(2)}\n`);
}

await main();
