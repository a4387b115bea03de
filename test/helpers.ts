/**
 * Shared test helpers: temp dirs, polling with a deadline, and a real
 * `lorne host` daemon started from the built binary on a free port.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before } from "node:test";

import { HostClient } from "../src/host/client.js";

export const ROOT = new URL("..", import.meta.url).pathname;
export const LORNE = join(ROOT, "bin", "lorne");

/** A fresh temp dir, removed by the returned cleanup. */
export function tempDir(prefix = "lorne-test-"): {
  path: string;
  remove: () => void;
} {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

type Truthy<T> = Exclude<T, false | 0 | "" | null | undefined>;

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as Truthy<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? `: ${last.message}` : "";
      throw new Error(`Timed out waiting for ${what}${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface DaemonProcess {
  child: ChildProcess;
  url: string;
  /** The API token (from the state dir); null when run with --no-auth. */
  token: string | null;
  stateDir: string;
  /** Every line the daemon printed so far (its logfmt log). */
  lines: string[];
  /** Resolves with the exit code once the daemon has exited. */
  exited: Promise<number | null>;
  /** SIGTERM, wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
}

/**
 * One daemon for a whole test file: started (with `args`) before its
 * tests, handed to `onStart` with a client, and stopped after them, when
 * it must exit 0.
 */
export function useDaemon(
  args: string[],
  onStart: (daemon: DaemonProcess, client: HostClient) => void,
): void {
  let daemon: DaemonProcess | undefined;
  before(async () => {
    daemon = await startDaemon(args);
    onStart(daemon, new HostClient(daemon));
  });
  after(async () => {
    if (daemon) assert.equal(await daemon.stop(), 0);
  });
}

/**
 * Starts `lorne host` on 127.0.0.1:0 with the given extra args and waits for
 * its `at=listening` line (or its exit, which rejects).
 */
export async function startDaemon(
  args: string[] = [],
  options: {
    stateDir?: string;
    env?: NodeJS.ProcessEnv;
    stdin?: string;
    /** Host id (`--id`); default "test-host". */
    id?: string;
  } = {},
): Promise<DaemonProcess> {
  const stateDir = options.stateDir ?? ownedStateDir();
  const child = spawn(
    process.execPath,
    [
      LORNE,
      "host",
      "--listen",
      "127.0.0.1:0",
      "--state",
      stateDir,
      "--id",
      options.id ?? "test-host",
      ...args,
    ],
    {
      cwd: ROOT,
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  if (options.stdin !== undefined) child.stdin.end(options.stdin);
  else child.stdin.end();
  const lines: string[] = [];
  const stderr: string[] = [];
  child.stderr.on("data", (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.on("line", (line) => {
      lines.push(line);
      const match = /at=listening url=(\S+)/.exec(line);
      if (match) resolve(match[1] as string);
    });
    void exited.then((code) =>
      reject(
        new Error(
          `lorne host exited ${code}: ${stderr.join("")}${lines.join("\n")}`,
        ),
      ),
    );
  });
  return {
    child,
    url,
    token: readToken(stateDir),
    stateDir,
    lines,
    exited,
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

function readToken(stateDir: string): string | null {
  try {
    return readFileSync(join(stateDir, "token"), "utf8").trim();
  } catch {
    return null;
  }
}

/** The Authorization header `daemon` wants (none with --no-auth). */
export function authHeader(daemon: {
  token: string | null;
}): Record<string, string> {
  return daemon.token === null
    ? {}
    : { authorization: `Bearer ${daemon.token}` };
}

/** The environment for CLI commands that talk to `daemon`. */
export function cliEnv(
  daemon: DaemonProcess,
  extra: NodeJS.ProcessEnv = {},
): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LORNE_HOST: daemon.url,
    LORNE_TOKEN: daemon.token ?? "",
    ...extra,
  };
}

// State dirs startDaemon made itself. Tests read them after the daemon has
// stopped (and hand them to the next daemon), so they go when the test
// process exits.
const stateDirs: (() => void)[] = [];

function ownedStateDir(): string {
  const dir = tempDir("lorne-state-");
  if (stateDirs.length === 0) {
    process.once("exit", () => stateDirs.forEach((remove) => remove()));
  }
  stateDirs.push(dir.remove);
  return dir.path;
}

/** Runs `lorne ARGS` to completion; resolves stdout, stderr and the exit code. */
export function runLorne(
  args: string[],
  options: {
    env?: NodeJS.ProcessEnv;
    input?: string;
    timeoutMs?: number;
    cwd?: string;
  } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // The timeout bounds a command that should have failed but runs on.
    const child = spawn(process.execPath, [LORNE, ...args], {
      cwd: options.cwd ?? ROOT,
      env: options.env ?? process.env,
      timeout: options.timeoutMs ?? 60_000,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(options.input ?? "");
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Reads a stream of bytes (job logs) to its end as text. */
export async function readText(
  chunks: AsyncIterable<Uint8Array>,
): Promise<string> {
  let out = "";
  for await (const chunk of chunks) out += Buffer.from(chunk).toString();
  return out;
}

/** Whether a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address !== null
          ? resolve(address.port)
          : reject(new Error("Cannot find a free port")),
      );
    });
  });
}
