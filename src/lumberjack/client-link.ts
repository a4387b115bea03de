/**
 * One connection of a LumberjackClient: dialling it (TCP or TLS, with a
 * deadline), writing a batch, and reading the acks that complete it. The
 * client owns the lifecycle; a link only reports what happened to it.
 *
 * Ack rules: seq 0 is a keepalive that restarts the ack deadline; an ack
 * inside the batch is progress and restarts it too; an ack at or below one
 * already seen repeats old news and is ignored; the batch's last sequence
 * completes it. An ack beyond the batch, any other frame, or bytes that do
 * not decode are a ProtocolError that drops the link.
 */
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";

import { errorMessage, ProtocolError, UnavailableError } from "../errors.js";
import { FrameDecoder } from "./decoder.js";
import type { Frame } from "./frames.js";
import { clientTlsOptions, type ClientTlsOptions } from "./tls.js";

// A server sends only 6-byte acks: anything longer is garbage, and a
// compressed frame from a server is refused outright.
const ACK_LIMITS = { maxFrameBytes: 64, maxNesting: 0 };

/** What a dial needs. */
export interface DialOptions {
  host: string;
  port: number;
  /** `host:port` for messages. */
  address: string;
  tls: ClientTlsOptions | undefined;
  timeoutMs: number;
  /** Aborting drops the attempt (the client was destroyed). */
  signal: AbortSignal;
}

/** What a link tells its client. */
export interface LinkListener {
  sent(info: {
    events: number;
    bytes: number;
    firstSeq: number;
    lastSeq: number;
  }): void;
  acked(info: {
    seq: number;
    acked: number;
    events: number;
    complete: boolean;
  }): void;
  keepalive(): void;
  /**
   * The link is gone. `report` is false for a clean close between batches
   * and for a drop the client asked for.
   */
  gone(err: Error, report: boolean): void;
}

export interface LinkSettings {
  address: string;
  ackTimeoutMs: number;
  writeTimeoutMs: number;
  listener: LinkListener;
}

/** One batch in flight. */
interface Batch {
  firstSeq: number;
  lastSeq: number;
  /** Highest sequence acknowledged so far. */
  acked: number;
  timer: NodeJS.Timeout | undefined;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Opens a TCP or TLS connection; resolves once it (and its handshake) is
 * up. Rejects with UnavailableError: refused, TLS verification failed, no
 * connection within `timeoutMs`, or aborted.
 */
export function dial(options: DialOptions): Promise<Socket> {
  const { host, port, tls, signal } = options;
  const socket =
    tls === undefined
      ? netConnect({ host, port })
      : tlsConnect(clientTlsOptions(host, port, tls));
  const ready = tls === undefined ? "connect" : "secureConnect";

  return new Promise<Socket>((resolve, reject) => {
    const settle = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      socket.removeListener(ready, onReady);
      socket.removeListener("error", onError);
      socket.removeListener("close", onClose);
    };
    const fail = (why: string, cause?: unknown) => {
      settle();
      socket.destroy();
      reject(
        new UnavailableError(`Cannot connect to ${options.address}: ${why}`, {
          cause,
        }),
      );
    };
    const onReady = () => {
      settle();
      resolve(socket);
    };
    const onError = (err: Error) => fail(errorMessage(err), err);
    const onClose = () => fail("the connection closed");
    const onAbort = () => fail("the client was destroyed");
    const timer = setTimeout(
      () => fail(`no connection after ${options.timeoutMs} ms`),
      options.timeoutMs,
    );
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort);
    socket.once(ready, onReady);
    socket.once("error", onError);
    socket.once("close", onClose);
  });
}

/** A connected link: writes batches and follows their acks. */
export class ClientLink {
  /** Next v1 sequence number on this connection. */
  nextSeq = 1;
  readonly #socket: Socket;
  readonly #settings: LinkSettings;
  readonly #decoder = new FrameDecoder(ACK_LIMITS);
  /** Highest sequence acknowledged on this connection. */
  #lastAcked = 0;
  #batch: Batch | undefined;
  #gone = false;

