/**
 * Connects this terminal (or these pipes) to an attached job: output to
 * stdout/stderr, stdin to the job, and for TTY sessions raw mode, window
 * resizes, Ctrl-C as a keystroke and Ctrl-P Ctrl-Q to leave. Signals and
 * a broken stdout pipe either go on to the job (`lorne run`) or make this
 * process leave while the job goes on (`lorne attach`). The terminal is
 * restored on every way out, including a crash of this process.
 */
import { constants as osConstants } from "node:os";
import { isatty } from "node:tty";

import { AttachConnection, type AttachOptions } from "../host/attach/client.js";
import type { ExitPayload } from "../host/attach/protocol.js";
import type { HostEndpoint } from "../host/client.js";
import { DetachKeyScanner } from "./detach-keys.js";
import { onBrokenPipe } from "./pipe.js";

/** Signals that end or are passed on by an attached session. */
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
/** This many SIGINTs within INTERRUPTS_WINDOW_MS leave, even when forwarding. */
export const LEAVE_AFTER_INTERRUPTS = 3;
const INTERRUPTS_WINDOW_MS = 2_000;

export interface TerminalAttachOptions {
  endpoint: HostEndpoint;
  jobId: string;
  /** Forward this process's stdin to the job. */
  stdin: boolean;
  /** Raw mode (when stdin is forwarded) and resizes (stdin a terminal). */
  tty: boolean;
  /** Replay output written before attaching. */
  logs: boolean;
  /**
   * Without raw mode, pass SIGINT, SIGTERM and SIGHUP (and SIGPIPE when
   * our reader leaves) on to the job; otherwise they make us leave.
   */
  forwardSignals: boolean;
  /** Called once the host says the job does not exist yet. */
  onWaiting?: () => void;
  /** Refuse a job that exists already (the caller creates it). */
  requireWaiting?: boolean;
  /** Gives up attaching before the host says success. */
  signal?: AbortSignal;
}

/** Why a session was left while the job went on. */
export type LeaveReason =
  (typeof SIGNALS)[number] | "broken_pipe" | "detach_keys" | "interrupts";

/**
 * How a session ended: the job's exit, the connection lost without one,
 * or this process leaving (the job goes on).
 */
export type AttachEnd =
  | { kind: "exit"; exit: ExitPayload }
  | { kind: "lost" }
  | { kind: "left"; reason: LeaveReason };

