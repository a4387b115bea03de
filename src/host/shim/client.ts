/**
 * The daemon's side of a shim job: a control connection to the job's
 * shim, which moves the job's output view on and learns its exit, and a
 * RunningJob whose signals, resizes and stdin travel to the shim. The same
 * code serves a job just started and a job re-adopted after the daemon
 * restarted.
 *
 * If the connection is lost without an exit (the shim was killed), the
 * exit file is read; without one the job's remaining processes are killed
 * and the job ends with its exit status unknown.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { connect, type Socket } from "node:net";

import { errorMessage } from "../../errors.js";
import type { Context } from "../../log/index.js";
import type { JobStdin, RunningJob } from "../backend.js";
import type { JobOutput } from "../output.js";
import type { ExitInfo } from "../state.js";
import { jobHostId } from "../statedir.js";
import { readExitFile } from "./exitfile.js";
import { SHIM_PID_FILE } from "./spec.js";
import {
  decodePosition,
  encodeFrame,
  encodeResize,
  FRAME,
  FrameReader,
  MAX_FRAME_BYTES,
  parseJson,
  type Frame,
  type Hello,
  type ShimExit,
} from "./protocol.js";

/** Longest the shim may take to say hello. */
const HELLO_TIMEOUT_MS = 5000;

export interface ShimConnectOptions {
  jobId: string;
  /** The host the job belongs to (LORNE_HOST_ID in its environment). */
  hostId: string;
  socket: string;
  /** The job's directory (its exit file). */
  dir: string;
  /** The daemon's view of the job's output. */
  output: JobOutput;
  /** Whether the job has a stdin to write to. */
  stdin: boolean;
  log: Context;
}

/**
 * Connects to a job's shim and resolves once it has said hello. Rejects
 * when nobody answers on the socket.
 */
export async function connectShim(
  options: ShimConnectOptions,
): Promise<RunningJob> {
  const socket = await open(options.socket, "control");
  const reader = new FrameReader();
  const { hello, rest } = await new Promise<{ hello: Hello; rest: Frame[] }>(
    (resolve, reject) => {
      const timer = setTimeout(
        () => fail(new Error("no hello")),
        HELLO_TIMEOUT_MS,
      );
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new Error(`Cannot talk to the job's shim: ${err.message}`));
      };
      socket.once("close", () => fail(new Error("it closed the connection")));
      socket.on("data", function first(chunk: Buffer) {
        let frames: Frame[];
        try {
          frames = reader.push(chunk);
        } catch (err) {
          fail(err as Error);
          return;
        }
        const [frame, ...rest] = frames;
        if (!frame) return;
        socket.off("data", first);
        socket.removeAllListeners("close");
        clearTimeout(timer);
        if (frame.type !== FRAME.hello) {
          fail(new Error(`unexpected frame ${frame.type}`));
          return;
        }
        try {
          resolve({ hello: parseJson<Hello>(frame.payload, "HELLO"), rest });
        } catch (err) {
          fail(err as Error);
        }
      });
    },
  );
  return new ShimJob(options, socket, reader, hello, rest).running();
}

class ShimJob {
  readonly #options: ShimConnectOptions;
  readonly #socket: Socket;
  readonly #pid: number;
  readonly #startedAt: string | undefined;
  /** The stdin connection, once opened; null inside when it failed. */
  #stdin: Promise<Socket | null> | null = null;
  #exit: ShimExit | null = null;
  #resolveExited!: (exit: ExitInfo) => void;
  readonly #exited = new Promise<ExitInfo>((r) => (this.#resolveExited = r));

