/**
 * `lorne shim`: the small supervisor that owns one process job, so the
 * job outlives the daemon (as containerd-shim does for containers). The
 * daemon starts it (or keeps one waiting), hands it the job's spec on
 * stdin, and reads one reply line on stdout: the job's pid, or why it
 * could not start. From then on the shim:
 *
 *   - writes the job's stdout and stderr to the job's output files;
 *   - listens on the job's control socket, where a daemon (the one that
 *     started it, or a later one after a crash) hears its output position
 *     and its exit, and sends signals, stdin and terminal sizes;
 *   - when the job ends, records how in exit.json (durably), tells the
 *     connected daemon, waits for its acknowledgement (or for no daemon
 *     to be connected) and exits.
 *
 * Its own log lines go to shim.log in the job's directory.
 */
import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { constants as osConstants } from "node:os";
import { join } from "node:path";

import { errorMessage } from "../../errors.js";
import { Context } from "../../log/index.js";
import type { RunningJob } from "../backend.js";
import { JobOutput } from "../output.js";
import { JOB_PID_FILE } from "../statedir.js";
import { writeExitFile } from "./exitfile.js";
import {
  encodeJson,
  encodePosition,
  FRAME,
  FrameReader,
  type Frame,
  type Hello,
  type ShimExit,
} from "./protocol.js";
import { ShimLogger } from "./log.js";
import { ChildRunner } from "./runner.js";
import {
  parseShimSpec,
  SHIM_LOG_FILE,
  SHIM_PID_FILE,
  type ShimSpec,
} from "./spec.js";
import { readLine, reply } from "./stdio.js";

/** Longest spec line taken from the daemon. */
const MAX_SPEC_BYTES = 16 * 1024 * 1024;
/** How long a connected daemon has to acknowledge the exit. */
const EXIT_ACK_TIMEOUT_MS = 10_000;

/** Runs the shim; resolves with its exit code. */
export async function runShim(): Promise<number> {
  const line = await readLine(process.stdin, MAX_SPEC_BYTES);
  if (line === null) return 0; // the daemon went away before using us
  let spec: ShimSpec;
  try {
    spec = parseShimSpec(line);
  } catch (err) {
    await reply({ ok: false, error: errorMessage(err) });
    return 2;
  }
  process.title = `lorne-shim ${spec.jobId}`;
  let logger: ShimLogger;
  try {
    mkdirSync(spec.dir, { recursive: true });
    logger = new ShimLogger(join(spec.dir, SHIM_LOG_FILE));
  } catch (err) {
    await reply({ ok: false, error: `Cannot start job: ${errorMessage(err)}` });
    return 1;
  }
  const log = new Context({
    logger,
    data: { app: "lorne-shim", "job.id": spec.jobId },
  });
  try {
    const shim = new Shim(spec, log, logger);
    return await shim.run();
  } finally {
    logger.file.close();
  }
}

class Shim {
  readonly #spec: ShimSpec;
  readonly #log: Context;
  readonly #controls = new Set<Socket>();
  /** Control connections the exit was sent to. */
  readonly #told = new WeakSet<Socket>();
  /** When the job was spawned; until then, when this shim started. */
  #startedAt = new Date().toISOString();
  #output!: JobOutput;
  #server!: Server;
  #running!: RunningJob;
  #exit: ShimExit | null = null;
  #positionQueued = false;
  #acked!: () => void;
  /** Settles when the first daemon has connected. */
  #firstControl!: () => void;
  readonly #connected = new Promise<void>((r) => (this.#firstControl = r));

  readonly #logger: ShimLogger;

  constructor(spec: ShimSpec, log: Context, logger: ShimLogger) {
    this.#spec = spec;
    this.#log = log;
    this.#logger = logger;
  }

