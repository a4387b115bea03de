/**
 * TTY jobs for the process backend: the job runs on a real
 * pseudo-terminal (node-pty), as the leader of its own session and
 * process group. Everything it writes arrives as stdout, as on a
 * terminal; its stdin is the terminal's input, and end-of-input is ^D.
 */
import { accessSync, constants as fsConstants, readSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { delimiter, join } from "node:path";

import pty from "node-pty";

import type { RunningJob } from "../backend.js";
import type { ExitInfo } from "../state.js";
import type { ChildRequest } from "./runner.js";

const DEFAULT_SIZE = { rows: 24, cols: 80 };
const EOT = Buffer.from([4]);
/** Read size when draining the terminal after an early end-of-file. */
const DRAIN_BUFFER_BYTES = 64 * 1024;
/** Most reads of one drain (4 MiB): the terminal's buffers hold far less. */
const MAX_DRAIN_READS = 64;

/**
 * What node-pty's Unix terminal offers beyond its typings: the master's
 * file descriptor and the read stream's own events.
 */
export interface MasterSide {
  readonly fd?: unknown;
  on(event: "end", listener: () => void): void;
}

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(osConstants.signals).map(([name, n]) => [n, name]),
);

/** Starts `file args` on a new pseudo-terminal; see the module comment. */
export function startOnPty(
  request: ChildRequest,
  file: string,
  args: string[],
): Promise<RunningJob> {
  const { env, cwd } = request;
  // node-pty reports a missing program only as a late exit; check first.
  if (!findExecutable(file, env.PATH ?? "")) {
    return Promise.reject(
      new Error(`Cannot start "${file}": command not found`),
    );
  }
  const size = request.ttySize ?? DEFAULT_SIZE;
  const term = pty.spawn(file, args, {
    name: env.TERM ?? "xterm",
    cols: size.cols,
    rows: size.rows,
    cwd,
    env,
    encoding: null,
  });
  const { output } = request;
  const write = (data: string | Buffer) =>
    output.write("stdout", typeof data === "string" ? Buffer.from(data) : data);
  term.onData(write);
  drainOnEarlyEnd(term as unknown as MasterSide, write);
  const exited = new Promise<ExitInfo>((resolve) => {
    term.onExit(({ exitCode, signal }) => {
      signalGroup(term.pid, "SIGKILL");
      output.end();
      const name = signal ? (SIGNAL_NAMES.get(signal) ?? null) : null;
      resolve({ exitStatus: name ? null : exitCode, signal: name });
    });
  });
  return Promise.resolve({
    pid: term.pid,
    exited,
    signal: (signal) => signalGroup(term.pid, signal),
    stdin: {
      // node-pty queues writes itself and offers no drain signal.
      write: (chunk) => {
        term.write(chunk);
        return Promise.resolve();
      },
      end: () => term.write(EOT),
    },
    resize: ({ rows, cols }) => {
      try {
        term.resize(cols, rows);
      } catch {
        // The terminal is gone; the job has ended.
      }
    },
  });
}

/**
 * libuv ends a stream without reading it again when the kernel reports a
 * hang-up right after a short read. On a pseudo-terminal the hang-up comes
 * as soon as the job's last process exits, and output it wrote just
 * before may still be on its way to the master side: reading then returns
 * it. So when the master's stream ends (its descriptor is still open while
 * `end` listeners run), read it dry before the terminal is closed: until
 * the kernel says there is nothing more (EIO once the other side is
 * closed, EAGAIN while someone still holds it), or a bounded amount.
 */
export function drainOnEarlyEnd(
  master: MasterSide,
  write: (data: Buffer) => void,
): void {
  const fd = master.fd;
  if (typeof fd !== "number") return;
  master.on("end", () => {
    const buffer = Buffer.allocUnsafe(DRAIN_BUFFER_BYTES);
    for (let reads = 0; reads < MAX_DRAIN_READS; reads++) {
      let bytes: number;
      try {
        bytes = readSync(fd, buffer, 0, buffer.length, null);
      } catch {
        return; // EIO, EAGAIN: all of it was read
      }
      if (bytes === 0) return;
      write(buffer.subarray(0, bytes));
    }
  });
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Gone already.
  }
}

function findExecutable(file: string, path: string): boolean {
  const candidates = file.includes("/")
    ? [file]
    : path.split(delimiter).map((dir) => join(dir || ".", file));
  return candidates.some((candidate) => {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