/** Attaches and runs until the job ends, the connection is lost, or we leave. */
export async function attachTerminal(
  options: TerminalAttachOptions,
): Promise<AttachEnd> {
  const { stdin, stdout, stderr } = process;
  const attach: AttachOptions = {
    stdin: options.stdin,
    logs: options.logs,
    onWaiting: options.onWaiting,
    requireWaiting: options.requireWaiting,
    signal: options.signal,
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

  let leave!: (reason: LeaveReason) => void;
  const left = new Promise<AttachEnd>(
    (resolve) => (leave = (reason) => resolve({ kind: "left", reason })),
  );
  const cleanups: (() => void)[] = [];
  const cleanup = () => {
    for (const undo of cleanups.splice(0).reverse()) {
      try {
        undo();
      } catch {
        // A terminal that hung up refuses its settings back (EIO); the
        // rest of the cleanup, and closing the connection, still runs.
      }
    }
  };
  process.once("exit", cleanup);
  try {
    if (options.tty && stdin.isTTY) cleanups.push(followResize(conn));
    // Raw mode only when keys go to the job: otherwise Ctrl-C stays a
    // signal, and the session can be left.
    const raw = options.tty && options.stdin && stdin.isTTY;
    if (raw) {
      stdin.setRawMode(true);
      cleanups.push(() => stdin.setRawMode(false));
    }
    const forward = options.forwardSignals && !raw;
    // The terminal went away (a closed window, a dropped ssh): the job
    // gets SIGHUP if signals go to it, its stdin stays open for other
    // attachers, and this session leaves.
    let hungUp = false;
    const hangup = () => {
      if (hungUp) return;
      hungUp = true;
      if (forward) conn.signal("SIGHUP");
      leave("SIGHUP");
    };
    cleanups.push(onSignals(conn, forward, leave, hangup));
    // Our reader left: passed on as SIGPIPE, as in a real pipe, or we go.
    let piped = false;
    cleanups.push(
      onBrokenPipe(() => {
        if (!forward) return leave("broken_pipe");
        if (!piped) conn.signal("SIGPIPE");
        piped = true;
      }),
    );
    if (options.stdin) {
      cleanups.push(
        forwardStdin(conn, raw ? new DetachKeyScanner() : null, leave, hangup),
      );
    }
    const end = await Promise.race([
      conn.exit.then((exit): AttachEnd =>
        exit ? { kind: "exit", exit } : { kind: "lost" },
      ),
      left,
    ]);
    if (end.kind !== "left") await flush();
    return end;
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
  if (exit.signal !== null && signalNumber(exit.signal) !== undefined) {
    return 128 + (signalNumber(exit.signal) as number);
  }
  return exit.status === "done" ? 0 : 1;
}

/**
 * The exit status of a session we left: 128 + N for signal N (130 for
 * SIGINT and for repeated interrupts), 0 for a broken pipe or the detach
 * keys.
 */
export function leaveCode(reason: LeaveReason): number {
  if (reason === "broken_pipe" || reason === "detach_keys") return 0;
  return 128 + (signalNumber(reason === "interrupts" ? "SIGINT" : reason) ?? 0);
}

function signalNumber(name: string): number | undefined {
  return (osConstants.signals as Record<string, number>)[name];
}

// Window size changes go to the job; returns the undo.
function followResize(conn: AttachConnection): () => void {
  const { stdout } = process;
  const onResize = () => {
    if (stdout.rows > 0 && stdout.columns > 0) {
      conn.resize(stdout.rows, stdout.columns);
    }
  };
  stdout.on("resize", onResize);
  return () => stdout.off("resize", onResize);
}

// Signals go on to the job, or make us leave. A job that ignores them would
// hold a forwarding session forever: a third SIGINT in a short time leaves.
function onSignals(
  conn: AttachConnection,
  forward: boolean,
  leave: (reason: LeaveReason) => void,
  hangup: () => void,
): () => void {
  let interrupts: number[] = [];
  const handlers = SIGNALS.map((signal) => {
    const handler = () => {
      if (signal === "SIGHUP" && terminalHungUp()) return hangup();
      if (!forward) return leave(signal);
      if (signal === "SIGINT") {
        const now = Date.now();
        interrupts = [...interrupts, now].filter(
          (at) => now - at < INTERRUPTS_WINDOW_MS,
        );
        if (interrupts.length >= LEAVE_AFTER_INTERRUPTS) {
          return leave("interrupts");
        }
      }
      conn.signal(signal);
    };
    process.on(signal, handler);
    return () => process.off(signal, handler);
  });
  return () => handlers.forEach((undo) => undo());
}

// Stdin to the job, one chunk in flight (read no faster than it is sent),
// through the detach key scanner on a TTY; returns the undo.
function forwardStdin(
  conn: AttachConnection,
  keys: DetachKeyScanner | null,
  leave: (reason: LeaveReason) => void,
  hangup: () => void,
): () => void {
  const { stdin } = process;
  const onData = (chunk: Buffer) => {
    const { pass, detach } = keys?.scan(chunk) ?? {
      pass: chunk,
      detach: false,
    };
    if (detach) {
      stdin.pause();
      const sent = pass.length > 0 ? conn.write(pass) : Promise.resolve();
      void sent.then(() => leave("detach_keys"));
      return;
    }
    if (pass.length === 0) return;
    stdin.pause();
    void conn.write(pass).then(() => stdin.resume());
  };
  const onEnd = () => {
    // A terminal reads as ended when it hangs up (before SIGHUP comes):
    // that is no end of input for the job, whose stdin others may share.
    if (terminalHungUp()) return hangup();
    const held = keys?.flush();
    if (held?.length) void conn.write(held);
    conn.closeStdin();
  };
  stdin.on("data", onData);
  stdin.once("end", onEnd);
  return () => {
    stdin.off("data", onData);
    stdin.off("end", onEnd);
    stdin.pause();
  };
}

// Whether stdin or stdout was a terminal that has since hung up: it
// then fails the calls isatty makes.
const STDIO_TTYS = [0, 1].filter((fd) => isatty(fd));

/** Whether a terminal this process started on has hung up. */
export function terminalHungUp(): boolean {
  return STDIO_TTYS.some((fd) => !isatty(fd));
}

/**
 * Ends this process the way a hangup does (killed by SIGHUP, status 129
 * to a shell), without Node's exit path: on Node 20 that restores the
 * terminal's settings and aborts when the terminal is gone.
 */
export function dieOfHangup(): void {
  process.removeAllListeners("SIGHUP");
  process.kill(process.pid, "SIGHUP");
}

function flush(): Promise<void> {
  const drained = (stream: NodeJS.WriteStream) =>
    new Promise<void>((resolve) => stream.write("", () => resolve()));
  return Promise.all([drained(process.stdout), drained(process.stderr)]).then(
    () => undefined,
  );
}
