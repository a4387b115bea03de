/**
 * StatsdStatter: a StatsD client over UDP. One datagram per value:
 * `bucket:1|c`, `bucket:15|ms`, `bucket:0.5|g`, with `|@0.5` appended when
 * the sample rate is below 1. Sampling happens here, before sending.
 */
import { createSocket, type Socket } from "node:dgram";
import { isIP } from "node:net";

import type { Statter } from "./types.js";

import { ValidationError } from "../errors.js";
import { joinBucket, sampled, wholeMs } from "./statter.js";

/** Options of StatsdStatter; each default is listed once, here. */
export interface StatsdStatterOptions {
  /** StatsD host (an IP address or a name); default "127.0.0.1". */
  host?: string;
  /** StatsD UDP port; default 8125. */
  port?: number;
  /** Prefix joined to every bucket with `.`; default "". */
  prefix?: string;
  /** Random numbers in [0, 1) for sampling; default Math.random. */
  random?: () => number;
  /** Told about send and socket errors; default: ignored. */
  onError?: (err: unknown) => void;
}

/**
 * Sends metrics to StatsD. Bucket characters the protocol reserves
 * (`:`, `|`, `@`, whitespace) become `_`; values that are not finite are
 * skipped. A gauge below zero reads as a decrement in StatsD.
 */
export class StatsdStatter implements Statter {
  readonly #socket: Socket;
  readonly #host: string;
  readonly #port: number;
  readonly #prefix: string;
  readonly #random: () => number;
  readonly #onError: (err: unknown) => void;
  #pending = 0;
  #drained: (() => void) | undefined;
  #closed = false;

  constructor(options: StatsdStatterOptions = {}) {
    const port = options.port ?? 8125;
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new ValidationError(
        `Invalid StatsD port ${port}: expected an integer from 1 to 65535`,
        "port",
      );
    }
    this.#host = options.host ?? "127.0.0.1";
    this.#port = port;
    this.#prefix = options.prefix ?? "";
    this.#random = options.random ?? Math.random;
    this.#onError = options.onError ?? (() => {});
    this.#socket = createSocket(isIP(this.#host) === 6 ? "udp6" : "udp4");
    this.#socket.on("error", this.#onError);
    this.#socket.unref();
  }

  counter(sampleRate: number, bucket: string, ...n: number[]): void {
    this.#send(sampleRate, bucket, "c", n);
  }

  timing(sampleRate: number, bucket: string, ...ms: number[]): void {
    this.#send(sampleRate, bucket, "ms", ms.map(wholeMs));
  }

  gauge(sampleRate: number, bucket: string, ...value: number[]): void {
    this.#send(sampleRate, bucket, "g", value);
  }

  /** Waits for sent datagrams to leave, then closes. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#pending > 0) {
      await new Promise<void>((resolve) => (this.#drained = resolve));
    }
    this.#socket.close();
  }

  /** Closes at once; datagrams not yet sent may be lost. Idempotent. */
  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
  }

  #send(
    sampleRate: number,
    bucket: string,
    type: string,
    values: number[],
  ): void {
    if (this.#closed || !sampled(sampleRate, this.#random)) return;
    const name = cleanBucket(joinBucket(this.#prefix, bucket));
    const rate = sampleRate < 1 ? "|@" + String(sampleRate) : "";
    for (const value of values) {
      if (!Number.isFinite(value)) continue;
      this.#pending++;
      const datagram = `${name}:${value}|${type}${rate}`;
      this.#socket.send(datagram, this.#port, this.#host, this.#sent);
    }
  }

  readonly #sent = (err: Error | null): void => {
    if (err) this.#onError(err);
    this.#pending--;
    if (this.#pending === 0 && this.#drained !== undefined) {
      this.#drained();
      this.#drained = undefined;
    }
  };
}

function cleanBucket(bucket: string): string {
  return bucket.replace(/[:|@\s]/g, "_");
}
