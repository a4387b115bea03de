/**
 * LumberjackReceiver: a Lumberjack server for v1 and v2 clients on one
 * port, over TCP or TLS. Each fully read batch goes to `onBatch`, as
 * objects, or to `onRawBatch`, as the bytes that came; the ack follows
 * only once it resolves (see connection.ts for one connection's rules).
 * Limits guard the process against a hostile or broken client:
 * connections, window size, frame size, inflated size, idle time. A bad
 * frame closes that connection alone.
 */
import {
  createServer as netCreateServer,
  type AddressInfo,
  type Server,
  type Socket,
} from "node:net";
import { createServer as tlsCreateServer, type TLSSocket } from "node:tls";

import type { Context } from "../log/index.js";

import { errorMessage, UnavailableError, ValidationError } from "../errors.js";
import {
  ReceiverConnection,
  type BatchHandler,
  type BatchTarget,
  type Counters,
  type RawBatchHandler,
} from "./connection.js";
import {
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_INFLATED_BYTES,
  DEFAULT_MAX_WINDOW,
  resolveLimits,
  type ResolvedLimits,
} from "./limits.js";
import { joinHostPort, MAX_MS, whole } from "./options.js";
import { serverTlsOptions, type ServerTlsOptions } from "./tls.js";

export type {
  BatchHandler,
  BatchInfo,
  RawBatchHandler,
  RawEvent,
} from "./connection.js";

export const DEFAULT_RECEIVER_HOST = "127.0.0.1";
export const DEFAULT_RECEIVER_PORT = 5044;
export const DEFAULT_MAX_CONNECTIONS = 256;
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
export const DEFAULT_KEEPALIVE_MS = 2000;

/**
 * Options of LumberjackReceiver: the settings below and exactly one batch
 * handler.
 *
 * - `onBatch` takes each fully read batch: v2 events as parsed JSON
 *   objects, v1 pairs as objects of strings.
 * - `onRawBatch` takes each batch as its frames (RawEvent): v2 payloads
 *   are checked to be one JSON object, byte by byte, but neither parsed
 *   nor checked as UTF-8; v1 pairs stay bytes.
 *
 * The batch is acked once the handler resolves; a rejection closes the
 * connection without an ack.
 */
export type LumberjackReceiverOptions = ReceiverSettings &
  (
    | { onBatch: BatchHandler; onRawBatch?: undefined }
    | { onRawBatch: RawBatchHandler; onBatch?: undefined }
  );

/** Options besides the batch handler; each default is listed once, here. */
export interface ReceiverSettings {
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** Port; default 5044. 0 picks a free one (see listen's result). */
  port?: number;
  /** Serve TLS 1.2+ with this certificate when set; default plain TCP. */
  tls?: ServerTlsOptions;
  /** Connections at once (TLS handshakes included); default 256. */
  maxConnections?: number;
  /** Largest window a client may announce; default 65536 events. */
  maxWindow?: number;
  /** Largest frame, header included; default 16 MiB. */
  maxFrameBytes?: number;
  /** Largest inflated content of a compressed frame; default 64 MiB. */
  maxInflatedBytes?: number;
  /**
   * Most bytes of events one batch (window) may hold while it is read:
   * JSON payloads (v2), keys and values (v1). Default 64 MiB. Without it
   * small compressed frames could pile up a window of large events.
   */
  maxBatchBytes?: number;
  /**
   * A connection that delivers no whole frame for this long is closed;
   * default 60000. Also bounds a TLS handshake. Not counted while onBatch
   * runs.
   */
  idleTimeoutMs?: number;
  /** Interval of seq-0 keepalive acks while onBatch runs; default 2000. */
  keepaliveMs?: number;
  /** Where the receiver logs (`fn=receiver`); it never prints otherwise. */
  log: Context;
}

/** Counts since listen: connections open now, and what was acked. */
export interface ReceiverStats {
  /** Connections open now, TLS handshakes included. */
  connections: number;
  /** Events in acked batches. */
  events: number;
  /** Acked batches. */
  batches: number;
  /** Bytes read from clients, as they came over the wire. */
  bytes: number;
}

interface Resolved {
  host: string;
  port: number;
  maxConnections: number;
  idleTimeoutMs: number;
  keepaliveMs: number;
  maxBatchBytes: number;
  limits: ResolvedLimits;
}

/** Default of `maxBatchBytes`: 64 MiB of events in one batch. */
export const DEFAULT_MAX_BATCH_BYTES = 64 * 1024 * 1024;

/** A Lumberjack v1/v2 server; see the module comment. */
export class LumberjackReceiver {
  readonly #options: Resolved;
  readonly #tls: ServerTlsOptions | undefined;
  readonly #log: Context;
  readonly #target: BatchTarget;
  readonly #counters: Counters = { events: 0, batches: 0, bytes: 0 };
  /** Every open TCP connection, accepted or still in its handshake. */
  readonly #sockets = new Set<Socket>();
  readonly #connections = new Set<ReceiverConnection>();
  #server: Server | undefined;
  #nextId = 1;
  #closing: Promise<void> | undefined;
  #stopped = false;

