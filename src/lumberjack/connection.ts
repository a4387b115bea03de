/**
 * One client connection of a LumberjackReceiver: decodes its frames, gathers
 * each window's events into a batch, hands the batch to `onBatch` (or
 * `onRawBatch`), and acks it only once that has resolved. While the
 * handler runs, seq-0 keepalive acks go out every keepaliveMs and the
 * socket is paused, so a fast sender waits rather than fills memory.
 *
 * The version of the first frame fixes the connection's version. A window
 * size holds until the next window frame, so a v1 sender that announces
 * its window once (logstash-forwarder, lumberjack-protocol) gets an ack for
 * every window's worth of events. Any broken rule closes the connection
 * without acking the batch being read.
 */
import type { Socket } from "node:net";

import type { Context } from "../log/index.js";
import type { DecoderLimits } from "./limits.js";

import { errorMessage, ProtocolError } from "../errors.js";
import { FrameDecoder } from "./decoder.js";
import {
  checkRawEvent,
  decodeEvent,
  eventBytes,
  type RawEvent,
} from "./events.js";
import { encodeFrame, type Frame, type Version } from "./frames.js";

// After the last ack of a graceful close, how long the client gets to
// close its side before the socket is destroyed.
const END_GRACE_MS = 2000;

/** What a batch handler learns about a batch besides its events. */
export interface BatchInfo {
  /** The receiver's number for the connection, as logged (`conn.id`). */
  connectionId: number;
  /** The client's `address:port`. */
  remote: string;
  version: Version;
  /** Sequence number of the batch's last event: the one that is acked. */
  seq: number;
}

/** Called with each fully read batch; the ack waits for it to resolve. */
export type BatchHandler = (
  events: Record<string, unknown>[],
  info: BatchInfo,
) => Promise<void>;

export type { RawEvent } from "./events.js";

/** Like BatchHandler, for events left as bytes (`onRawBatch`). */
export type RawBatchHandler = (
  events: RawEvent[],
  info: BatchInfo,
) => Promise<void>;

/** Where a connection hands its batches: parsed or raw. */
export type BatchTarget =
  | { raw: false; onBatch: BatchHandler }
  | { raw: true; onBatch: RawBatchHandler };

/** Counters a receiver shares with all its connections. */
export interface Counters {
  events: number;
  batches: number;
  bytes: number;
}

/** Settings a receiver hands to each of its connections. */
export interface ConnectionSettings {
  id: number;
  remote: string;
  log: Context;
  limits: DecoderLimits;
  idleTimeoutMs: number;
  keepaliveMs: number;
  /** Most bytes of events one batch may hold while it is read. */
  maxBatchBytes: number;
  target: BatchTarget;
  counters: Counters;
}

/** A receiver's handle on one client connection. */
export class ReceiverConnection {
  readonly id: number;
  /** Resolves once the socket has closed and the end is logged. */
  readonly closed: Promise<void>;
  readonly #socket: Socket;
  readonly #settings: ConnectionSettings;
  readonly #log: Context;
  readonly #decoder: FrameDecoder;
  readonly #idleTimer: NodeJS.Timeout;
  readonly #raw: boolean;
  #keepaliveTimer: NodeJS.Timeout | undefined;
  #version: Version | undefined;
  #window: number | undefined;
  /** Events of the batch being read: objects, or RawEvents when raw. */
  #events: unknown[] = [];
  /** Bytes of the events in #events (payloads; v1 keys and values). */
  #eventBytes = 0;
  #lastSeq = 0;
  /** Frames decoded but not yet handled: they wait while a batch is out. */
  #backlog: Frame[] = [];
  #busy = false;
  #closing = false;
  #clientEnded = false;
  #ended = false;
  #reason = "client_closed";
  #batches = 0;
  #acked = 0;

