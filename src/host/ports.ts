/**
 * The host's TCP port pool. Ports are handed out from a range, each to one
 * job at a time, and come back when the job ends. Before a port is handed
 * out it is probed with a short bind, so a port some other program holds
 * (or that the kernel gave out as an ephemeral port) is skipped.
 */
import { createServer } from "node:net";

import { UnavailableError, ValidationError } from "../errors.js";

export const DEFAULT_PORT_RANGE = "55000-65535";

export interface PortRange {
  min: number;
  max: number;
}

export interface PortPoolOptions {
  range: PortRange;
  /** Address to probe with; default 127.0.0.1. */
  probeHost?: string;
  /** Skip the bind probe (tests of the pool's own bookkeeping). */
  probe?: boolean;
}

/** Parses `MIN-MAX` (inclusive) and checks it is a sane TCP range. */
export function parsePortRange(text: string): PortRange {
  const match = /^(\d{1,5})-(\d{1,5})$/.exec(text.trim());
  const min = Number(match?.[1]);
  const max = Number(match?.[2]);
  if (!match || min < 1 || max > 65535 || min > max) {
    throw new ValidationError(
      `Invalid port range ${JSON.stringify(text)}: ` +
        "expected MIN-MAX with 1 <= MIN <= MAX <= 65535",
      "ports",
    );
  }
  return { min, max };
}

/** Allocates ports from a range; see the module comment. */
export class PortPool {
  readonly range: PortRange;
  readonly #probeHost: string;
  readonly #probe: boolean;
  readonly #inUse = new Set<number>();
  #next: number;

  constructor(options: PortPoolOptions) {
    this.range = options.range;
    this.#probeHost = options.probeHost ?? "127.0.0.1";
    this.#probe = options.probe ?? true;
    this.#next = options.range.min;
  }

  /** How many ports are currently handed out. */
  get used(): number {
    return this.#inUse.size;
  }

  /**
   * Takes `count` free ports, all or none. Fails with UnavailableError when
   * the range has no more free ports.
   */
  async allocate(count: number): Promise<number[]> {
    const taken: number[] = [];
    try {
      while (taken.length < count) taken.push(await this.#takeOne());
    } catch (err) {
      this.release(taken);
      throw err;
    }
    return taken;
  }

  /**
   * Takes one port without the bind probe, for callers that cannot wait
   * (a template asking for `.TCPPort N` mid-render).
   */
  allocateSync(): number {
    const size = this.range.max - this.range.min + 1;
    for (let tried = 0; tried < size; tried++) {
      const port = this.#advance();
      if (this.#inUse.has(port)) continue;
      this.#inUse.add(port);
      return port;
    }
    throw exhausted(this.range);
  }

  /** Returns ports to the pool; unknown ports are ignored. */
  release(ports: readonly number[]): void {
    for (const port of ports) this.#inUse.delete(port);
  }

  async #takeOne(): Promise<number> {
    const size = this.range.max - this.range.min + 1;
    for (let tried = 0; tried < size; tried++) {
      const port = this.#advance();
      if (this.#inUse.has(port)) continue;
      // Claim before the async probe so concurrent callers skip it.
      this.#inUse.add(port);
      if (!this.#probe || (await isBindable(port, this.#probeHost))) {
        return port;
      }
      this.#inUse.delete(port);
    }
    throw exhausted(this.range);
  }

  // Round-robin through the range so a just-released port is not reused at
  // once (a client of the previous job may still be connecting to it).
  #advance(): number {
    const port = this.#next;
    this.#next = port >= this.range.max ? this.range.min : port + 1;
    return port;
  }
}

function exhausted(range: PortRange): UnavailableError {
  return new UnavailableError(
    `Cannot allocate a TCP port: all ports in ${range.min}-${range.max} ` +
      "are in use",
  );
}

function isBindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}
