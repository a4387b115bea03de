/**
 * The host's TCP port pool. Ports are handed out from a range, each to one
 * job at a time, and come back when the job ends. Before a port is handed
 * out it is probed with a short bind, so a port some other program holds
 * (or that the kernel gave out as an ephemeral port) is skipped.
 *
 * Each port is held by a job id, and the holdings are saved in the host
 * store before they count, so a restarted daemon does not hand out a port
 * a job it may re-adopt still listens on. At construction the pool takes
 * over every holding the store has; recovery decides which to release.
 */
import { createServer } from "node:net";

import { UnavailableError, ValidationError } from "../errors.js";
import { HostStore } from "./store.js";

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
  /** Where holdings are saved; default a memory store. */
  store?: HostStore;
}

/**
 * Parses `MIN-MAX` (inclusive) and checks it is a sane TCP range; the
 * error names `source` (the flag or config key the text came from).
 */
export function parsePortRange(text: string, source = "port range"): PortRange {
  const match = /^(\d{1,5})-(\d{1,5})$/.exec(text.trim());
  const min = Number(match?.[1]);
  const max = Number(match?.[2]);
  if (!match || min < 1 || max > 65535 || min > max) {
    throw new ValidationError(
      `Invalid ${source} ${JSON.stringify(text)}: ` +
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
  readonly #store: HostStore;
  /** Port -> the job holding it (or claimed while a probe runs). */
  readonly #inUse: Map<number, string>;
  #next: number;

  /** Takes over the holdings saved in `options.store`. */
  constructor(options: PortPoolOptions) {
    this.range = options.range;
    this.#probeHost = options.probeHost ?? "127.0.0.1";
    this.#probe = options.probe ?? true;
    this.#store = options.store ?? HostStore.memory();
    this.#inUse = this.#store.ports();
    this.#next = options.range.min;
  }

  /** How many ports are currently handed out. */
  get used(): number {
    return this.#inUse.size;
  }

  /**
   * Takes `count` free ports for a job, all or none, and saves them as
   * its. Fails with UnavailableError when the range has no more free
   * ports, or the store's error when they cannot be saved.
   */
  async allocateFor(jobId: string, count: number): Promise<number[]> {
    const taken: number[] = [];
    try {
      while (taken.length < count) taken.push(await this.#takeOne(jobId));
      this.#store.holdPorts(jobId, taken);
    } catch (err) {
      for (const port of taken) this.#inUse.delete(port);
      throw err;
    }
    return taken;
  }

  /**
   * Takes one port for a job without the bind probe, for callers that
   * cannot wait (a template asking for `.TCPPort N` mid-render).
   */
  allocateSyncFor(jobId: string): number {
    const size = this.range.max - this.range.min + 1;
    for (let tried = 0; tried < size; tried++) {
      const port = this.#advance();
      if (this.#inUse.has(port)) continue;
      this.#store.holdPorts(jobId, [port]);
      this.#inUse.set(port, jobId);
      return port;
    }
    throw exhausted(this.range);
  }

  /**
   * Returns ports to the pool; unknown ports are ignored. Throws the
   * store's error (and keeps them held) when that cannot be saved.
   */
  release(ports: readonly number[]): void {
    this.#store.releasePorts(ports);
    for (const port of ports) this.#inUse.delete(port);
  }

  /** Returns every port a job holds; see `release`. */
  releaseJob(jobId: string): void {
    this.release(this.heldBy().get(jobId) ?? []);
  }

  /** The ports each job holds, ascending, by job id. */
  heldBy(): Map<string, number[]> {
    const held = new Map<string, number[]>();
    for (const [port, jobId] of this.#inUse) {
      const ports = held.get(jobId) ?? [];
      ports.push(port);
      held.set(jobId, ports);
    }
    for (const ports of held.values()) ports.sort((a, b) => a - b);
    return held;
  }

  async #takeOne(jobId: string): Promise<number> {
    const size = this.range.max - this.range.min + 1;
    for (let tried = 0; tried < size; tried++) {
      const port = this.#advance();
      if (this.#inUse.has(port)) continue;
      // Claim before the async probe so concurrent callers skip it.
      this.#inUse.set(port, jobId);
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
