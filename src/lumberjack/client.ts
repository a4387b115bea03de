/**
 * LumberjackClient: sends batches of events to one Lumberjack server (the
 * Logstash beats input, go-lumber, `lorne receive`) over TCP or TLS and
 * resolves each batch only once the server has acknowledged all of it.
 *
 * A batch goes out as a window frame and then its events, v2 JSON frames
 * or v1 key/value frames, inside one compressed frame unless the level is
 * 0. Acks are decoded as frames: seq 0 is a keepalive that extends the
 * deadline, a partial ack is progress, and an ack beyond the batch or any
 * other frame is a protocol error that drops the connection. The next
 * batch reconnects. v1 sequence numbers count per connection (as the old
 * Ruby server and butteredscones expect) and start again at 1 on a new
 * connection; v2 ones count 1..N in every batch.
 */
import { EventEmitter } from "node:events";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";

import {
  errorMessage,
  ProtocolError,
  UnavailableError,
  ValidationError,
} from "../errors.js";
import { FrameDecoder } from "./decoder.js";
import {
  encodeCompressedAsync,
  encodeFrame,
  objectToPairs,
  type Frame,
  type Version,
} from "./frames.js";
import { joinHostPort, MAX_MS, whole } from "./options.js";
import { clientTlsOptions, type ClientTlsOptions } from "./tls.js";

const MAX_U32 = 0xffff_ffff;

export const DEFAULT_CLIENT_VERSION: Version = 2;
export const DEFAULT_COMPRESSION_LEVEL = 6;
export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
export const DEFAULT_ACK_TIMEOUT_MS = 15_000;
export const DEFAULT_WRITE_TIMEOUT_MS = 15_000;

// A server sends only 6-byte acks: anything longer is garbage, and a
// compressed frame from a server is refused outright.
const ACK_LIMITS = { maxFrameBytes: 64, maxNesting: 0 };

/** Options of LumberjackClient; each default is listed once, here. */
export interface LumberjackClientOptions {
  /** Server host name or address. */
  host: string;
  /** Server port, 1 to 65535. */
  port: number;
  /** Connect with TLS 1.2+ when set; default plain TCP. */
  tls?: ClientTlsOptions;
  /** Protocol version; default 2 (JSON events). */
  version?: Version;
  /** zlib level 0-9; default 6. 0 sends events without a compressed frame. */
  compressionLevel?: number;
  /** Longest wait for the TCP (and TLS) handshake; default 15000. */
  connectTimeoutMs?: number;
  /**
   * Longest wait for the next ack once a batch is written; a keepalive or
   * a partial ack starts the wait again. Default 15000.
   */
  ackTimeoutMs?: number;
  /** Longest wait for a batch to be handed to the kernel; default 15000. */
  writeTimeoutMs?: number;
}

/** The typed events a client emits; `error` only when someone listens. */
export interface LumberjackClientEvents {
  /** A connection (and its TLS handshake) is up. */
  connected: [info: { address: string; tls: boolean }];
  /** A batch was written; its acks are awaited. */
  sent: [
    info: { events: number; bytes: number; firstSeq: number; lastSeq: number },
  ];
  /** An ack arrived; `complete` when it covers the whole batch. */
  acked: [
    info: { seq: number; acked: number; events: number; complete: boolean },
  ];
  /** A seq-0 ack: the server is alive but still busy with the batch. */
  keepalive: [];
  /**
   * The connection failed. The batch in flight (if any) is rejected with
   * the same error; emitted only when a listener is attached, so a caller
   * that handles rejections alone never sees an unhandled 'error'.
   */
  error: [err: Error];
}

interface Resolved {
  version: Version;
  compressionLevel: number;
  connectTimeoutMs: number;
  ackTimeoutMs: number;
  writeTimeoutMs: number;
}

/** One batch in flight on a connection. */
interface Batch {
  firstSeq: number;
  lastSeq: number;
  /** Highest sequence acknowledged so far. */
  acked: number;
  timer: NodeJS.Timeout | undefined;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** One connection: its socket, decoder and sequence counter. */
interface Link {
  socket: Socket;
  decoder: FrameDecoder;
  /** Next v1 sequence number on this connection. */
  nextSeq: number;
  /** Highest sequence acknowledged on this connection. */
  lastAcked: number;
  batch: Batch | undefined;
}

/** A Lumberjack v1/v2 client for one server; see the module comment. */
export class LumberjackClient extends EventEmitter<LumberjackClientEvents> {
  readonly host: string;
  readonly port: number;
  /** `host:port`, with brackets around an IPv6 address. */
  readonly address: string;
  readonly #tls: ClientTlsOptions | undefined;
  readonly #options: Resolved;
  #link: Link | undefined;
  #connecting: Promise<void> | undefined;
  #connectingSocket: Socket | undefined;
  /** Why the last connection failed, for a batch that finds none. */
  #lastError: Error | undefined;
  #queue: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;
  #closed = false;
  #destroyed = false;

