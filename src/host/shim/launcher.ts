/**
 * Starts shims for the daemon. Starting Node takes tens of milliseconds,
 * so one shim is kept waiting ahead: a job's start hands it the spec and
 * reads its reply, and the next spare is started after. Jobs started at
 * the same time as another take a fresh shim each.
 *
 * A shim is its own session (detached), so a Ctrl-C meant for the daemon
 * never reaches it, and its pipes to the daemon are closed once it has
 * replied: the daemon dying later costs the shim nothing.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { errorMessage } from "../../errors.js";
import type { ShimReply, ShimSpec } from "./spec.js";

/** Node flags that keep a shim small: it runs one job, not a server. */
export const SHIM_NODE_FLAGS = [
  "--max-old-space-size=64",
  "--max-semi-space-size=1",
  "--v8-pool-size=0",
  "--single-threaded",
];
/** Longest a shim may take to answer a spec. */
const REPLY_TIMEOUT_MS = 30_000;
/** Longest reply line taken. */
const MAX_REPLY_BYTES = 64 * 1024;

// Built, the shim is entry.js beside this file. Run from the TypeScript
// sources (tests run through tsx), it is entry.ts, loaded the same way
// this process loads it.
const BUILT = existsSync(fileURLToPath(new URL("./entry.js", import.meta.url)));
const ENTRY = fileURLToPath(
  new URL(BUILT ? "./entry.js" : "./entry.ts", import.meta.url),
);
const LOADER_FLAGS = BUILT ? [] : loaderFlags(process.execArgv);

export interface ShimLauncherOptions {
  /** Keep a spare shim started ahead; default true. */
  spare?: boolean;
}

/** See the module comment. */
export class ShimLauncher {
  readonly #keepSpare: boolean;
  #spare: ChildProcess | null = null;
  #closed = false;

  constructor(options: ShimLauncherOptions = {}) {
    this.#keepSpare = options.spare ?? true;
    this.#refill();
  }

  /**
   * Hands the spec to a shim. Resolves with its reply (which may say the
   * job could not start); rejects when the shim itself failed.
   */
  async launch(spec: ShimSpec): Promise<ShimReply> {
    const shim = this.#take();
    setImmediate(() => this.#refill());
    const answer = readReply(shim);
    shim.stdin?.end(`${JSON.stringify(spec)}\n`);
    try {
      return await answer;
    } finally {
      shim.stdout?.destroy();
      shim.unref();
    }
  }

  /** Ends the spare shim. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#spare?.stdin?.end(); // it exits at end of input
    this.#spare?.unref();
    this.#spare = null;
  }

  #take(): ChildProcess {
    const spare = this.#spare;
    this.#spare = null;
    if (spare && spare.exitCode === null && spare.signalCode === null) {
      return spare;
    }
    return startShim();
  }

  #refill(): void {
    if (!this.#keepSpare || this.#closed || this.#spare) return;
    this.#spare = startShim();
    // A spare is never waited for.
    this.#spare.unref();
    (this.#spare.stdout as unknown as { unref?: () => void })?.unref?.();
  }
}

function startShim(): ChildProcess {
  const args = [...SHIM_NODE_FLAGS, ...LOADER_FLAGS, ENTRY];
  const shim = spawn(process.execPath, args, {
    detached: true,
    stdio: ["pipe", "pipe", "ignore"],
    // The job gets the env its spec names; the shim itself only needs to
    // know where temporary files go.
    env: process.env.TMPDIR === undefined ? {} : { TMPDIR: process.env.TMPDIR },
  });
  shim.on("error", () => undefined); // reported through the reply
  shim.stdin?.on("error", () => undefined);
  shim.stdout?.on("error", () => undefined);
  return shim;
}

// The `--import X` / `--loader X` pairs among node's flags.
function loaderFlags(execArgv: string[]): string[] {
  const flags: string[] = [];
  execArgv.forEach((arg, i) => {
    const next = execArgv[i + 1];
    if ((arg === "--import" || arg === "--loader") && next !== undefined) {
      flags.push(arg, next);
    } else if (/^--(import|loader)=/.test(arg)) flags.push(arg);
  });
  return flags;
}

function readReply(shim: ChildProcess): Promise<ShimReply> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(
      () => fail(shimError(`it did not answer in ${REPLY_TIMEOUT_MS} ms`)),
      REPLY_TIMEOUT_MS,
    );
    const onData = (chunk: Buffer) => {
      text += chunk.toString("utf8");
      const newline = text.indexOf("\n");
      if (newline >= 0) done(text.slice(0, newline));
      else if (text.length > MAX_REPLY_BYTES)
        fail(shimError(`its answer is longer than ${MAX_REPLY_BYTES} bytes`));
    };
    const onExit = (code: number | null, signal: string | null) =>
      fail(
        shimError(`it exited before answering (${signal ?? `code ${code}`})`),
      );
    const onError = (err: Error) => fail(shimError(errorMessage(err), err));
    const cleanup = () => {
      clearTimeout(timer);
      shim.stdout?.off("data", onData);
      shim.off("exit", onExit);
      shim.off("error", onError);
    };
    const done = (line: string) => {
      cleanup();
      try {
        resolve(checkReply(JSON.parse(line)));
      } catch {
        reject(
          shimError(`unreadable answer ${JSON.stringify(line.slice(0, 200))}`),
        );
      }
    };
    const fail = (err: Error) => {
      cleanup();
      try {
        process.kill(shim.pid ?? 0, "SIGKILL");
      } catch {
        // gone already
      }
      reject(err);
    };
    shim.stdout?.on("data", onData);
    shim.once("exit", onExit);
    shim.once("error", onError);
  });
}

// One grammar for everything that goes wrong with a shim's start: the
// message becomes the job's `error`.
function shimError(why: string, cause?: unknown): Error {
  return new Error(`Cannot start the job's lorne shim: ${why}`, { cause });
}

function checkReply(value: unknown): ShimReply {
  const reply = value as Partial<{
    ok: boolean;
    pid: number;
    startedAt: string;
    error: string;
  }>;
  if (reply?.ok === true && Number.isInteger(reply.pid)) {
    const { startedAt } = reply;
    return {
      ok: true,
      pid: reply.pid as number,
      // Left out rather than refused: the host then stamps the start itself.
      ...(typeof startedAt === "string" && !isNaN(Date.parse(startedAt))
        ? { startedAt }
        : {}),
    };
  }
  if (reply?.ok === false && typeof reply.error === "string") {
    return { ok: false, error: reply.error };
  }
  throw new Error("not a reply");
}
