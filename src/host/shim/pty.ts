/**
 * TTY jobs for the process backend: the job runs on a real
 * pseudo-terminal (node-pty), as the leader of its own session and
 * process group. Everything it writes arrives as stdout, as on a
 * terminal; its stdin is the terminal's input, and end-of-input is ^D.
 */
import { accessSync, constants as fsConstants } from "node:fs";
import { constants as osConstants } from "node:os";
import { delimiter, join } from "node:path";

import pty from "node-pty";

import type { RunningJob } from "../backend.js";
import type { ExitInfo } from "../state.js";
import type { ChildRequest } from "./runner.js";

const DEFAULT_SIZE = { rows: 24, cols: 80 };
const EOT = Buffer.from([4]);

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
  term.onData((data: string | Buffer) => {
    output.write("stdout", typeof data === "string" ? Buffer.from(data) : data);
  });
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
