/**
 * Shipper test harness: a real LumberjackReceiver on 127.0.0.1 that keeps
 * every event, config files in a temp dir, and a Shipper run in the test
 * process (or `lorne ship` as a child, for crash tests).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";

import { errorMessage } from "../../src/errors.js";
import { Context, MemoryLogger } from "../../src/log/index.js";
import { LumberjackReceiver } from "../../src/lumberjack/receiver.js";
import { parseShipConfig, type ShipConfig } from "../../src/ship/config.js";
import { OffsetStore, type OffsetEntry } from "../../src/ship/offsets.js";
import { Shipper } from "../../src/ship/shipper.js";
import { isBusy } from "../../src/ship/tracked.js";
import { LORNE, tempDir, waitFor } from "../helpers.js";

export interface Received {
  port: number;
  events: Record<string, unknown>[];
  /** The `line` of every event, in arrival order. */
  lines(): string[];
  /** Fails the next `n` batches (the connection is destroyed, no ack). */
  failNext(n: number): void;
  close(): Promise<void>;
}

/** A receiver on 127.0.0.1 (port 0 unless given) that keeps every event. */
export async function startReceiver(port = 0): Promise<Received> {
  let failures = 0;
  const events: Record<string, unknown>[] = [];
  const receiver = new LumberjackReceiver({
    host: "127.0.0.1",
    port,
    log: new Context({ logger: new MemoryLogger() }),
    onBatch: (batch) => {
      if (failures > 0) {
        failures--;
        return Promise.reject(new Error("test: refusing this batch"));
      }
      events.push(...batch);
      return Promise.resolve();
    },
  });
  const address = await receiver.listen();
  return {
    port: address.port,
    events,
    lines: () => events.map((e) => String(e.line)),
    failNext: (n) => {
      failures = n;
    },
    close: () => receiver.close(),
  };
}

/** A butteredscones-style config object for `dir`, TLS off. */
export function configObject(
  dir: string,
  port: number,
  extra: Record<string, unknown> = {},
  files: Record<string, unknown>[] = [{ paths: [join(dir, "logs", "*.log")] }],
): Record<string, unknown> {
  return {
    state: join(dir, "state.db"),
    glob_refresh_ms: 100,
    network: {
      servers: [{ addr: `127.0.0.1:${port}` }],
      tls: false,
      timeout: 5,
      version: 2,
      ...(extra.network as object | undefined),
    },
    files,
    ...Object.fromEntries(
      Object.entries(extra).filter(([k]) => k !== "network"),
    ),
  };
}

export function shipConfig(
  dir: string,
  port: number,
  extra?: Record<string, unknown>,
  files?: Record<string, unknown>[],
): ShipConfig {
  return parseShipConfig(configObject(dir, port, extra, files), dir);
}

export interface RunningShipper {
  shipper: Shipper;
  logs: MemoryLogger;
  close(): Promise<void>;
}

/** A started Shipper logging to memory, host name "test-host". */
export async function runShipper(config: ShipConfig): Promise<RunningShipper> {
  const logs = new MemoryLogger();
  const shipper = new Shipper(config, {
    log: new Context({ logger: logs }),
    host: "test-host",
  });
  await shipper.start();
  return { shipper, logs, close: () => shipper.close() };
}

/** Waits until the receiver has every line of `expected` (as a set). */
export async function waitForLines(
  received: Received,
  expected: Iterable<string>,
  timeoutMs = 15_000,
): Promise<void> {
  const want = new Set(expected);
  await waitFor(
    () => {
      const got = new Set(received.lines());
      for (const line of want) if (!got.has(line)) return false;
      return true;
    },
    `${want.size} lines at the receiver`,
    timeoutMs,
  );
}

/** `lorne ship --config FILE` as a child process (needs `npm run build`). */
export function spawnShip(configPath: string): ChildProcess {
  return spawn(process.execPath, [LORNE, "ship", "--config", configPath], {
    stdio: ["ignore", "ignore", "pipe"],
  });
}