  constructor(options: LumberjackClientOptions) {
    super();
    const { host, port } = options;
    if (typeof host !== "string" || host === "") {
      throw new ValidationError(
        "Invalid host: must be a non-empty string",
        "host",
      );
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new ValidationError(
        `Invalid port ${String(port)}: expected a whole number from 1 to 65535`,
        "port",
      );
    }
    this.host = host;
    this.port = port;
    this.address = joinHostPort(host, port);
    this.#options = resolveOptions(options);
    if (options.tls !== undefined) clientTlsOptions(host, port, options.tls);
    this.#tls = options.tls;
  }

  /** Whether a connection is up. */
  get connected(): boolean {
    return this.#link !== undefined;
  }

  /**
   * Opens the connection, if none is up. Rejects with UnavailableError when
   * the server cannot be reached, refuses the handshake, or takes longer
   * than connectTimeoutMs.
   */
  connect(): Promise<void> {
    if (this.#closed) {
      return Promise.reject(
        new UnavailableError(
          `Cannot connect to ${this.address}: the client is closed`,
        ),
      );
    }
    return this.#connect();
  }

  /**
   * Sends one batch and resolves when the server has acknowledged every
   * event of it. Connects first when no connection is up. Batches are sent
   * one at a time, in call order. Rejects with ValidationError for an event
   * that cannot be encoded (nothing is sent), ProtocolError when the server
   * breaks the protocol, UnavailableError on a timeout or a lost
   * connection; after a rejection the batch may or may not have reached
   * the server, so resending it gives at-least-once delivery.
   */
  send(events: readonly Record<string, unknown>[]): Promise<void> {
    if (this.#closed) {
      return Promise.reject(
        new UnavailableError(
          `Cannot send to ${this.address}: the client is closed`,
        ),
      );
    }
    const run = this.#queue.then(() => this.#sendBatch(events));
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * Lets the batches already passed to send finish, then closes the
   * connection. Later sends reject. Idempotent.
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.#queue
      .then(() => this.#connecting?.catch(() => {}))
      .then(() => this.#endLink());
    return this.#closing;
  }

  /** Drops the connection now; a batch in flight rejects. Idempotent. */
  destroy(): void {
    this.#closed = true;
    this.#destroyed = true;
    this.#connectingSocket?.destroy();
    const link = this.#link;
    if (link !== undefined) {
      this.#fail(
        link,
        new UnavailableError(
          `Batch to ${this.address} abandoned: the client was destroyed`,
        ),
        false,
      );
    }
  }

  #connect(): Promise<void> {
    if (this.#destroyed) {
      return Promise.reject(
        new UnavailableError(
          `Cannot connect to ${this.address}: the client was destroyed`,
        ),
      );
    }
    if (this.#link !== undefined) return Promise.resolve();
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  #open(): Promise<void> {
    const tls = this.#tls;
    const socket =
      tls === undefined
        ? netConnect({ host: this.host, port: this.port })
        : tlsConnect(clientTlsOptions(this.host, this.port, tls));
    this.#connectingSocket = socket;

    return new Promise<void>((resolve, reject) => {
      const fail = (why: string, cause?: unknown) => {
        clearTimeout(timer);
        socket.removeListener(ready, onReady);
        socket.destroy();
        this.#connectingSocket = undefined;
        reject(
          new UnavailableError(`Cannot connect to ${this.address}: ${why}`, {
            cause,
          }),
        );
      };
      const onReady = () => {
        clearTimeout(timer);
        socket.removeListener("error", onError);
        socket.removeListener("close", onClose);
        this.#connectingSocket = undefined;
        this.#lastError = undefined;
        this.#attach(socket);
        resolve();
        this.emit("connected", {
          address: this.address,
          tls: tls !== undefined,
        });
      };
      const onError = (err: Error) => fail(errorMessage(err), err);
      const onClose = () =>
        fail(
          this.#destroyed
            ? "the client was destroyed"
            : "the connection closed",
        );
      const ready = tls === undefined ? "connect" : "secureConnect";
      const timer = setTimeout(
        () => fail(`no connection after ${this.#options.connectTimeoutMs} ms`),
        this.#options.connectTimeoutMs,
      );
      socket.once(ready, onReady);
      socket.once("error", onError);
      socket.once("close", onClose);
    });
  }

  #attach(socket: Socket): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true);
    const link: Link = {
      socket,
      decoder: new FrameDecoder(ACK_LIMITS),
      nextSeq: 1,
      lastAcked: 0,
      batch: undefined,
    };
    this.#link = link;
    socket.on("data", (chunk: Buffer) => this.#onData(link, chunk));
    socket.on("error", (err) =>
      this.#fail(
        link,
        new UnavailableError(
          `Connection to ${this.address} failed: ${errorMessage(err)}`,
          {
            cause: err,
          },
        ),
      ),
    );
    socket.on("close", () =>
      this.#fail(
        link,
        new UnavailableError(
          `Connection to ${this.address} closed before the batch was acknowledged`,
        ),
        link.batch !== undefined,
      ),
    );
  }