  constructor(socket: Socket, settings: LinkSettings) {
    this.#socket = socket;
    this.#settings = settings;
    const { address } = settings;
    socket.setNoDelay(true);
    socket.setKeepAlive(true);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", (err) =>
      this.fail(
        new UnavailableError(
          `Connection to ${address} failed: ${errorMessage(err)}`,
          { cause: err },
        ),
      ),
    );
    socket.on("close", () =>
      this.fail(
        new UnavailableError(
          `Connection to ${address} closed before the batch was acknowledged`,
        ),
        this.#batch !== undefined,
      ),
    );
  }

  /** Whether the link was dropped or ended. */
  get gone(): boolean {
    return this.#gone;
  }

  /**
   * Writes an encoded batch whose events carry firstSeq..lastSeq and
   * resolves when the server has acknowledged lastSeq.
   */
  transmit(bytes: Buffer, firstSeq: number, lastSeq: number): Promise<void> {
    const events = lastSeq - firstSeq + 1;
    return new Promise<void>((resolve, reject) => {
      const batch: Batch = {
        firstSeq,
        lastSeq,
        acked: firstSeq - 1,
        timer: undefined,
        resolve,
        reject,
      };
      this.#batch = batch;
      // v2 counts every batch from 1: earlier acks say nothing about it.
      this.#lastAcked = firstSeq - 1;
      const { writeTimeoutMs, listener } = this.#settings;
      this.#deadline(
        batch,
        writeTimeoutMs,
        `writing a batch of ${events} events`,
      );
      this.#socket.write(bytes, (err) => {
        // An error is reported by 'error'; an early ack may have won.
        if (err || this.#batch !== batch) return;
        listener.sent({ events, bytes: bytes.length, firstSeq, lastSeq });
        this.#waitForAck(batch);
      });
    });
  }

  /**
   * Drops the link: the batch in flight rejects with `err`, and the client
   * hears of it (`report` false for a clean or requested end).
   */
  fail(err: Error, report = true): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#socket.destroy();
    const batch = this.#batch;
    this.#batch = undefined;
    if (batch !== undefined) {
      clearTimeout(batch.timer);
      batch.reject(err);
    }
    this.#settings.listener.gone(err, report);
  }

  /**
   * Ends the connection politely, between batches: FIN (and TLS
   * close_notify), then waits for the close, bounded by writeTimeoutMs.
   */
  async end(): Promise<void> {
    if (this.#gone) return;
    this.#gone = true;
    const socket = this.#socket;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(
        () => socket.destroy(),
        this.#settings.writeTimeoutMs,
      );
      socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.end();
    });
  }

  #waitForAck(batch: Batch): void {
    this.#deadline(
      batch,
      this.#settings.ackTimeoutMs,
      `waiting for an ack of sequence ${batch.lastSeq}`,
    );
  }

  #deadline(batch: Batch, ms: number, doing: string): void {
    clearTimeout(batch.timer);
    batch.timer = setTimeout(() => {
      this.fail(
        new UnavailableError(
          `Timed out ${doing} to ${this.#settings.address}: nothing for ${ms} ms`,
        ),
      );
    }, ms);
  }

  #onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      this.fail(
        new ProtocolError(
          `Bad frame from ${this.#settings.address}: ${errorMessage(err)}`,
          { cause: err },
        ),
      );
      return;
    }
    for (const frame of frames) {
      if (this.#gone) return;
      this.#onFrame(frame);
    }
  }

  #onFrame(frame: Frame): void {
    const { address, listener } = this.#settings;
    if (frame.type !== "ack") {
      this.fail(
        new ProtocolError(
          `Unexpected ${frame.type} frame from ${address}: a server sends only acks`,
        ),
      );
      return;
    }
    const batch = this.#batch;
    if (frame.seq === 0) {
      if (batch !== undefined) this.#waitForAck(batch);
      listener.keepalive();
      return;
    }
    if (frame.seq <= (batch?.acked ?? this.#lastAcked)) return;
    if (batch === undefined || frame.seq > batch.lastSeq) {
      const why =
        batch === undefined
          ? `sequence ${this.#lastAcked} was the last one sent`
          : `the batch ends at sequence ${batch.lastSeq}`;
      this.fail(
        new ProtocolError(
          `Ack for sequence ${frame.seq} from ${address} is beyond the batch: ${why}`,
        ),
      );
      return;
    }

    batch.acked = frame.seq;
    const complete = frame.seq === batch.lastSeq;
    listener.acked({
      seq: frame.seq,
      acked: frame.seq - batch.firstSeq + 1,
      events: batch.lastSeq - batch.firstSeq + 1,
      complete,
    });
    if (!complete) {
      this.#waitForAck(batch);
      return;
    }
    clearTimeout(batch.timer);
    this.#batch = undefined;
    this.#lastAcked = frame.seq;
    batch.resolve();
  }
}
