/**
 * The shipper: tails every file its globs find and ships each line to a
 * Lumberjack server at least once. Offsets are saved (one transaction per
 * batch) only after a server acked the batch, so a crash at any moment
 * re-sends at most the batches that were not acked, and loses nothing.
 *
 * Lifecycle: `start()` opens the offsets store, finds the files and starts
 * one sender per server; `close()` stops reading, waits (bounded by the
 * network timeout) for the batches in flight to be acked, saves their
 * offsets and closes everything; `destroy()` drops everything at once.
 * Both are idempotent. See docs/ship.md for the pipeline.
 */
import { hostname } from "node:os";

import type { Context } from "../log/index.js";
import type { ShipConfig } from "./config.js";
import type { Batch } from "./spooler.js";

import { errorMessage } from "../errors.js";
import { PreparedBatch } from "../lumberjack/batch.js";
import { LumberjackClient } from "../lumberjack/client.js";
import { Backoff } from "../backoff.js";
import { readerLimit } from "./descriptors.js";
import { FolderWatcher } from "./discovery.js";
import { OffsetStore, type OffsetEntry } from "./offsets.js";
import { Refresher } from "./refresh.js";
import { Sender } from "./sender.js";
import { Spooler } from "./spooler.js";
import { entryOf } from "./tracked.js";
import { ShipCounters } from "./counters.js";
import { FileTable } from "./table.js";

/** Batches each sender may have read ahead, besides the one it sends. */
export const READ_AHEAD = 2;

/** Options besides the config, mostly for tests. */
export interface ShipperOptions {
  log: Context;
  /** Host name sent with every event; default os.hostname(). */
  host?: string;
  now?: () => number;
}

export class Shipper {
  readonly config: ShipConfig;
  readonly counters = new ShipCounters();
  readonly table: FileTable;
  /** max_open_files, lowered to fit the process's descriptor limit. */
  readonly maxOpenFiles: number;
  readonly senders: Sender[] = [];
  readonly #log: Context;
  readonly #host: string;
  readonly #now: () => number;
  readonly #retry: Batch[] = [];
  /** Batches read ahead, waiting for their files' older batches. */
  readonly #prepared: Batch[] = [];
  readonly #idle = new Backoff();
  #store: OffsetStore | undefined;
  #spooler: Spooler | undefined;
  #refresher: Refresher | undefined;
  #watcher: FolderWatcher | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #refreshAgain = false;
  #building: Promise<Batch | undefined> | undefined;
  readonly #waiters = new Set<() => void>();
  #running: Promise<void>[] = [];
  #stopping = false;
  #closing: Promise<void> | undefined;

  constructor(config: ShipConfig, options: ShipperOptions) {
    this.config = config;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.maxOpenFiles = readerLimit(config.maxOpenFiles);
    this.table = new FileTable({
      maxOpenFiles: this.maxOpenFiles,
      maxLineBytes: config.maxLineBytes,
    });
    this.#host = options.host ?? hostname();
  }