  async #sendBatch(events: readonly Record<string, unknown>[]): Promise<void> {
    if (!Array.isArray(events)) {
      throw new ValidationError(
        "Invalid events: expected an array of objects",
        "events",
      );
    }
    if (events.length === 0) return;
    if (events.length > MAX_U32) {
      throw new ValidationError(
        `Invalid events: more than ${MAX_U32} in one batch`,
        "events",
      );
    }
    await this.#connect();
    let link = this.#linkOrFail();
    const version = this.#options.version;
    if (version === 1 && link.nextSeq + events.length - 1 > MAX_U32) {
      // Sequence numbers are u32 and restart on a new connection.
      await this.#endLink();
      await this.#connect();
      link = this.#linkOrFail();
    }
    const firstSeq = version === 1 ? link.nextSeq : 1;
    const bytes = await this.#encode(events, firstSeq);
    if (this.#link !== link) throw this.#lostBeforeSend();
    if (version === 1) link.nextSeq += events.length;
    await this.#transmit(link, bytes, firstSeq, firstSeq + events.length - 1);
  }

  #linkOrFail(): Link {
    const link = this.#link;
    if (link === undefined) throw this.#lostBeforeSend();
    return link;
  }

  // The connection went between batches; say why when it failed.
  #lostBeforeSend(): UnavailableError {
    const cause = this.#lastError;
    const why = cause === undefined ? "" : `: ${errorMessage(cause)}`;
    return new UnavailableError(
      `Connection to ${this.address} closed before the batch was sent${why}`,
      { cause },
    );
  }

  // Window frame, then the events; the events inside one compressed frame
  // unless the level is 0 (one zlib stream per batch, as butteredscones).
  async #encode(
    events: readonly Record<string, unknown>[],
    firstSeq: number,
  ): Promise<Buffer> {
    const { version, compressionLevel } = this.#options;
    const frames: Buffer[] = [];
    events.forEach((event, i) => {
      frames.push(encodeFrame(eventFrame(version, firstSeq + i, event, i)));
    });
    const window = encodeFrame({
      type: "window",
      version,
      size: events.length,
    });
    const body = Buffer.concat(frames);
    if (compressionLevel === 0) return Buffer.concat([window, body]);
    return Buffer.concat([
      window,
      await encodeCompressedAsync(version, body, compressionLevel),
    ]);
  }

  #transmit(
    link: Link,
    bytes: Buffer,
    firstSeq: number,
    lastSeq: number,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const batch: Batch = {
        firstSeq,
        lastSeq,
        acked: firstSeq - 1,
        timer: undefined,
        resolve,
        reject,
      };
      link.batch = batch;
      // v2 counts every batch from 1: earlier acks say nothing about it.
      link.lastAcked = firstSeq - 1;
      const { writeTimeoutMs } = this.#options;
      this.#deadline(
        link,
        batch,
        writeTimeoutMs,
        `writing a batch of ${lastSeq - firstSeq + 1} events`,
      );
      link.socket.write(bytes, (err) => {
        if (err || link.batch !== batch) return; // 'error' or an ack handled it
        this.emit("sent", {
          events: lastSeq - firstSeq + 1,
          bytes: bytes.length,
          firstSeq,
          lastSeq,
        });
        this.#waitForAck(link, batch);
      });
    });
  }

  #waitForAck(link: Link, batch: Batch): void {
    this.#deadline(
      link,
      batch,
      this.#options.ackTimeoutMs,
      `waiting for an ack of sequence ${batch.lastSeq}`,
    );
  }

  #deadline(link: Link, batch: Batch, ms: number, doing: string): void {
    clearTimeout(batch.timer);
    batch.timer = setTimeout(() => {
      this.#fail(
        link,
        new UnavailableError(
          `Timed out ${doing} to ${this.address}: nothing for ${ms} ms`,
        ),
      );
    }, ms);
  }

  #onData(link: Link, chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = link.decoder.push(chunk);
    } catch (err) {
      this.#fail(link, protocolError(`Bad frame from ${this.address}`, err));
      return;
    }
    for (const frame of frames) {
      if (this.#link !== link) return;
      this.#onFrame(link, frame);
    }
  }

  #onFrame(link: Link, frame: Frame): void {
    if (frame.type !== "ack") {
      this.#fail(
        link,
        new ProtocolError(
          `Unexpected ${frame.type} frame from ${this.address}: a server sends only acks`,
        ),
      );
      return;
    }
    const batch = link.batch;
    if (frame.seq === 0) {
      if (batch !== undefined) this.#waitForAck(link, batch);
      this.emit("keepalive");
      return;
    }
    // An ack at or below what was acknowledged already repeats old news.
    if (frame.seq <= (batch?.acked ?? link.lastAcked)) return;
    if (batch === undefined || frame.seq > batch.lastSeq) {
      const why =
        batch === undefined
          ? `sequence ${link.lastAcked} was the last one sent`
          : `the batch ends at sequence ${batch.lastSeq}`;
      this.#fail(
        link,
        new ProtocolError(
          `Ack for sequence ${frame.seq} from ${this.address} is beyond the batch: ${why}`,
        ),
      );
      return;
    }

    batch.acked = frame.seq;
    const complete = frame.seq === batch.lastSeq;
    const events = batch.lastSeq - batch.firstSeq + 1;
    this.emit("acked", {
      seq: frame.seq,
      acked: frame.seq - batch.firstSeq + 1,
      events,
      complete,
    });
    if (!complete) {
      this.#waitForAck(link, batch);
      return;
    }
    clearTimeout(batch.timer);
    link.batch = undefined;
    link.lastAcked = frame.seq;
    batch.resolve();
  }

  // Drops the link: the batch in flight rejects with `err`, and listeners
  // hear of it when `report` (a clean close between batches is no error).
  #fail(link: Link, err: Error, report = true): void {
    if (this.#link !== link) return;
    this.#link = undefined;
    if (report) this.#lastError = err;
    link.socket.destroy();
    const batch = link.batch;
    link.batch = undefined;
    if (batch !== undefined) {
      clearTimeout(batch.timer);
      batch.reject(err);
    }
    if (report && this.listenerCount("error") > 0) this.emit("error", err);
  }

  // Ends the connection politely: FIN (and TLS close_notify), then waits
  // for the close, which writeTimeoutMs bounds.
  async #endLink(): Promise<void> {
    const link = this.#link;
    if (link === undefined) return;
    this.#link = undefined;
    const { socket } = link;
    if (socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(
        () => socket.destroy(),
        this.#options.writeTimeoutMs,
      );
      socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.end();
    });
  }
}

