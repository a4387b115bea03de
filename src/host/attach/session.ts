/**
 * One attach session on the host side: waits for the job if it does not
 * exist yet (bounded), sends `success`, streams the job's output as data
 * frames (frames.ts), forwards stdin, signals and resizes, and ends with
 * `eof` per stream and `exit` once the job has ended. Many sessions may
 * attach to one job; none can hold up the job or another.
 */
import type { WebSocket } from "ws";

import { ConflictError, errorMessage, ValidationError } from "../../errors.js";
import type { Context } from "../../log/index.js";
import type { Host } from "../host.js";
import { parseSignal, type JobRecord } from "../job.js";
import type { OutputStream } from "../output.js";
import { OutputCursor } from "./cursor.js";
import { FrameSender } from "./frames.js";
import {
  decodeClient,
  encodeServer,
  type ClientFrame,
  type ServerFrame,
} from "./protocol.js";

/** Default time an attacher waits for its job to be created. */
export const DEFAULT_ATTACH_WAIT_MS = 30_000;
/** Client frames waiting to be applied before the socket is paused. */
const MAX_PENDING_FRAMES = 8;

export interface AttachFlags {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  logs: boolean;
  stream: boolean;
  /**
   * Only a job created after this attach will do (its creator attaches
   * first): an existing one is refused, unless a create would replace it.
   */
  newJob: boolean;
  rows?: number;
  cols?: number;
  waitMs: number;
}

/** Runs a session until the socket closes; never throws. */
export async function runAttachSession(
  host: Host,
  ws: WebSocket,
  jobId: string,
  flags: AttachFlags,
  log: Context,
): Promise<void> {
  const session = new AttachSession(host, ws, jobId, flags, log);
  try {
    await session.run();
  } catch (err) {
    session.fail(errorMessage(err));
  }
}

class AttachSession {
  readonly #host: Host;
  readonly #ws: WebSocket;
  readonly #id: string;
  readonly #flags: AttachFlags;
  readonly #log: Context;
  #cursor: OutputCursor | null = null;
  /**
   * The job's final record, asked for as soon as the job exists: once it
   * has ended the job may be removed while this session still sends it.
   */
  #final: Promise<JobRecord> | null = null;
  readonly #frames: FrameSender;
  #input: Promise<void> = Promise.resolve();
  #pendingInput = 0;
  #jobFound!: () => void;
  readonly #jobReady = new Promise<void>(
    (resolve) => (this.#jobFound = resolve),
  );
  #closed = false;
  /** The session said how it ended (finish or error). */
  #told = false;

