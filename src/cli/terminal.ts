/**
 * Connects this terminal (or these pipes) to an attached job: output to
 * stdout/stderr, stdin to the job, and for TTY sessions raw mode, window
 * resizes and Ctrl-C as a keystroke. The terminal is restored on every way
 * out, including a crash of this process.
 */
import { constants as osConstants } from "node:os";

import { AttachConnection, type AttachOptions } from "../host/attach/client.js";
import type { ExitPayload } from "../host/attach/protocol.js";
import type { HostEndpoint } from "../host/client.js";
import { onBrokenPipe } from "./pipe.js";

export interface TerminalAttachOptions {
  endpoint: HostEndpoint;
  jobId: string;
  /** Forward this process's stdin to the job. */
  stdin: boolean;
  /** Raw mode and resizes (stdin must be a terminal). */
  tty: boolean;
  /** Replay output written before attaching. */
  logs: boolean;
  /** Called once the host says the job does not exist yet. */
  onWaiting?: () => void;
  /** Refuse a job that exists already (the caller creates it). */
  requireWaiting?: boolean;
}

/**
 * Attaches and runs until the job ends (resolves with its exit) or the
 * connection closes without one (resolves null).
 */
export async function attachTerminal(
  options: TerminalAttachOptions,
): Promise<ExitPayload | null> {
  const { stdin, stdout, stderr } = process;
  const attach: AttachOptions = {
    stdin: options.stdin,
    logs: options.logs,
    onWaiting: options.onWaiting,
    requireWaiting: options.requireWaiting,
    onData: (stream, data) =>
      (stream === "stdout" ? stdout : stderr).write(data),
  };
  // A terminal may report 0x0 (no size set): then the host's default.
  if (options.tty && stdout.isTTY && stdout.rows > 0 && stdout.columns > 0) {
    attach.rows = stdout.rows;
    attach.cols = stdout.columns;
  }
  const conn = await AttachConnection.open(
    options.endpoint,
    options.jobId,
    attach,
  );

  const cleanups: (() => void)[] = [];
  const cleanup = () => {
    for (const undo of cleanups.splice(0).reverse()) undo();
  };
  process.once("exit", cleanup);
  try {
    if (options.tty && stdin.isTTY) {
      stdin.setRawMode(true);
      cleanups.push(() => stdin.setRawMode(false));
      const onResize = () => {
        if (stdout.rows > 0 && stdout.columns > 0) {
          conn.resize(stdout.rows, stdout.columns);
        }
      };
      stdout.on("resize", onResize);
      cleanups.push(() => stdout.off("resize", onResize));
    } else {
      // Without a TTY, Ctrl-C and SIGTERM are passed on to the job.
      for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
        const forward = () => conn.signal(signal);
        process.on(signal, forward);
        cleanups.push(() => process.off(signal, forward));
      }
    }
    // Our reader left: the job gets SIGPIPE, as it would in a real pipe.
    let piped = false;
    cleanups.push(
      onBrokenPipe(() => {
        if (!piped) conn.signal("SIGPIPE");
        piped = true;
      }),
    );
    if (options.stdin) {
      // One chunk in flight: stdin is read no faster than it is sent.
      const onData = (chunk: Buffer) => {
        stdin.pause();
        void conn.write(chunk).then(() => stdin.resume());
      };
      const onEnd = () => conn.closeStdin();
      stdin.on("data", onData);
      stdin.once("end", onEnd);
      cleanups.push(() => {
        stdin.off("data", onData);
        stdin.off("end", onEnd);
        stdin.pause();
      });
    }
    const exit = await conn.exit;
    await flush();
    return exit;
  } finally {
    cleanup();
    process.off("exit", cleanup);
    conn.close();
  }
}

/** The shell convention: the exit code, or 128 + signal number. */
export function exitCodeOf(exit: {
  status: string;
  exit_status: number | null;
  signal: string | null;
}): number {
  if (exit.exit_status !== null) return exit.exit_status;
  const signals = osConstants.signals as Record<string, number>;
  if (exit.signal !== null && signals[exit.signal] !== undefined) {
    return 128 + (signals[exit.signal] as number);
  }
  return exit.status === "done" ? 0 : 1;
}

function flush(): Promise<void> {
  const drained = (stream: NodeJS.WriteStream) =>
    new Promise<void>((resolve) => stream.write("", () => resolve()));
  return Promise.all([drained(process.stdout), drained(process.stderr)]).then(
    () => undefined,
  );
}