function eventFrame(
  version: Version,
  seq: number,
  event: Record<string, unknown>,
  index: number,
): Frame {
  if (typeof event !== "object" || event === null || Array.isArray(event)) {
    throw new ValidationError(
      `Invalid event ${index}: expected an object`,
      `events[${index}]`,
    );
  }
  try {
    if (version === 1)
      return { type: "data", version, seq, pairs: objectToPairs(event) };
    const json = JSON.stringify(event);
    return { type: "json", version, seq, payload: Buffer.from(json) };
  } catch (err) {
    throw new ValidationError(
      `Invalid event ${index}: ${errorMessage(err)}`,
      `events[${index}]`,
      { cause: err },
    );
  }
}

function protocolError(what: string, err: unknown): ProtocolError {
  return new ProtocolError(`${what}: ${errorMessage(err)}`, { cause: err });
}

function resolveOptions(options: LumberjackClientOptions): Resolved {
  const version = options.version ?? DEFAULT_CLIENT_VERSION;
  if (version !== 1 && version !== 2) {
    throw new ValidationError(
      `Invalid version ${String(version)}: expected 1 or 2`,
      "version",
    );
  }
  return {
    version,
    compressionLevel: whole(
      "compressionLevel",
      options.compressionLevel ?? DEFAULT_COMPRESSION_LEVEL,
      0,
      9,
    ),
    connectTimeoutMs: whole(
      "connectTimeoutMs",
      options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      1,
      MAX_MS,
    ),
    ackTimeoutMs: whole(
      "ackTimeoutMs",
      options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS,
      1,
      MAX_MS,
    ),
    writeTimeoutMs: whole(
      "writeTimeoutMs",
      options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS,
      1,
      MAX_MS,
    ),
  };
}