export function writeConfig(
  dir: string,
  config: Record<string, unknown>,
): string {
  const path = join(dir, "ship.json");
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

// Helpers for the rotation, many-files, outage and statistics tests.

/** A receiver whose acks can be held back (keepalives still go out). */
export interface GatedReceiver extends Received {
  /** Batches after the next `n` wait for release() before their ack. */
  holdAfter(n: number): void;
  /** Batches read and waiting for release(). */
  readonly waiting: number;
  /** Acks every waiting batch and stops holding. */
  release(): void;
}

/**
 * Like startReceiver, but holdAfter(n) makes later batches wait for
 * release(): a way to stop a shipper with a batch in flight, or between
 * two batches, at a point the test chooses.
 */
export async function startGatedReceiver(port = 0): Promise<GatedReceiver> {
  const events: Record<string, unknown>[] = [];
  let failures = 0;
  let passes = Infinity;
  const waiting: (() => void)[] = [];
  const receiver = new LumberjackReceiver({
    host: "127.0.0.1",
    port,
    log: new Context({ logger: new MemoryLogger() }),
    keepaliveMs: 200,
    onBatch: async (batch) => {
      if (failures > 0) {
        failures--;
        throw new Error("test: refusing this batch");
      }
      events.push(...batch);
      if (passes > 0) {
        passes--;
        return;
      }
      await new Promise<void>((resolve) => waiting.push(resolve));
    },
  });
  const address = await receiver.listen();
  return {
    port: address.port,
    events,
    lines: () => events.map((e) => String(e.line)),
    failNext: (n) => {
      failures = n;
    },
    holdAfter: (n) => {
      passes = n;
    },
    get waiting() {
      return waiting.length;
    },
    release: () => {
      passes = Infinity;
      for (const resolve of waiting.splice(0)) resolve();
    },
    close: async () => {
      for (const resolve of waiting.splice(0)) resolve();
      await receiver.close();
    },
  };
}

/**
 * Waits until the shipper has nothing in flight or waiting for a retry and
 * every sender is idle: after this, no batch can still arrive unless new
 * lines are written.
 */
export async function waitSettled(
  shipper: Shipper,
  timeoutMs = 15_000,
): Promise<void> {
  await waitFor(
    () =>
      shipper.retryQueue === 0 &&
      shipper.senders.every((s) => s.status === "idle") &&
      [...shipper.table.files()].every((f) => !isBusy(f)),
    "the shipper to settle",
    timeoutMs,
  );
}

/**
 * Waits for every line of `expected` and for the shipper to settle, then
 * checks the receiver got exactly `expected`: each line as many times as
 * listed, nothing else (in any order across files).
 */
export async function expectExactly(
  received: Received,
  shipper: Shipper,
  expected: readonly string[],
  timeoutMs = 15_000,
): Promise<void> {
  const want = new Set(expected);
  try {
    await waitForLines(received, want, timeoutMs);
  } catch (err) {
    const got = new Set(received.lines());
    const missing = [...want].filter((line) => !got.has(line));
    throw new Error(
      `${errorMessage(err)}: missing ${JSON.stringify(missing)}, ` +
        `received ${JSON.stringify(received.lines())}`,
    );
  }
  await waitSettled(shipper, timeoutMs);
  const sort = (lines: readonly string[]) => [...lines].sort();
  assert.deepEqual(sort(received.lines()), sort(expected));
}

/** Waits for a log record with every key/value of `match`; returns it. */
export async function waitForLog(
  logs: MemoryLogger,
  match: Record<string, unknown>,
  timeoutMs = 15_000,
): Promise<Record<string, unknown>> {
  const what = Object.entries(match)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(" ");
  return waitFor(
    () =>
      logs.records.find((r) =>
        Object.entries(match).every(([k, v]) => r[k] === v),
      ),
    `a log record ${what}`,
    timeoutMs,
  );
}

/** Every saved entry of a stopped shipper's state file. */
export function savedEntries(statePath: string): OffsetEntry[] {
  const store = OffsetStore.open(statePath);
  try {
    return store.all();
  } finally {
    store.close();
  }
}

/** A temp dir with `logs/` and a receiver, both gone when the test ends. */
export async function shipSetup(
  t: TestContext,
  prefix = "lorne-ship-",
): Promise<{ dir: string; logs: string; received: Received }> {
  const dir = tempDir(prefix);
  const logs = join(dir.path, "logs");
  mkdirSync(logs);
  const received = await startReceiver();
  t.after(async () => {
    await received.close();
    dir.remove();
  });
  return { dir: dir.path, logs, received };
}
