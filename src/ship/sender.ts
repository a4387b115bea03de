/**
 * One sender per server: takes a batch (a failed one first, from the retry
 * queue any sender may take), sends it with its own LumberjackClient and
 * waits for the server's ack of every line. A failure hands the batch back
 * for a retry and waits out a backoff (50 ms doubling to 5 s, with
 * jitter) before this sender takes another.
 */
import type { LumberjackClient } from "../lumberjack/client.js";
import type { Batch } from "./spooler.js";

import { Backoff } from "../backoff.js";
import { sleep } from "../sleep.js";

export type SenderStatus = "idle" | "sending" | "retrying";

export interface SenderHooks {
  /** The next batch to send; undefined when the shipper is stopping. */
  take(): Promise<Batch | undefined>;
  acked(batch: Batch, sender: Sender): void;
  failed(batch: Batch, err: unknown, sender: Sender): void;
}

export class Sender {
  readonly client: LumberjackClient;
  status: SenderStatus = "idle";
  linesSent = 0;
  batchesSent = 0;
  lastSendMs: number | undefined;
  lastChunkSize = 0;
  readonly #hooks: SenderHooks;
  readonly #now: () => number;
  readonly #backoff: Backoff;
  readonly #stop = new AbortController();
  #running: Promise<void> | undefined;

  constructor(
    client: LumberjackClient,
    hooks: SenderHooks,
    now: () => number = Date.now,
    backoff = new Backoff(),
  ) {
    this.client = client;
    this.#hooks = hooks;
    this.#now = now;
    this.#backoff = backoff;
  }

  get address(): string {
    return this.client.address;
  }

  /** Starts the loop; resolves when take() says stop. */
  start(): Promise<void> {
    this.#running ??= this.#loop();
    return this.#running;
  }

  /** Cuts a backoff wait short so the loop sees the stop at once. */
  stopWaiting(): void {
    this.#stop.abort();
  }

  async #loop(): Promise<void> {
    for (;;) {
      const batch = await this.#hooks.take();
      if (batch === undefined) break;
      batch.attempts++;
      this.status = "sending";
      this.lastChunkSize = batch.lines;
      try {
        await this.client.send(batch.prepared ?? batch.events);
      } catch (err) {
        this.status = "retrying";
        this.#hooks.failed(batch, err, this);
        await sleep(this.#backoff.next(), this.#stop.signal);
        continue;
      }
      this.#backoff.reset();
      this.status = "idle";
      this.linesSent += batch.lines;
      this.batchesSent++;
      this.lastSendMs = this.#now();
      this.#hooks.acked(batch, this);
    }
    this.status = "idle";
  }
}