  constructor(
    host: Host,
    ws: WebSocket,
    id: string,
    flags: AttachFlags,
    log: Context,
  ) {
    this.#host = host;
    this.#ws = ws;
    this.#id = id;
    this.#flags = flags;
    this.#log = log.child({ fn: "attach", "job.id": id });
    this.#frames = new FrameSender(ws);
    ws.on("close", () => {
      // Every session that starts logs how it ended, the client's leaving too.
      if (!this.#told) this.#log.log({ at: "finish", reason: "client_left" });
      this.#told = true;
      this.#closed = true;
      this.#frames.stop();
      this.#cursor?.close();
    });
    ws.on("error", () => undefined);
  }

  async run(): Promise<void> {
    this.#log.log({
      at: "start",
      stdin: this.#flags.stdin,
      logs: this.#flags.logs,
    });
    // Input may come before the job exists: it waits for the job.
    this.#ws.on("message", (data: Buffer, isBinary: boolean) =>
      this.#onMessage(data, isBinary),
    );
    if (!(await this.#waitForJob())) return;
    const record = this.#host.get(this.#id);
    if (this.#flags.stdin && !record.config.stdin) {
      throw new ValidationError(
        `Cannot attach stdin: job "${this.#id}" was created without config.stdin`,
        "stdin",
      );
    }
    this.#cursor ??= this.#onJob();
    this.#send({ type: "success" });

    await this.#frames.send(this.#cursor);
    if (this.#closed) return;
    const ended = !this.#host.isActive(this.#id);
    if (!this.#flags.stream && !ended) {
      this.#told = true;
      this.#log.log({ at: "finish", reason: "logs_sent" });
      this.#ws.close(1000, "logs sent");
      return;
    }
    for (const stream of this.#streams()) this.#send({ type: "eof", stream });
    const final = await (this.#final ?? this.#host.ended(this.#id));
    this.#send({
      type: "exit",
      exit: {
        status: final.status,
        exit_status: final.exit_status,
        signal: final.signal,
      },
    });
    if (!this.#told) {
      this.#told = true;
      this.#log.log({
        at: "finish",
        reason: "job_ended",
        status: final.status,
      });
    }
    this.#ws.close(1000, "job ended");
  }

  /** Ends the session with an error frame. */
  fail(message: string): void {
    if (!this.#told) this.#log.log({ at: "error", err: message });
    this.#told = true;
    this.#send({ type: "error", message });
    this.#ws.close(1011, "attach failed");
  }

  // Resolves true once the job exists (its output is subscribed before it
  // can start), false when the client left or the wait timed out.
  async #waitForJob(): Promise<boolean> {
    if (this.#host.has(this.#id)) {
      if (!this.#flags.newJob) return true;
      if (!this.#host.replaceable(this.#id)) {
        throw new ConflictError(
          `Cannot create job "${this.#id}": it exists already`,
        );
      }
    }
    this.#send({ type: "waiting" });
    return new Promise<boolean>((resolve) => {
      const cancel = this.#host.attachWaiters.add(this.#id, () => {
        clearTimeout(timer);
        this.#cursor = this.#onJob();
        resolve(true);
      });
      const timer = setTimeout(() => {
        cancel();
        this.fail(
          `Job "${this.#id}" did not appear within ${this.#flags.waitMs} ms`,
        );
        resolve(false);
      }, this.#flags.waitMs);
      this.#ws.once("close", () => {
        clearTimeout(timer);
        cancel();
        resolve(false);
      });
    });
  }

  // Runs as soon as the job exists (for a waiting attacher: before it
  // starts), so no output is missed and the first size applies at start.
  #onJob(): OutputCursor {
    this.#jobFound();
    this.#final = this.#host.ended(this.#id);
    if (this.#flags.rows && this.#flags.cols) {
      this.#host.resize(this.#id, {
        rows: this.#flags.rows,
        cols: this.#flags.cols,
      });
    }
    return new OutputCursor(this.#host.output(this.#id), {
      fromStart: this.#flags.logs,
      streams: new Set(this.#streams()),
      untilNow: !this.#flags.stream,
    });
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    let frame: ClientFrame;
    try {
      if (!isBinary)
        throw new ValidationError("Attach frames must be binary messages");
      frame = decodeClient(data);
    } catch (err) {
      return this.fail(errorMessage(err));
    }
    // Input is applied in arrival order, once the job exists (stdin once
    // its start is decided). While frames wait, the socket is paused, so a
    // client cannot pile bytes up in the host faster than the job reads.
    if (++this.#pendingInput >= MAX_PENDING_FRAMES) this.#ws.pause();
    this.#input = this.#input
      .then(() => this.#apply(frame))
      .catch((err: unknown) =>
        this.#log.log({ at: "input", err: errorMessage(err) }),
      )
      .finally(() => {
        if (--this.#pendingInput < MAX_PENDING_FRAMES / 2) this.#ws.resume();
      });
  }

  async #apply(frame: ClientFrame): Promise<void> {
    await this.#jobReady;
    if (frame.type === "resize") {
      this.#host.resize(this.#id, { rows: frame.rows, cols: frame.cols });
      return;
    }
    if (frame.type === "signal") {
      await this.#host.running(this.#id);
      this.#host.signal(this.#id, parseSignal({ signal: frame.signal }));
      return;
    }
    if (!this.#flags.stdin) {
      throw new ValidationError(
        "Cannot write stdin: attached without stdin=1",
        "stdin",
      );
    }
    const stdin = (await this.#host.running(this.#id))?.stdin;
    if (frame.type === "stdin") await stdin?.write(frame.data);
    else stdin?.end();
  }

  *#streams(): Generator<OutputStream> {
    if (this.#flags.stdout) yield "stdout";
    if (this.#flags.stderr) yield "stderr";
  }

  #send(frame: ServerFrame): void {
    if (!this.#closed) this.#ws.send(encodeServer(frame));
  }
}