  constructor(socket: Socket, settings: ConnectionSettings) {
    this.id = settings.id;
    this.#raw = settings.target.raw;
    this.#socket = socket;
    this.#settings = settings;
    this.#log = settings.log;
    this.#decoder = new FrameDecoder(settings.limits);
    this.#idleTimer = setTimeout(() => this.#onIdle(), settings.idleTimeoutMs);
    this.closed = new Promise((resolve) => {
      socket.once("close", () => {
        this.#finish();
        resolve();
      });
    });
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("end", () => this.#onEnd());
    socket.on("error", (err) => this.#onError(err));
    socket.setNoDelay(true);
    this.#log.log({ at: "connect" });
  }

  /**
   * Ends the connection gracefully: a batch whose onBatch is running is
   * still acked, then the socket ends; a batch only partly read is not
   * acked (the client sends it again). Resolves once closed.
   */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#reason = "receiver_closed";
      if (!this.#busy) this.#end();
    }
    return this.closed;
  }

  /** Drops the connection now; a batch in onBatch is not acked. */
  destroy(): void {
    this.#closing = true;
    if (!this.#ended) this.#drop("receiver_destroyed");
  }

  #onData(chunk: Buffer): void {
    if (this.#ended || this.#closing) return;
    this.#settings.counters.bytes += chunk.length;
    let frames: Frame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      this.#protocolError(err);
      return;
    }
    // Idle means no whole frame: trickling bytes does not keep a
    // connection alive.
    if (frames.length > 0 && !this.#busy) this.#idleTimer.refresh();
    for (const frame of frames) this.#backlog.push(frame);
    this.#drain();
  }

  #drain(): void {
    let handled = 0;
    while (!this.#busy && !this.#ended && handled < this.#backlog.length) {
      const frame = this.#backlog[handled++] as Frame;
      try {
        this.#onFrame(frame);
      } catch (err) {
        this.#protocolError(err);
        return;
      }
    }
    this.#backlog =
      handled === 0 ? this.#backlog : this.#backlog.slice(handled);
    if (this.#ended) return;
    if (this.#busy) this.#socket.pause();
    else if (this.#clientEnded) this.#end();
    else this.#socket.resume();
  }

  // The client has sent all it will (a half-close): the batch being
  // written is still acked, then the connection ends.
  #onEnd(): void {
    this.#clientEnded = true;
    if (!this.#busy) this.#end();
  }

  #onFrame(frame: Frame): void {
    if (this.#version === undefined) {
      this.#version = frame.version;
      this.#log.add("version", frame.version);
    } else if (frame.version !== this.#version) {
      throw new ProtocolError(
        `Unexpected version ${frame.version} ${frame.type} frame on a ` +
          `version ${this.#version} connection`,
      );
    }
    switch (frame.type) {
      case "window":
        return this.#onWindow(frame.size);
      case "data":
      case "json":
        return this.#onEvent(frame);
      default:
        throw new ProtocolError(
          `Unexpected ${frame.type} frame from a client: expected a ` +
            "window or data frame",
        );
    }
  }

  #onWindow(size: number): void {
    if (this.#events.length > 0) {
      throw new ProtocolError(
        `Unexpected window frame: ${this.#events.length} of the ` +
          `${String(this.#window)} events of the batch are still unread`,
      );
    }
    if (size === 0) {
      throw new ProtocolError("Invalid window frame: a window of 0 events");
    }
    this.#window = size;
  }

  #onEvent(frame: RawEvent): void {
    const seq = frame.seq;
    if (this.#window === undefined) {
      throw new ProtocolError(
        `Unexpected data frame (sequence ${seq}) before any window frame`,
      );
    }
    // seq 0 is the keepalive ack: a batch ending there could never be acked.
    if (seq === 0) {
      throw new ProtocolError("Invalid data frame: sequence 0 is reserved");
    }
    if (this.#events.length > 0 && seq <= this.#lastSeq) {
      throw new ProtocolError(
        `Invalid data frame: sequence ${seq} does not follow ${this.#lastSeq}`,
      );
    }
    this.#eventBytes += eventBytes(frame);
    if (this.#eventBytes > this.#settings.maxBatchBytes) {
      throw new ProtocolError(
        `Invalid batch: its events hold more than ` +
          `${this.#settings.maxBatchBytes} bytes ` +
          `(${this.#events.length + 1} of a window of ${this.#window})`,
      );
    }
    // Decoded after the sequence checks: their errors come first.
    this.#events.push(this.#raw ? checkRawEvent(frame) : decodeEvent(frame));
    this.#lastSeq = seq;
    if (this.#events.length === this.#window) this.#startBatch();
  }

  #startBatch(): void {
    const events = this.#events;
    const version = this.#version as Version;
    const seq = this.#lastSeq;
    this.#events = [];
    this.#eventBytes = 0;
    this.#busy = true;
    // The receiver is the slow side now: no idle deadline, keepalives.
    clearTimeout(this.#idleTimer);
    this.#keepaliveTimer = setInterval(
      () => this.#write(encodeFrame({ type: "ack", version, seq: 0 })),
      this.#settings.keepaliveMs,
    );
    const info: BatchInfo = {
      connectionId: this.id,
      remote: this.#settings.remote,
      version,
      seq,
    };
    const target = this.#settings.target;
    new Promise<void>((resolve) =>
      resolve(
        target.raw
          ? target.onBatch(events as RawEvent[], info)
          : target.onBatch(events as Record<string, unknown>[], info),
      ),
    ).then(
      () => this.#onBatchDone(events.length, version, seq),
      (err: unknown) => this.#onBatchFailed(err),
    );
  }

  #onBatchDone(count: number, version: Version, seq: number): void {
    clearInterval(this.#keepaliveTimer);
    if (this.#ended) return;
    this.#write(encodeFrame({ type: "ack", version, seq }));
    this.#batches++;
    this.#acked += count;
    this.#settings.counters.batches++;
    this.#settings.counters.events += count;
    this.#busy = false;
    if (this.#closing) {
      this.#end();
      return;
    }
    if (!this.#clientEnded) this.#idleTimer.refresh();
    this.#drain();
  }

  #onBatchFailed(err: unknown): void {
    clearInterval(this.#keepaliveTimer);
    if (this.#ended) return;
    this.#log.log({ at: "batch_failed", err: errorMessage(err) });
    this.#drop("batch_failed");
  }

  #onIdle(): void {
    if (this.#busy || this.#ended) return;
    this.#log.log({
      at: "idle_timeout",
      idle_timeout_ms: this.#settings.idleTimeoutMs,
      buffered: this.#decoder.buffered,
      unread: this.#events.length,
    });
    this.#drop("idle_timeout");
  }

  #protocolError(err: unknown): void {
    this.#log.log({ at: "protocol_error", err: errorMessage(err) });
    this.#drop("protocol_error");
  }

  #onError(err: Error): void {
    if (this.#ended) return;
    this.#reason = "socket_error";
    this.#log.log({ at: "socket_error", err: errorMessage(err) });
  }

  #write(frame: Buffer): void {
    if (!this.#ended && this.#socket.writable) this.#socket.write(frame);
  }

  // Graceful end: what was written (the last ack) is sent before the FIN.
  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#stopTimers();
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), END_GRACE_MS).unref();
  }

  #drop(reason: string): void {
    this.#reason = reason;
    this.#ended = true;
    this.#stopTimers();
    this.#backlog = [];
    this.#socket.destroy();
  }

  #stopTimers(): void {
    clearTimeout(this.#idleTimer);
    clearInterval(this.#keepaliveTimer);
  }

  #finish(): void {
    this.#ended = true;
    this.#stopTimers();
    this.#log.log({
      at: "close",
      reason: this.#reason,
      batches: this.#batches,
      events: this.#acked,
      unacked: this.#events.length,
    });
  }
}