  /** Throws ValidationError for a bad option, naming it. */
  constructor(options: LumberjackReceiverOptions) {
    this.#options = resolveOptions(options);
    if (options.tls !== undefined) serverTlsOptions(options.tls);
    this.#tls = options.tls;
    this.#target = batchTarget(options);
    this.#log = options.log.child({ fn: "receiver" });
  }

  /**
   * Starts listening; resolves with the bound address. Rejects with
   * UnavailableError when the address cannot be bound.
   */
  async listen(): Promise<AddressInfo> {
    if (this.#server !== undefined || this.#stopped) {
      throw new ValidationError(
        "Cannot listen: the receiver was started already",
        "listen",
      );
    }
    const server = this.#createServer();
    this.#server = server;
    const { host, port } = this.#options;
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) => {
        reject(
          new UnavailableError(
            `Cannot listen on ${joinHostPort(host, port)}: ${errorMessage(err)}`,
            { cause: err },
          ),
        );
      });
      server.listen({ host, port }, () => resolve());
    });
    server.on("error", (err) =>
      this.#log.log({ at: "server_error", err: errorMessage(err) }),
    );
    const address = server.address() as AddressInfo;
    const tls = this.#tls;
    this.#log.log({
      at: "listening",
      addr: joinHostPort(address.address, address.port),
      tls: tls !== undefined,
      ...(tls ? { client_auth: tls.clientAuth ?? "none" } : {}),
    });
    return address;
  }

  /**
   * Stops accepting, lets each batch already in onBatch finish and be
   * acked, then closes every connection; batches only partly read are not
   * acked. Resolves when all is closed. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  /** Closes the listener and every connection now, acking nothing more. */
  destroy(): void {
    this.#stopped = true;
    this.#server?.close();
    for (const connection of this.#connections) connection.destroy();
    for (const socket of this.#sockets) socket.destroy();
  }

  /** Counters since listen. */
  stats(): ReceiverStats {
    return { connections: this.#sockets.size, ...this.#counters };
  }

  async #shutdown(): Promise<void> {
    this.#stopped = true;
    const server = this.#server;
    const closed = new Promise<void>((resolve) => {
      if (server === undefined || !server.listening) resolve();
      else server.close(() => resolve());
    });
    await Promise.all([...this.#connections].map((c) => c.close()));
    // Whatever is left is still in its TLS handshake.
    for (const socket of this.#sockets) socket.destroy();
    await closed;
    this.#log.log({ at: "closed", ...this.#counters });
  }

  #createServer(): Server {
    if (this.#tls === undefined) {
      const server = netCreateServer({ allowHalfOpen: true }, (socket) => {
        if (this.#admit(socket)) this.#accept(socket);
      });
      return server;
    }
    const server = tlsCreateServer({
      ...serverTlsOptions(this.#tls),
      // A client that shuts down its side still gets its last ack.
      allowHalfOpen: true,
      handshakeTimeout: this.#options.idleTimeoutMs,
    });
    // 'connection' comes before the handshake: the limit holds for
    // handshakes too.
    server.on("connection", (socket: Socket) => this.#admit(socket));
    server.on("secureConnection", (socket: TLSSocket) =>
      this.#onSecure(socket),
    );
    server.on("tlsClientError", (err, socket) => {
      if (this.#stopped) return;
      this.#log.log({
        at: "tls_error",
        remote: remoteOf(socket),
        err: errorMessage(err),
      });
    });
    return server;
  }

  // Counts a new TCP connection, or refuses it over the limit.
  #admit(socket: Socket): boolean {
    if (this.#stopped || this.#sockets.size >= this.#options.maxConnections) {
      if (!this.#stopped) {
        this.#log.log({
          at: "connection_limit",
          remote: remoteOf(socket),
          max_connections: this.#options.maxConnections,
        });
      }
      socket.destroy();
      return false;
    }
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    return true;
  }

  #onSecure(socket: TLSSocket): void {
    if (this.#stopped) {
      socket.destroy();
      return;
    }
    // clientAuth "optional": no certificate is fine, a bad one is not.
    if (!socket.authorized && hasPeerCertificate(socket)) {
      this.#log.log({
        at: "tls_error",
        remote: remoteOf(socket),
        err: `Client certificate refused: ${String(socket.authorizationError)}`,
      });
      socket.destroy();
      return;
    }
    this.#accept(socket);
  }

  #accept(socket: Socket): void {
    const id = this.#nextId++;
    const remote = remoteOf(socket);
    const connection = new ReceiverConnection(socket, {
      id,
      remote,
      log: this.#log.child({ "conn.id": id, remote }),
      limits: this.#options.limits,
      idleTimeoutMs: this.#options.idleTimeoutMs,
      keepaliveMs: this.#options.keepaliveMs,
      maxBatchBytes: this.#options.maxBatchBytes,
      target: this.#target,
      counters: this.#counters,
    });
    this.#connections.add(connection);
    void connection.closed.then(() => this.#connections.delete(connection));
  }
}

