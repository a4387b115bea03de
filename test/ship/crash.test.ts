/**
 * Crash safety of `lorne ship` as a real child process: a writer appends
 * 100,000 numbered lines at a steady pace (chunks cut at random bytes, so
 * the shipper often sees half a line), while the shipper is killed with
 * SIGKILL at random moments, KILLS times, and started again each time. The
 * receiver, in this process, must end with every number.
 *
 * Duplicates are allowed, but only from batches that were sent and not yet
 * acked (or acked, and the offsets not yet saved) when the process died.
 * There is one server, so one batch in flight, and a batch holds at most
 * SPOOL_SIZE lines of one file: each kill re-sends at most one contiguous
 * run of at most SPOOL_SIZE lines. So the extra copies number at most
 * KILLS * SPOOL_SIZE, and the duplicated numbers form at most KILLS runs.
 *
 * Randomness comes from one seed, logged; set LORNE_CRASH_SEED to re-run a
 * failure with the same kill moments and cuts (thread timing still varies).
 */
import assert from "node:assert/strict";
import { type ChildProcess } from "node:child_process";
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { Context, MemoryLogger } from "../../src/log/index.js";
import { LumberjackReceiver } from "../../src/lumberjack/receiver.js";
import { tempDir, waitFor } from "../helpers.js";
import { configObject, spawnShip, writeConfig } from "./harness.js";

const LINES = 100_000;
const CHUNKS = 200;
const CHUNK_INTERVAL_MS = 20;
const KILLS = 20;
const SPOOL_SIZE = 256;
/** A kill lands this long after the shipper said `at=start`, at most. */
const MAX_KILL_DELAY_MS = 400;
/**
 * The receiver holds each batch this long before it acks, as a real
 * server would: the shipper then spends most of its time with a batch
 * delivered but not acked, where a kill makes duplicates.
 */
const ACK_DELAY_MS = 8;
const DEFAULT_SEED = 0x5eed_0f_1;

