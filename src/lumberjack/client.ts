/**
 * LumberjackClient: sends batches of events to one Lumberjack server (the
 * Logstash beats input, go-lumber, `lorne receive`) over TCP or TLS and
 * resolves each batch only once the server has acknowledged all of it.
 *
 * A batch goes out as a window frame and then its events, v2 JSON frames
 * or v1 key/value frames, inside one compressed frame unless the level is
 * 0 (batch.ts). Acks are decoded as frames: seq 0 is a keepalive that
 * extends the deadline, a partial ack is progress, and an ack beyond the
 * batch or any other frame is a protocol error that drops the connection
 * (client-link.ts holds one connection's rules). The next batch
 * reconnects. v1 sequence numbers count per connection (as the old
 * Ruby server and butteredscones expect) and start again at 1 on a new
 * connection; v2 ones count 1..N in every batch.
 */
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";

import type { Version } from "./frames.js";

import { errorMessage, UnavailableError, ValidationError } from "../errors.js";
import { isWholeIn } from "../numbers.js";
import {
  encodeBatch,
  eventCount,
  PreparedBatch,
  type BatchEvents,
  type EventFrames,
} from "./batch.js";
import { ClientLink, dial } from "./client-link.js";
import { joinHostPort, MAX_MS, whole } from "./options.js";
import { clientTlsOptions, type ClientTlsOptions } from "./tls.js";

const MAX_U32 = 0xffff_ffff;

export const DEFAULT_CLIENT_VERSION: Version = 2;
export const DEFAULT_COMPRESSION_LEVEL = 6;
export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
export const DEFAULT_ACK_TIMEOUT_MS = 15_000;
export const DEFAULT_WRITE_TIMEOUT_MS = 15_000;

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

/** A Lumberjack v1/v2 client for one server; see the module comment. */
export class LumberjackClient extends EventEmitter<LumberjackClientEvents> {
  readonly host: string;
  readonly port: number;
  /** `host:port`, with brackets around an IPv6 address. */
  readonly address: string;
  readonly #tls: ClientTlsOptions | undefined;
  readonly #options: Resolved;
  readonly #abort = new AbortController();
  #link: ClientLink | undefined;
  #connecting: Promise<void> | undefined;
  /** Why the last connection failed, for a batch that finds none. */
  #lastError: Error | undefined;
  #queue: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;
  #closed = false;

  constructor(options: LumberjackClientOptions) {
    super();
    const { host, port } = options;
    if (typeof host !== "string" || host === "") {
      throw new ValidationError(
        "Invalid host: must be a non-empty string",
        "host",
      );
    }
    if (!isWholeIn(port, 1, 65535)) {
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
    if (this.#closed) return Promise.reject(this.#closedError("connect to"));
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
  send(events: BatchEvents | PreparedBatch): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError("send to"));
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
    this.#abort.abort();
    this.#link?.fail(
      new UnavailableError(
        `Batch to ${this.address} abandoned: the client was destroyed`,
      ),
      false,
    );
  }

  #connect(): Promise<void> {
    if (this.#abort.signal.aborted) {
      return Promise.reject(
        new UnavailableError(
          `Cannot connect to ${this.address}: the client was destroyed`,
        ),
      );
    }
    if (this.#link !== undefined) return Promise.resolve();
    this.#connecting ??= dial({
      host: this.host,
      port: this.port,
      address: this.address,
      tls: this.#tls,
      timeoutMs: this.#options.connectTimeoutMs,
      signal: this.#abort.signal,
    })
      .then((socket) => this.#attach(socket))
      .finally(() => {
        this.#connecting = undefined;
      });
    return this.#connecting;
  }

  #attach(socket: Socket): void {
    this.#lastError = undefined;
    const link: ClientLink = new ClientLink(socket, {
      address: this.address,
      ackTimeoutMs: this.#options.ackTimeoutMs,
      writeTimeoutMs: this.#options.writeTimeoutMs,
      listener: {
        sent: (info) => this.emit("sent", info),
        acked: (info) => this.emit("acked", info),
        keepalive: () => this.emit("keepalive"),
        gone: (err, report) => {
          if (this.#link === link) this.#link = undefined;
          if (!report) return;
          this.#lastError = err;
          if (this.listenerCount("error") > 0) this.emit("error", err);
        },
      },
    });
    this.#link = link;
    this.emit("connected", {
      address: this.address,
      tls: this.#tls !== undefined,
    });
  }

  async #sendBatch(batch: BatchEvents | PreparedBatch): Promise<void> {
    const prepared = batch instanceof PreparedBatch ? batch : undefined;
    const events = prepared?.events ?? batch;
    if (!isBatchEvents(events)) {
      throw new ValidationError(
        "Invalid events: expected an array of objects",
        "events",
      );
    }
    const count = eventCount(events);
    if (count === 0) return;
    if (count > MAX_U32) {
      throw new ValidationError(
        `Invalid events: more than ${MAX_U32} in one batch`,
        "events",
      );
    }
    await this.#connect();
    let link = this.#linkOrFail();
    const { version, compressionLevel } = this.#options;
    if (version === 1 && link.nextSeq + count - 1 > MAX_U32) {
      // Sequence numbers are u32 and restart on a new connection.
      await this.#endLink();
      await this.#connect();
      link = this.#linkOrFail();
    }
    const firstSeq = version === 1 ? link.nextSeq : 1;
    const encoding = { version, compressionLevel, firstSeq };
    const bytes =
      prepared?.fits(encoding) === true
        ? await prepared.bytes
        : await encodeBatch(events, encoding);
    if (this.#link !== link) throw this.#lostBeforeSend();
    if (version === 1) link.nextSeq += count;
    await link.transmit(bytes, firstSeq, firstSeq + count - 1);
  }

  #linkOrFail(): ClientLink {
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

  #closedError(doing: string): UnavailableError {
    return new UnavailableError(
      `Cannot ${doing} ${this.address}: the client is closed`,
    );
  }

  async #endLink(): Promise<void> {
    const link = this.#link;
    this.#link = undefined;
    await link?.end();
  }
}

// Plain JavaScript callers can pass anything; TypeScript ones cannot.
function isBatchEvents(events: unknown): events is BatchEvents {
  if (Array.isArray(events)) return true;
  if (typeof events !== "object" || events === null) return false;
  const frames = events as Partial<Record<keyof EventFrames, unknown>>;
  return (
    typeof frames.count === "number" && typeof frames.encode === "function"
  );
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