function batchTarget(options: LumberjackReceiverOptions): BatchTarget {
  const { onBatch, onRawBatch } = options;
  if (onBatch !== undefined && onRawBatch !== undefined) {
    throw new ValidationError(
      "Invalid onRawBatch: give onBatch or onRawBatch, not both",
      "onRawBatch",
    );
  }
  if (typeof onRawBatch === "function")
    return { raw: true, onBatch: onRawBatch };
  if (typeof onBatch === "function") return { raw: false, onBatch };
  const field = onRawBatch === undefined ? "onBatch" : "onRawBatch";
  throw new ValidationError(`Invalid ${field}: expected a function`, field);
}

function hasPeerCertificate(socket: TLSSocket): boolean {
  const cert = socket.getPeerCertificate();
  return cert !== null && Object.keys(cert).length > 0;
}

function remoteOf(socket: Socket): string {
  return joinHostPort(
    socket.remoteAddress ?? "unknown",
    socket.remotePort ?? 0,
  );
}

function resolveOptions(options: LumberjackReceiverOptions): Resolved {
  const host = options.host ?? DEFAULT_RECEIVER_HOST;
  if (typeof host !== "string" || host === "") {
    throw new ValidationError(
      "Invalid host: must be a non-empty string",
      "host",
    );
  }
  return {
    host,
    port: whole("port", options.port ?? DEFAULT_RECEIVER_PORT, 0, 65535),
    maxConnections: whole(
      "maxConnections",
      options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      1,
      1_000_000,
    ),
    idleTimeoutMs: whole(
      "idleTimeoutMs",
      options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      1,
      MAX_MS,
    ),
    keepaliveMs: whole(
      "keepaliveMs",
      options.keepaliveMs ?? DEFAULT_KEEPALIVE_MS,
      1,
      MAX_MS,
    ),
    maxBatchBytes: whole(
      "maxBatchBytes",
      options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    limits: resolveLimits({
      maxWindow: options.maxWindow ?? DEFAULT_MAX_WINDOW,
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      maxInflatedBytes: options.maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES,
    }),
  };
}