test(
  "ship: 20 SIGKILLs while 100,000 lines are written lose none, and duplicate at most one batch each",
  { timeout: 120_000 },
  async (t) => {
    const seed = Number(process.env.LORNE_CRASH_SEED ?? DEFAULT_SEED);
    t.diagnostic(`seed ${seed} (LORNE_CRASH_SEED=${seed} re-runs it)`);
    // One stream for the writer's cuts, one for the kills: their calls
    // interleave by timing, and each must replay the same from the seed.
    const cuts = mulberry32(seed);
    const random = mulberry32(seed ^ 0x9e3779b9);
    const dir = tempDir("lorne-ship-crash-");
    mkdirSync(join(dir.path, "logs"));
    const received = await slowReceiver();
    const configPath = writeConfig(
      dir.path,
      configObject(dir.path, received.port, {
        network: { spool_size: SPOOL_SIZE },
      }),
    );
    let child: RunningShip | undefined;
    const writer = { stopped: false };
    let writing: Promise<void> = Promise.resolve();
    t.after(async () => {
      writer.stopped = true;
      await writing.catch(() => undefined);
      if (child !== undefined) await child.kill();
      await received.close();
      dir.remove();
    });

    const tally = new Tally(received.events);
    writing = writeNumbered(join(dir.path, "logs", "app.log"), cuts, writer);
    let kills = 0;
    let early = 0;
    while (kills < KILLS) {
      child = startShip(configPath);
      // A quarter of the kills land while the shipper is still starting
      // (opening the store, finding the file); the rest while it ships.
      if (random() < 0.25) {
        early++;
        await sleep(Math.floor(random() * 150));
      } else {
        await child.started();
        await sleep(Math.floor(random() * MAX_KILL_DELAY_MS));
      }
      await child.kill();
      kills++;
    }
    const last = startShip(configPath);
    child = last;
    await last.started();
    await writing;
    await waitFor(
      () => tally.update().missing === 0,
      `every one of ${LINES} lines at the receiver`,
      30_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}; ${tally.describe()}\n${last.stderr()}`);
    });
    assert.equal(await last.stop(), 0, last.stderr());
    assert.match(last.stderr(), /at=exit status=ok/);

    const { duplicates, runs, longestRun } = tally.update();
    t.diagnostic(
      `${kills} kills (${early} while starting); ${received.events.length} ` +
        `events; ${duplicates} duplicates in ${runs} runs (longest ` +
        `${longestRun}); bound ${KILLS * SPOOL_SIZE}`,
    );
    assert.equal(tally.foreign, 0, "every event is a line that was written");
    assert.ok(
      duplicates <= KILLS * SPOOL_SIZE,
      `${duplicates} duplicates > ${KILLS} kills * ${SPOOL_SIZE} lines`,
    );
    assert.ok(runs <= KILLS, `${runs} runs of duplicates > ${KILLS} kills`);
  },
);

/** The text of line `n` (without its "\n"). */
function lineOf(n: number): string {
  return `line ${String(n).padStart(6, "0")} of the crash test`;
}

/**
 * Appends lines 0..LINES-1 in CHUNKS chunks, one every CHUNK_INTERVAL_MS
 * (on a fixed schedule, so a slow tick does not stretch the whole run),
 * until done or `writer.stopped` (the test is over);
 * each chunk ends at a random byte, the rest of its last line going first
 * in the next chunk.
 */
async function writeNumbered(
  path: string,
  random: () => number,
  writer: { stopped: boolean },
): Promise<void> {
  const perChunk = LINES / CHUNKS;
  const startMs = Date.now();
  let pending = "";
  for (let chunk = 0; chunk < CHUNKS && !writer.stopped; chunk++) {
    const first = chunk * perChunk;
    const lines = Array.from({ length: perChunk }, (_, i) => lineOf(first + i));
    const text = pending + lines.join("\n") + "\n";
    const cut =
      chunk === CHUNKS - 1
        ? text.length
        : text.length - Math.floor(random() * (lineOf(0).length + 1));
    appendFileSync(path, text.slice(0, cut));
    pending = text.slice(cut);
    await sleep(startMs + (chunk + 1) * CHUNK_INTERVAL_MS - Date.now());
  }
}

/** A receiver on 127.0.0.1:0 that keeps every event, acking slowly. */
async function slowReceiver() {
  const events: Record<string, unknown>[] = [];
  const receiver = new LumberjackReceiver({
    host: "127.0.0.1",
    port: 0,
    log: new Context({ logger: new MemoryLogger() }),
    onBatch: async (batch) => {
      events.push(...batch);
      await sleep(ACK_DELAY_MS);
    },
  });
  const { port } = await receiver.listen();
  return { port, events, close: () => receiver.close() };
}

/** Counts what the receiver got, line by line, as it arrives. */
class Tally {
  readonly #events: readonly Record<string, unknown>[];
  readonly #counts = new Uint32Array(LINES);
  #seen = 0;
  #distinct = 0;
  foreign = 0;

  constructor(events: readonly Record<string, unknown>[]) {
    this.#events = events;
  }

  /** Takes in the events since the last call; returns the totals. */
  update(): {
    missing: number;
    duplicates: number;
    runs: number;
    longestRun: number;
  } {
    const events = this.#events;
    for (; this.#seen < events.length; this.#seen++) {
      const line = String(events[this.#seen]?.line);
      const n = Number(/^line (\d{6}) /.exec(line)?.[1] ?? -1);
      if (n < 0 || n >= LINES || line !== lineOf(n)) {
        this.foreign++;
        continue;
      }
      if (this.#counts[n] === 0) this.#distinct++;
      this.#counts[n] = (this.#counts[n] ?? 0) + 1;
    }
    let duplicates = 0;
    let runs = 0;
    let longestRun = 0;
    let run = 0;
    for (const count of this.#counts) {
      duplicates += Math.max(0, count - 1);
      run = count > 1 ? run + 1 : 0;
      if (run === 1) runs++;
      longestRun = Math.max(longestRun, run);
    }
    return { missing: LINES - this.#distinct, duplicates, runs, longestRun };
  }

  /** The first missing numbers, for a failure message. */
  describe(): string {
    const missing: number[] = [];
    for (const [n, count] of this.#counts.entries()) {
      if (count === 0 && missing.length < 10) missing.push(n);
    }
    return `missing ${LINES - this.#distinct}, first ${missing.join(" ")}`;
  }
}

interface RunningShip {
  /** Resolves once the shipper logged `at=start` (rejects if it exits). */
  started(): Promise<void>;
  /** SIGKILL to this child's pid; resolves once it has exited. */
  kill(): Promise<void>;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
  stderr(): string;
}

function startShip(configPath: string): RunningShip {
  const child: ChildProcess = spawnShip(configPath);
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  const running = () => child.exitCode === null && child.signalCode === null;
  const signal = async (name: NodeJS.Signals) => {
    if (running() && child.pid !== undefined) process.kill(child.pid, name);
    return bounded(exited, 15_000, `lorne ship to exit after ${name}`);
  };
  return {
    started: async () => {
      await waitFor(
        () => {
          if (!running()) throw new Error(`it exited: ${stderr}`);
          return /at=start /.test(stderr);
        },
        "lorne ship to start",
        15_000,
      );
    },
    kill: async () => {
      await signal("SIGKILL");
    },
    stop: () => signal("SIGTERM"),
    stderr: () => stderr,
  };
}

function bounded<T>(promise: Promise<T>, ms: number, what: string) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** A small seeded PRNG (mulberry32): floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