  /** Opens the store, finds the files and starts sending. */
  async start(): Promise<void> {
    const store = OffsetStore.open(this.config.statePath);
    this.#store = store;
    this.#spooler = new Spooler(
      this.table,
      { spoolSize: this.config.network.spoolSize, now: this.#now },
      {
        truncated: (file) => this.#refresher!.truncated(file),
        skipped: (file, lines, bytes) => {
          this.counters.linesSkipped += lines;
          this.#log.log({ at: "skip", "file.path": file.path, lines, bytes });
        },
        readFailed: (file, err) => {
          this.#log.log({
            at: "read_error",
            "file.path": file.path,
            error: errorMessage(err),
          });
        },
      },
    );
    this.#refresher = new Refresher({
      config: this.config,
      table: this.table,
      store,
      host: this.#host,
      now: this.#now,
      log: this.#log,
      wake: () => this.#wakeUp(),
      refreshSoon: () => this.#scheduleRefresh(0),
    });
    this.#watcher = new FolderWatcher((path) => this.#changed(path));
    await this.#refresh();
    this.#scheduleRefresh();

    for (const server of this.config.network.servers) {
      const timeoutMs = this.config.network.timeoutMs;
      const client = new LumberjackClient({
        host: server.host,
        port: server.port,
        tls: server.tls,
        version: this.config.network.version,
        compressionLevel: this.config.network.compressionLevel,
        connectTimeoutMs: timeoutMs,
        ackTimeoutMs: timeoutMs,
        writeTimeoutMs: timeoutMs,
      });
      const sender = new Sender(
        client,
        {
          take: () => this.#take(),
          acked: (batch, s) => this.#acked(batch, s),
          failed: (batch, err, s) => this.#failed(batch, err, s),
        },
        this.#now,
      );
      this.senders.push(sender);
    }
    this.#running = this.senders.map((s) => s.start());
    this.#log.log({
      at: "start",
      files: this.table.size,
      servers: this.senders.length,
      max_open_files: this.maxOpenFiles,
    });
  }

  // Batches read ahead at most: READ_AHEAD per sender, so one is ready
  // when an ack comes even if the one after took long to build.
  get #readAheadLimit(): number {
    return this.senders.length * READ_AHEAD;
  }

  /** Statistics for the HTTP endpoint; see stats.ts. */
  get retryQueue(): number {
    return this.#retry.length;
  }

  /**
   * Stops reading, waits for the batches in flight (at most the network
   * timeout, then they are dropped unacked and re-sent after a restart),
   * saves offsets and closes. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Stops at once; whatever was not acked is sent again next time. */
  destroy(): void {
    this.#stop();
    for (const sender of this.senders) sender.client.destroy();
    void this.table.closeAll().catch(() => {});
    this.#store?.close();
  }

  async #close(): Promise<void> {
    this.#stop();
    const graceMs = this.config.network.timeoutMs + 1000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), graceMs);
    });
    const drained = Promise.all(this.#running).then(() => false);
    const late = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    if (late) {
      this.#log.log({ at: "close", in_flight: "abandoned" });
      // A server sending only keepalives would hold client.close() forever.
      for (const sender of this.senders) sender.client.destroy();
    }
    await this.#refreshing;
    await Promise.all(this.senders.map((s) => s.client.close()));
    for (const sender of this.senders) sender.client.destroy();
    await this.table.closeAll();
    this.#store?.close();
    this.#log.log({ at: "closed" });
  }

  #stop(): void {
    this.#stopping = true;
    clearTimeout(this.#refreshTimer);
    this.#watcher?.close();
    for (const sender of this.senders) sender.stopWaiting();
    this.#wakeUp();
  }

  /**
   * A sender's next batch: a failed one first, then the oldest one read
   * ahead, else a new one, always one whose files have no older batch
   * unacked. Undefined once the shipper stops.
   */
  async #take(): Promise<Batch | undefined> {
    while (!this.#stopping) {
      const batch = takeSendable(this.#retry) ?? takeSendable(this.#prepared);
      if (batch !== undefined && batch.lines === 0) {
        this.#save(batch); // only skipped lines: nothing to send
        continue;
      }
      if (batch !== undefined) {
        this.counters.linesSent += batch.lines;
        this.#readAhead();
        return batch;
      }
      if (this.#prepared.length < this.#readAheadLimit) {
        const built = await this.#build();
        if (built !== undefined) continue;
        await this.#sleep(this.#idle.next(), true);
      } else {
        // Read ahead already; wait for the ack that lets it go.
        await this.#sleep(this.config.network.timeoutMs, false);
      }
    }
    return undefined;
  }

  // Builds the next batch while the last one is on its way.
  #readAhead(): void {
    if (this.#stopping || this.#prepared.length >= this.#readAheadLimit) {
      return;
    }
    void this.#build().then((batch) => {
      if (batch !== undefined) this.#wakeUp();
    });
  }

  /** Builds one batch into the read-ahead list (one build at a time). */
  #build(): Promise<Batch | undefined> {
    this.#building ??= this.#spooler!.build()
      .then((batch) => {
        if (batch === undefined) return undefined;
        this.#idle.reset();
        this.counters.linesRead += batch.lines;
        this.counters.bytesRead += batch.bytes;
        const { version, compressionLevel } = this.config.network;
        if (version === 2 && batch.lines > 0) {
          // v2 numbers every batch from 1: encode now, send when its turn comes.
          batch.prepared = new PreparedBatch(batch.events, {
            version,
            compressionLevel,
            firstSeq: 1,
          });
        }
        this.#prepared.push(batch);
        return batch;
      })
      .finally(() => {
        this.#building = undefined;
      });
    return this.#building;
  }

  #acked(batch: Batch, sender: Sender): void {
    this.counters.linesAcked += batch.lines;
    this.counters.bytesAcked += batch.bytes;
    this.counters.batchesAcked++;
    this.#save(batch);
    if (batch.attempts > 1) {
      this.#log.log({
        at: "acked",
        server: sender.address,
        lines: batch.lines,
        attempts: batch.attempts,
      });
    }
  }

  #failed(batch: Batch, err: unknown, sender: Sender): void {
    this.counters.linesRetried += batch.lines;
    this.counters.batchesFailed++;
    this.#retry.push(batch);
    this.#log.log({
      at: "send_error",
      server: sender.address,
      lines: batch.lines,
      attempts: batch.attempts,
      error: errorMessage(err),
    });
  }

  /** Saves the offsets a batch claims, then lets its files send again. */
  #save(batch: Batch): void {
    const now = this.#now();
    const entries: OffsetEntry[] = [];
    for (const { file, offset, generation } of batch.claims) {
      if (generation !== file.generation) continue; // read again from 0
      file.ackedOffset = offset;
      file.lastAckMs = now;
      entries.push(entryOf(file, now));
    }
    try {
      this.#store!.commit(entries);
    } catch (err) {
      // The lines are delivered; a restart before the next save re-sends.
      this.#log.log({ at: "save_error", error: errorMessage(err) });
    }
    this.table.unlock(batch.id, batch.claims);
    this.#wakeUp();
  }

  #changed(path: string): void {
    const file = this.table.atPath(path);
    if (file !== undefined) {
      this.table.markDirty(file);
      this.#wakeUp();
    } else {
      this.#scheduleRefresh(0);
    }
  }

  #scheduleRefresh(delayMs = this.config.globRefreshMs): void {
    if (this.#stopping) return;
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = undefined;
      void this.#refresh().finally(() => this.#scheduleRefresh());
    }, delayMs);
  }

  /**
   * One refresh at a time: two at once could both take a new file for
   * unknown and open it twice. A refresh asked for meanwhile runs after.
   */
  #refresh(): Promise<void> {
    if (this.#refreshing !== undefined) {
      this.#refreshAgain = true;
      return this.#refreshing;
    }
    this.#refreshing = (async () => {
      do {
        this.#refreshAgain = false;
        try {
          const dirs = await this.#refresher!.refresh();
          if (!this.#stopping) this.#watcher!.update(dirs);
        } catch (err) {
          this.#log.log({ at: "refresh_error", error: errorMessage(err) });
        }
      } while (this.#refreshAgain && !this.#stopping);
    })().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  /** Waits for a wake-up or `ms`; `poll` then marks open files dirty. */
  #sleep(ms: number, poll: boolean): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        // Nothing announced new lines: look at every open file again.
        if (poll) {
          for (const file of this.table.files()) {
            if (file.reader !== undefined) this.table.markDirty(file);
          }
        }
        done();
      }, ms);
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      this.#waiters.add(done);
    });
  }

  #wakeUp(): void {
    for (const done of [...this.#waiters]) done();
  }
}

/** Removes and returns the first batch that is oldest in all its files. */
function takeSendable(batches: Batch[]): Batch | undefined {
  const at = batches.findIndex((batch) =>
    batch.claims.every(({ file }) => file.pending[0] === batch.id),
  );
  return at < 0 ? undefined : batches.splice(at, 1)[0];
}
