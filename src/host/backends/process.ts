/**
 * The process backend: each job is a child process in a process group of
 * its own, with stdout and stderr read through socket pairs into the job's
 * output files (capture.ts; TTY jobs run on a pseudo-terminal instead, see
 * pty.ts). When the job's main process exits, whatever it left behind in
 * its group is killed, as a container's processes die with its init.
 */
import {
  spawn,
  type ChildProcess,
  type StdioOptions,
} from "node:child_process";
import { statSync } from "node:fs";
import type { Readable } from "node:stream";

import { errorMessage, ValidationError } from "../../errors.js";
import {
  streamStdin,
  type Backend,
  type BackendStatus,
  type RunningJob,
  type StartRequest,
} from "../backend.js";
import { jobArgv, type JobConfig } from "../job.js";
import type { JobOutput } from "../output.js";
import type { ExitInfo } from "../state.js";
import { CaptureSockets, type Captures } from "./capture.js";
import { startOnPty } from "./pty.js";

/** How long to wait for the pipes to drain after the job exits. */
const DRAIN_MS = 2000;

const DEFAULT_PATH =
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface ProcessBackendOptions {
  /** PATH given to jobs that set none; default: the daemon's own PATH. */
  jobPath?: string;
}

/** See the module comment. */
export class ProcessBackend implements Backend {
  readonly name = "process";
  readonly #jobPath: string;
  readonly #captures = new CaptureSockets();

  constructor(options: ProcessBackendOptions = {}) {
    this.#jobPath = options.jobPath ?? process.env.PATH ?? DEFAULT_PATH;
  }

  validate(config: JobConfig): void {
    if (jobArgv(config).length === 0) {
      throw new ValidationError(
        "Invalid config.cmd: the process backend needs a command to run",
        "config.cmd",
      );
    }
    // An option only a container can honour is refused, not ignored.
    if (config.memory_bytes !== undefined) {
      throw new ValidationError(
        "Invalid config.memory_bytes: not supported by the process backend",
        "config.memory_bytes",
      );
    }
  }

  status(): BackendStatus {
    return { ok: true };
  }

  async start(request: StartRequest): Promise<RunningJob> {
    const { argv, job, output } = request;
    const env = { PATH: this.#jobPath, ...request.env };
    const [file, ...args] = argv;
    if (file === undefined) {
      throw new Error("Cannot start job: no command given");
    }

    const cwd = job.config.working_dir;
    if (cwd !== undefined && !isDirectory(cwd)) {
      throw new Error(`Cannot start job: working directory "${cwd}" not found`);
    }

    if (job.config.tty) return startOnPty(request, file, args, env, cwd);

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
      job.config.stdin ? "pipe" : "ignore",
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

  close(): Promise<void> {
    this.#captures.close();
    return Promise.resolve();
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