  constructor(
    options: ShimConnectOptions,
    socket: Socket,
    reader: FrameReader,
    hello: Hello,
    rest: Frame[],
  ) {
    this.#options = options;
    this.#socket = socket;
    this.#pid = hello.pid;
    // Unset (an unreadable time): the host stamps the start itself.
    this.#startedAt =
      typeof hello.startedAt === "string" && !isNaN(Date.parse(hello.startedAt))
        ? hello.startedAt
        : undefined;
    options.output.advanceTo(hello.position, hello.droppedBytes);
    socket.on("data", (chunk: Buffer) => {
      try {
        this.#handle(reader.push(chunk));
      } catch (err) {
        this.#options.log.log({
          at: "shim_protocol_error",
          err: errorMessage(err),
        });
        socket.destroy();
      }
    });
    socket.on("close", () => this.#lost());
    socket.on("error", () => undefined);
    // Frames that came in the same read as the hello.
    this.#handle(rest);
  }

  running(): RunningJob {
    return {
      pid: this.#pid,
      startedAt: this.#startedAt,
      exited: this.#exited,
      signal: (signal) => this.#signal(signal),
      stdin: this.#options.stdin ? this.#stdinWriter() : undefined,
      resize: ({ rows, cols }) => {
        if (!this.#socket.destroyed)
          this.#socket.write(encodeResize(rows, cols));
      },
    };
  }

  #handle(frames: Frame[]): void {
    for (const frame of frames) {
      if (frame.type === FRAME.output) {
        const { position, droppedBytes } = decodePosition(frame.payload);
        this.#options.output.advanceTo(position, droppedBytes);
      } else if (frame.type === FRAME.log) {
        this.#relayLog(frame.payload);
      } else if (frame.type === FRAME.exit) {
        this.#ended(parseJson<ShimExit>(frame.payload, "EXIT"));
        this.#socket.end(encodeFrame(FRAME.exitAck));
      }
    }
  }

  // A line the shim logged, into the daemon's log under this job.
  #relayLog(payload: Buffer): void {
    const record = parseJson<unknown>(payload, "LOG");
    if (typeof record !== "object" || record === null) return;
    this.#options.log.log({ ...record, from: "shim" });
  }

  #ended(exit: ShimExit): void {
    if (this.#exit !== null) return;
    this.#exit = exit;
    const output = this.#options.output;
    output.advanceTo(exit.position, exit.droppedBytes);
    output.end();
    void this.#stdin?.then((s) => s?.destroy());
    this.#resolveExited({
      exitStatus: exit.exitStatus,
      signal: exit.signal,
      oomKilled: exit.oomKilled,
      endedAt: exit.endedAt,
      // Why the exit is unknown (the shim died): the record must say so.
      ...(exit.error === undefined ? {} : { error: exit.error }),
    });
  }

  // The connection is gone without an exit frame: the exit file tells,
  // else the shim died and the job's exit is unknown.
  #lost(): void {
    if (this.#exit !== null) return;
    let exit: ShimExit | null = null;
    let problem = "its shim died";
    try {
      exit = readExitFile(this.#options.dir);
    } catch (err) {
      problem = errorMessage(err);
    }
    if (exit) {
      this.#ended(exit);
      return;
    }
    killJobGroup(this.#pid, this.#options.jobId, this.#options.hostId);
    removeShimFiles(this.#options.socket, this.#options.dir);
    this.#options.log.log({
      at: "shim_lost",
      "job.pid": this.#pid,
      err: problem,
    });
    const now = new Date().toISOString();
    this.#ended({
      exitStatus: null,
      signal: null,
      error: `The job's exit status is unknown: ${problem}`,
      endedAt: now,
      position: this.#options.output.position(),
      droppedBytes: this.#options.output.droppedBytes,
    });
  }

  #signal(signal: NodeJS.Signals): void {
    if (this.#exit !== null) return;
    if (!this.#socket.destroyed) {
      this.#socket.write(encodeFrame(FRAME.signal, signal));
      return;
    }
    try {
      process.kill(-this.#pid, signal);
    } catch {
      // Gone already.
    }
  }

  // Input goes on a connection of its own (see protocol.ts), opened at
  // the first write.
  #stdinWriter(): JobStdin {
    const connection = () => {
      this.#stdin ??= open(this.#options.socket, "stdin").catch(() => null);
      return this.#stdin;
    };
    return {
      write: async (chunk) => {
        const socket = await connection();
        for (let at = 0; at < chunk.length; at += MAX_FRAME_BYTES) {
          if (!socket || socket.destroyed) return;
          const piece = chunk.subarray(at, at + MAX_FRAME_BYTES);
          if (!socket.write(encodeFrame(FRAME.stdin, piece))) {
            await new Promise<void>((resolve) => {
              socket.once("drain", resolve);
              socket.once("close", resolve);
            });
          }
        }
      },
      end: () => {
        void connection().then((socket) => {
          if (socket && !socket.destroyed)
            socket.write(encodeFrame(FRAME.stdinClose));
        });
      },
    };
  }
}

function open(path: string, role: "control" | "stdin"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once("connect", () => {
      socket.off("error", reject);
      // A shim that exits resets its connections; `close` tells the rest.
      socket.on("error", () => undefined);
      socket.write(encodeFrame(FRAME.role, role));
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Removes what a shim that died left: its socket and its pid file. */
export function removeShimFiles(socket: string, dir: string): void {
  rmSync(socket, { force: true });
  rmSync(join(dir, SHIM_PID_FILE), { force: true });
}

// Kills what is left of a job whose shim died, if that group still runs
// this job of this host (its leader's environment names both).
export function killJobGroup(pid: number, jobId: string, hostId: string): void {
  // Another host's job of the same id (a copied state file, a second
  // daemon on this machine) is not ours to kill.
  if (pid <= 0 || jobHostId(pid, jobId) !== hostId) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // Gone already.
  }
}
