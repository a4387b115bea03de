/**
 * Runs one job's process, inside `lorne shim`: a child in a process group
 * of its own, with stdout and stderr read through socket pairs into the
 * job's output files (capture.ts; TTY jobs run on a pseudo-terminal
 * instead, see pty.ts). When the job's main process exits, whatever it
 * left behind in its group is killed, as a container's processes die with
 * its init.
 */
import {
  spawn,
  type ChildProcess,
  type StdioOptions,
} from "node:child_process";
import { statSync } from "node:fs";
import type { Readable } from "node:stream";

import { errorMessage } from "../../errors.js";
import type { Context } from "../../log/index.js";
import { streamStdin, type RunningJob, type TtySize } from "../backend.js";
import type { JobOutput } from "../output.js";
import type { ExitInfo } from "../state.js";
import { CaptureSockets, type Captures } from "./capture.js";

/** How long to wait for the pipes to drain after the job exits. */
const DRAIN_MS = 2000;

export interface ChildRequest {
  argv: string[];
  /** The job's whole environment, PATH included. */
  env: Record<string, string>;
  cwd?: string;
  tty: boolean;
  stdin: boolean;
  ttySize?: TtySize;
  output: JobOutput;
  log: Context;
}

/** Starts jobs' processes; see the module comment. */
export class ChildRunner {
  readonly #captures = new CaptureSockets();

  /** Makes the first socket pairs ahead of the first start. */
  prepare(): void {
    this.#captures.prepare();
  }

  /**
   * Starts the child. Rejects when it cannot start (command not found,
   * bad working directory); the message becomes the job's `error`.
   */
  async start(request: ChildRequest): Promise<RunningJob> {
    const { argv, env, cwd, output } = request;
    const [file, ...args] = argv;
    if (file === undefined) {
      throw new Error("Cannot start job: no command given");
    }
    if (cwd !== undefined && !isDirectory(cwd)) {
      throw new Error(`Cannot start job: working directory "${cwd}" not found`);
    }

    if (request.tty) {
      // Loaded only for TTY jobs: node-pty costs every shim memory.
      const { startOnPty } = await import("./pty.js");
      return startOnPty(request, file, args);
    }

    const captures = await this.#captures
      .open((stream, chunk) => output.write(stream, chunk))
      .catch((err: unknown) => {
        request.log.log({
          at: "capture_fallback",
          err: errorMessage(err),
          resolution: "node pipes",
        });
        return null;
      });
    const stdio: StdioOptions = [
      request.stdin ? "pipe" : "ignore",
      captures?.stdout.jobEnd ?? "pipe",
      captures?.stderr.jobEnd ?? "pipe",
    ];
    let child: ChildProcess;
    try {
      child = spawn(file, args, { env, cwd, detached: true, stdio });
    } catch (err) {
      closeCaptures(captures, true);
      throw err;
    }
    // The job holds its own ends now.
    closeCaptures(captures, false);
    const pipes = captures
      ? [captures.stdout.reader, captures.stderr.reader]
      : readThroughNode(child, output);

    return new Promise((resolve, reject) => {
      child.once("error", (err) => {
        for (const pipe of pipes) pipe.destroy();
        output.end();
        reject(new Error(describeSpawnError(file, err), { cause: err }));
      });
      child.once("spawn", () => {
        resolve({
          pid: child.pid ?? null,
          exited: waitForExit(child, pipes, () => output.end()),
          signal: (signal) => signalGroup(child, signal),
          stdin: child.stdin ? streamStdin(child.stdin) : undefined,
        });
      });
    });
  }

  close(): void {
    this.#captures.close();
  }
}

// Closes the host's copies of the job's ends; with `readers`, the readers
// as well (the job never started).
function closeCaptures(captures: Captures | null, readers: boolean): void {
  for (const pair of captures ? [captures.stdout, captures.stderr] : []) {
    pair.jobEnd.destroy();
    if (readers) pair.reader.destroy();
  }
}

// The fallback: Node's own pipes, read with its 64 KiB chunks.
function readThroughNode(child: ChildProcess, output: JobOutput): Readable[] {
  child.stdout?.on("data", (chunk: Buffer) => output.write("stdout", chunk));
  child.stderr?.on("data", (chunk: Buffer) => output.write("stderr", chunk));
  return [child.stdout, child.stderr].filter((p) => p !== null);
}

function waitForExit(
  child: ChildProcess,
  pipes: Readable[],
  end: () => void,
): Promise<ExitInfo> {
  return new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      // The leader is gone: take its group with it so the pipes close.
      signalGroup(child, "SIGKILL");
      void drained(pipes).then(() => {
        end();
        resolve({ exitStatus: code, signal });
      });
    });
  });
}

// Resolves when both output pipes have closed, or after DRAIN_MS when
// something outside the group still holds them.
function drained(pipes: Readable[]): Promise<void> {
  const closed = pipes.map(
    (pipe) =>
      new Promise<void>((resolve) => {
        if (pipe.closed) resolve();
        else pipe.once("close", () => resolve());
      }),
  );
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      for (const pipe of pipes) pipe.destroy();
      resolve();
    }, DRAIN_MS);
  });
  return Promise.race([
    Promise.all(closed).then(() => undefined),
    timeout,
  ]).finally(() => clearTimeout(timer));
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group is gone already, which is what we wanted.
  }
}

function describeSpawnError(file: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return `Cannot start "${file}": command not found`;
  if (code === "EACCES") return `Cannot start "${file}": permission denied`;
  return `Cannot start "${file}": ${errorMessage(err)}`;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