  async run(): Promise<number> {
    const spec = this.#spec;
    const runner = new ChildRunner();
    try {
      this.#output = new JobOutput(spec.dir, (err) =>
        this.#log.log({
          at: "output_error",
          err: errorMessage(err),
          resolution: "dropping output",
        }),
      );
      writeFileSync(join(spec.dir, SHIM_PID_FILE), `${process.pid}\n`);
      this.#server = await listen(spec.socket, (s) => this.#accept(s));
      this.#running = await runner.start({
        argv: spec.argv,
        env: spec.env,
        cwd: spec.cwd,
        tty: spec.tty,
        stdin: spec.stdin,
        ttySize: spec.ttySize,
        output: this.#output,
        log: this.#log,
      });
      this.#startedAt = new Date().toISOString();
    } catch (err) {
      runner.close();
      this.#server?.close();
      rmSync(spec.socket, { force: true });
      rmSync(join(spec.dir, SHIM_PID_FILE), { force: true });
      await reply({ ok: false, error: errorMessage(err) });
      return 0;
    }
    runner.close();
    const pid = this.#running.pid ?? 0;
    // The daemon may die before it hears the pid; a later one finds it here.
    writeFileSync(join(spec.dir, JOB_PID_FILE), `${pid}\n`);
    this.#log.log({ at: "start", "job.pid": pid });
    this.#output.follow({ data: () => this.#queuePosition(), end: () => {} });
    forwardSignals(this.#running);
    await reply({ ok: true, pid, startedAt: this.#startedAt });
    process.stdin.destroy();

    const exit = await this.#running.exited;
    await this.#finish({
      ...exit,
      startedAt: this.#startedAt,
      endedAt: new Date().toISOString(),
      position: this.#output.position(),
      droppedBytes: this.#output.droppedBytes,
    });
    return 0;
  }

  // Records the exit, tells the daemon, and waits for its ack if one is
  // connected; a daemon that is down reads exit.json when it is back.
  async #finish(exit: ShimExit): Promise<void> {
    try {
      writeExitFile(this.#spec.dir, exit);
    } catch (err) {
      this.#log.log({ at: "exit_file_error", err: errorMessage(err) });
    }
    this.#log.log({
      at: "exit",
      exit_status: exit.exitStatus,
      signal: exit.signal,
    });
    const acked = new Promise<void>((resolve) => (this.#acked = resolve));
    this.#exit = exit;
    // The daemon that started the job connects right after the reply; a
    // job that ended before that still has its exit told.
    await this.#within(this.#connected, EXIT_ACK_TIMEOUT_MS);
    for (const control of this.#controls) this.#sendExit(control);
    if (this.#controls.size > 0) await this.#within(acked, EXIT_ACK_TIMEOUT_MS);
    this.#server.close();
    for (const socket of this.#controls) socket.destroy();
    rmSync(this.#spec.socket, { force: true });
    rmSync(join(this.#spec.dir, SHIM_PID_FILE), { force: true });
  }

  async #within(promise: Promise<unknown>, ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      promise,
      new Promise((resolve) => (timer = setTimeout(resolve, ms))),
    ]);
    clearTimeout(timer);
  }

  #accept(socket: Socket): void {
    const reader = new FrameReader();
    let role: "control" | "stdin" | null = null;
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.#controls.delete(socket);
      if (this.#exit !== null && this.#controls.size === 0) this.#acked?.();
    });
    socket.on("data", (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = reader.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        if (role === null) {
          role = this.#takeRole(socket, frame);
          if (role === null) return;
        } else if (role === "control") this.#control(frame);
        else this.#stdin(socket, frame);
      }
    });
  }

  #takeRole(socket: Socket, frame: Frame): "control" | "stdin" | null {
    const role = frame.payload.toString();
    if (frame.type !== FRAME.role || (role !== "control" && role !== "stdin")) {
      socket.destroy();
      return null;
    }
    if (role === "stdin") return role;
    const hello: Hello = {
      pid: this.#running?.pid ?? 0,
      shimPid: process.pid,
      startedAt: this.#startedAt,
      position: this.#output.position(),
      droppedBytes: this.#output.droppedBytes,
    };
    socket.write(encodeJson(FRAME.hello, hello));
    this.#controls.add(socket);
    this.#logger.connect(this.#controls, socket);
    this.#firstControl();
    if (this.#exit !== null) this.#sendExit(socket);
    return role;
  }

  #control(frame: Frame): void {
    switch (frame.type) {
      case FRAME.signal: {
        const name = frame.payload.toString();
        if (name in osConstants.signals) {
          this.#running.signal(name as NodeJS.Signals);
        }
        return;
      }
      case FRAME.resize:
        if (frame.payload.length === 4) {
          this.#running.resize?.({
            rows: frame.payload.readUInt16BE(0),
            cols: frame.payload.readUInt16BE(2),
          });
        }
        return;
      case FRAME.exitAck:
        this.#acked?.();
        return;
    }
  }

  // Input waits for the job to take it: the socket pauses meanwhile, so
  // the daemon's writes back up instead of piling up here.
  #stdin(socket: Socket, frame: Frame): void {
    const stdin = this.#running.stdin;
    if (frame.type === FRAME.stdinClose) {
      stdin?.end();
      return;
    }
    if (frame.type !== FRAME.stdin || !stdin) return;
    socket.pause();
    void stdin.write(frame.payload).then(() => socket.resume());
  }

  #queuePosition(): void {
    if (this.#positionQueued) return;
    this.#positionQueued = true;
    setImmediate(() => {
      this.#positionQueued = false;
      const frame = encodePosition(
        this.#output.position(),
        this.#output.droppedBytes,
      );
      for (const control of this.#controls) control.write(frame);
    });
  }

  #sendExit(socket: Socket): void {
    const exit = this.#exit;
    if (exit === null || this.#told.has(socket)) return;
    this.#told.add(socket);
    socket.write(encodePosition(exit.position, exit.droppedBytes));
    socket.write(encodeJson(FRAME.exit, exit));
  }
}

// Signals meant for the shim (a shutdown of the machine, a kill by hand)
// go to the job, which decides; the shim ends when the job does.
function forwardSignals(running: RunningJob): void {
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    process.on(signal, () => running.signal(signal));
  }
}

function listen(
  path: string,
  onConnection: (s: Socket) => void,
): Promise<Server> {
  rmSync(path, { force: true }); // a socket a killed shim left behind
  const server = createServer(onConnection);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      chmodSync(path, 0o600);
      resolve(server);
    });
  });
}
