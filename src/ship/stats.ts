/**
 * The shipper's statistics over HTTP (`statistics.addr`):
 *
 * - `GET /` (also `/stats`): JSON in butteredscones' shape, so dashboards
 *   built on it keep working: clients (per server: status, lines_sent,
 *   last_send_time, last_chunk_size), file_reader_pool (available and
 *   locked files) and files (per path: size, position read, last_read,
 *   snapshot_position acked and saved, last_snapshot).
 * - `GET /metrics`: Prometheus text format (prom-client, on a registry of
 *   its own): lines read, sent, acked, retried and skipped, bytes read and
 *   acked, batches, open and known files, the retry queue, and each file's
 *   lag in bytes (size minus the acked offset).
 */
import { createServer, type Server, type ServerResponse } from "node:http";

import type { Context } from "../log/index.js";
import type { ShipCounters } from "./counters.js";
import type { Shipper } from "./shipper.js";

import { Counter, Gauge, Registry } from "prom-client";

import { errorMessage, UnavailableError } from "../errors.js";
import { isBusy } from "./tracked.js";

/** The JSON answer of `GET /`. */
export interface StatisticsJson {
  clients: Record<
    string,
    {
      status: string;
      lines_sent: number;
      last_send_time: string | null;
      last_chunk_size: number;
    }
  >;
  file_reader_pool: { available: number; locked: number };
  files: Record<
    string,
    {
      size: number;
      position: number;
      last_read: string | null;
      snapshot_position: number;
      last_snapshot: string | null;
    }
  >;
}

/** The statistics of `shipper` as butteredscones showed them. */
export function statisticsJson(shipper: Shipper): StatisticsJson {
  const clients: StatisticsJson["clients"] = {};
  for (const s of shipper.senders) {
    clients[s.address] = {
      status: s.status,
      lines_sent: s.linesSent,
      last_send_time: iso(s.lastSendMs),
      last_chunk_size: s.lastChunkSize,
    };
  }
  const files: StatisticsJson["files"] = {};
  let locked = 0;
  for (const f of shipper.table.files()) {
    if (isBusy(f)) locked++;
    // A file renamed out of the globs keeps the path it was last seen at,
    // which may lead to its successor now: the path shows the successor.
    if (shipper.table.atPath(f.path) !== f && f.path in files) continue;
    files[f.path] = {
      size: f.size,
      position: f.readOffset,
      last_read: iso(f.lastReadMs),
      snapshot_position: f.ackedOffset,
      last_snapshot: iso(f.lastAckMs),
    };
  }
  return {
    clients,
    file_reader_pool: { available: shipper.table.size - locked, locked },
    files,
  };
}

/** A Prometheus registry whose metrics read `shipper` when scraped. */
export function metricsRegistry(shipper: Shipper): Registry {
  const registry = new Registry();
  const c = shipper.counters;
  const total = (
    name: string,
    help: string,
    read: (c: ShipCounters) => number,
  ) => {
    let reported = 0;
    new Counter({
      name: `lorne_ship_${name}_total`,
      help,
      registers: [registry],
      collect() {
        const now = read(c);
        this.inc(now - reported);
        reported = now;
      },
    });
  };
  total("lines_read", "Lines read from files into batches", (x) => x.linesRead);
  total(
    "lines_sent",
    "Lines handed to a server, retries included",
    (x) => x.linesSent,
  );
  total("lines_acked", "Lines a server acknowledged", (x) => x.linesAcked);
  total(
    "lines_retried",
    "Lines of failed batches queued again",
    (x) => x.linesRetried,
  );
  total("lines_skipped", "Over-long lines skipped", (x) => x.linesSkipped);
  total("bytes_read", "Bytes of lines read", (x) => x.bytesRead);
  total("bytes_acked", "Bytes of lines acknowledged", (x) => x.bytesAcked);
  total("batches_acked", "Batches acknowledged", (x) => x.batchesAcked);
  total("batches_failed", "Batch sends that failed", (x) => x.batchesFailed);

  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name: `lorne_ship_${name}`,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge("files", "Files being tracked", () => shipper.table.size);
  gauge(
    "files_open",
    "Files with an open reader",
    () => shipper.table.openReaders,
  );
  gauge(
    "retry_queue_batches",
    "Failed batches waiting",
    () => shipper.retryQueue,
  );
  new Gauge({
    name: "lorne_ship_file_lag_bytes",
    help: "Bytes of a file not yet acknowledged (size minus acked offset)",
    labelNames: ["path"],
    registers: [registry],
    collect() {
      // Files that share a path (see statisticsJson) add up.
      const lag = new Map<string, number>();
      for (const f of shipper.table.files()) {
        const bytes = Math.max(0, f.size - f.ackedOffset);
        lag.set(f.path, (lag.get(f.path) ?? 0) + bytes);
      }
      this.reset();
      for (const [path, bytes] of lag) this.set({ path }, bytes);
    },
  });
  return registry;
}

/** Serves the statistics on `addr` until the server is closed. */
export async function serveStatistics(
  shipper: Shipper,
  addr: { host: string; port: number },
  log: Context,
): Promise<Server> {
  const registry = metricsRegistry(shipper);
  const server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      // not_found is 404 everywhere in lorne, for a method as for a path.
      const method = req.method ?? "";
      const only = `No route for ${method} ${path}: only GET and HEAD`;
      reply(res, 404, "application/json", notFound(only));
    } else if (path === "/" || path === "/stats") {
      reply(
        res,
        200,
        "application/json",
        JSON.stringify(statisticsJson(shipper)) + "\n",
      );
    } else if (path === "/metrics") {
      void registry.metrics().then(
        (text) => reply(res, 200, registry.contentType, text),
        (err: unknown) =>
          reply(res, 500, "text/plain", `${errorMessage(err)}\n`),
      );
    } else {
      reply(
        res,
        404,
        "application/json",
        notFound("Not found: try GET / or GET /metrics"),
      );
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) =>
      reject(
        new UnavailableError(
          `Cannot listen on statistics.addr ${addr.host}:${addr.port}: ${errorMessage(err)}`,
          { cause: err },
        ),
      ),
    );
    server.listen({ host: addr.host, port: addr.port }, () => resolve());
  });
  const bound = server.address();
  log.log({
    at: "statistics",
    addr:
      typeof bound === "object" && bound !== null
        ? `${bound.address}:${bound.port}`
        : "",
  });
  return server;
}

function reply(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
): void {
  res.writeHead(status, { "content-type": type });
  res.end(body);
}

function notFound(message: string): string {
  return JSON.stringify({ code: "not_found", message }) + "\n";
}

function iso(ms: number | undefined): string | null {
  return ms === undefined || ms === 0 ? null : new Date(ms).toISOString();
}
