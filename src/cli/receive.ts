/**
 * `lorne receive`: a Lumberjack v1/v2 receiver in the foreground. Writes
 * every event as one line (JSON or logfmt) to a file or stdout and acks a
 * batch only once its lines are written, and fsynced with --fsync. Logs
 * as logfmt to stderr.
 *
 * NDJSON lines of v2 events are their payloads' bytes as they came (the
 * receiver's raw path checks them but parses nothing): no parse and no
 * re-serialisation on the way, which is what lets one receiver keep up
 * with a shipper. A batch goes out as one Buffer.
 *
 * Statistics (connections open, events and batches acked, bytes read):
 * SIGUSR1 logs an `at=stats` line; with --stats-listen, an HTTP GET of
 * `/stats` on that address answers them as JSON. SIGTERM and SIGINT close
 * the receiver gracefully (batches being written are still acked) and
 * exit 0; a second signal exits 1 at once. SIGHUP reopens the --out file
 * (for logrotate), or closes like SIGTERM when writing to stdout.
 */
import { createServer, type Server } from "node:http";

import { Option, type Command } from "commander";

import type { ServerTlsOptions } from "../lumberjack/tls.js";

import { errorMessage, UnavailableError, ValidationError } from "../errors.js";
import { BufferedLogger, Context, format } from "../log/index.js";
import { pairsToObject } from "../lumberjack/frames.js";
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_MS,
  DEFAULT_MAX_CONNECTIONS,
  LumberjackReceiver,
  type RawEvent,
  type ReceiverSettings,
} from "../lumberjack/receiver.js";
import {
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_WINDOW,
} from "../lumberjack/index.js";
import { readTlsFiles } from "../lumberjack/tls-files.js";
import { MAX_MS, parseCount, parseListen } from "./options.js";
import { openSink } from "./receive-sink.js";
import { exitOnSignals } from "./signals.js";

const DEFAULT_LISTEN = "127.0.0.1:5044";
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;

interface ReceiveFlags {
  listen: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  clientAuth?: "none" | "optional" | "required";
  out: string;
  format: "ndjson" | "logfmt";
  fsync?: boolean;
  statsListen?: string;
  maxConnections?: string;
  maxWindow?: string;
  maxFrameBytes?: string;
  idleTimeoutMs?: string;
  keepaliveMs?: string;
}

export function register(program: Command): void {
  program
    .command("receive")
    .description(
      "receive Lumberjack v1/v2 batches and write their events as lines",
    )
    .option("--listen <addr>", "address ip:port", DEFAULT_LISTEN)
    .option("--tls-cert <file>", "serve TLS with this certificate (PEM)")
    .option("--tls-key <file>", "private key of --tls-cert (PEM)")
    .option("--tls-ca <file>", "CA bundle that signs client certificates")
    .addOption(
      new Option(
        "--client-auth <mode>",
        "client certificates (default: none)",
      ).choices(["none", "optional", "required"]),
    )
    .option("--out <file>", "file to append events to; - for stdout", "-")
    .addOption(
      new Option("--format <format>", "line format")
        .choices(["ndjson", "logfmt"])
        .default("ndjson"),
    )
    .option("--fsync", "fsync the file before each ack")
    .option("--stats-listen <addr>", "serve GET /stats as JSON on ip:port")
    .option(
      "--max-connections <n>",
      `connections at once (default: ${DEFAULT_MAX_CONNECTIONS})`,
    )
    .option(
      "--max-window <n>",
      `largest window in events (default: ${DEFAULT_MAX_WINDOW})`,
    )
    .option(
      "--max-frame-bytes <n>",
      `largest frame (default: ${DEFAULT_MAX_FRAME_BYTES})`,
    )
    .option(
      "--idle-timeout-ms <ms>",
      `close a connection silent this long (default: ${DEFAULT_IDLE_TIMEOUT_MS})`,
    )
    .option(
      "--keepalive-ms <ms>",
      `keepalive ack interval while writing (default: ${DEFAULT_KEEPALIVE_MS})`,
    )
    .action(async (flags: ReceiveFlags) => {
      await runReceive(flags);
    });
}

async function runReceive(flags: ReceiveFlags): Promise<void> {
  const options = resolveFlags(flags);
  // Receiving must not stop while the log output is not being read.
  const logger = new BufferedLogger({ fd: 2, blockMs: 0 });
  const log = new Context({ data: { app: "lorne" }, logger });
  const sink = await openSink(flags.out, flags.fsync === true);
  const receiver = new LumberjackReceiver({
    ...options,
    log,
    onRawBatch: (events) =>
      sink.write(
        flags.format === "logfmt" ? renderLogfmt(events) : renderNdjson(events),
      ),
  });
  let stats: Server | undefined;
  try {
    await receiver.listen();
    if (flags.statsListen !== undefined) {
      stats = await serveStats(flags.statsListen, receiver, log);
    }
  } catch (err) {
    receiver.destroy();
    stats?.close();
    await sink.close();
    logger.flushSync();
    throw err;
  }

  process.on("SIGUSR1", () => log.log({ at: "stats", ...receiver.stats() }));
  const { reopen } = sink;
  exitOnSignals({
    log,
    logger,
    close: async () => {
      stats?.close();
      await receiver.close();
      await sink.close();
      log.log({ at: "exit", status: "ok", ...receiver.stats() });
    },
    // With stdout there is nothing to reopen: SIGHUP closes.
    reopen:
      reopen &&
      (async () => {
        const file = { "file.path": flags.out };
        try {
          await reopen();
          log.log({ at: "reopen", ...file });
        } catch (err) {
          log.log({ at: "reopen_error", ...file, error: errorMessage(err) });
        }
      }),
  });
}

function resolveFlags(flags: ReceiveFlags): Omit<ReceiverSettings, "log"> {
  const { host, port } = parseListen(flags.listen);
  if (flags.statsListen !== undefined) {
    parseListen(flags.statsListen, "--stats-listen");
  }
  if (flags.fsync === true && flags.out === "-") {
    throw new ValidationError(
      "Invalid --fsync: it needs --out FILE, stdout cannot be fsynced",
      "fsync",
    );
  }
  const count = (text: string | undefined, flag: string, min: number) =>
    text === undefined ? undefined : parseCount(text, flag, MAX_U32, min);
  return {
    host,
    port,
    tls: resolveTls(flags),
    maxConnections: count(flags.maxConnections, "--max-connections", 1),
    maxWindow: count(flags.maxWindow, "--max-window", 1),
    maxFrameBytes: count(flags.maxFrameBytes, "--max-frame-bytes", 6),
    idleTimeoutMs:
      flags.idleTimeoutMs === undefined
        ? undefined
        : parseCount(flags.idleTimeoutMs, "--idle-timeout-ms", MAX_MS, 1),
    keepaliveMs:
      flags.keepaliveMs === undefined
        ? undefined
        : parseCount(flags.keepaliveMs, "--keepalive-ms", MAX_MS, 1),
  };
}

const MAX_U32 = 0xffff_ffff;
const TLS_FLAGS = {
  ca: "--tls-ca",
  certificate: "--tls-cert",
  key: "--tls-key",
};

function resolveTls(flags: ReceiveFlags): ServerTlsOptions | undefined {
  if (flags.tlsCert === undefined || flags.tlsKey === undefined) {
    const given = ["--tls-cert", "--tls-key", "--tls-ca", "--client-auth"]
      .filter((flag) => flagValue(flags, flag) !== undefined)
      .join(", ");
    if (given === "") return undefined;
    throw new ValidationError(
      `Invalid ${given}: TLS needs both --tls-cert and --tls-key`,
      flags.tlsCert === undefined ? "tls-cert" : "tls-key",
    );
  }
  const clientAuth = flags.clientAuth ?? "none";
  if (clientAuth !== "none" && flags.tlsCa === undefined) {
    throw new ValidationError(
      `Invalid --client-auth ${clientAuth}: it needs --tls-ca to check ` +
        "client certificates against",
      "tls-ca",
    );
  }
  // The checks `lorne ship` makes of its config's TLS files.
  const { cert, key, ca } = readTlsFiles(
    { ca: flags.tlsCa, certificate: flags.tlsCert, key: flags.tlsKey },
    TLS_FLAGS,
  );
  return { cert: cert!, key: key!, ca, clientAuth };
}

function flagValue(flags: ReceiveFlags, flag: string): unknown {
  const key = flag
    .slice(2)
    .replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
  return (flags as unknown as Record<string, unknown>)[key];
}

/**
 * One line per event: a v2 payload's bytes as they are, a v1 event as the
 * JSON of its pairs (strings, invalid UTF-8 as U+FFFD).
 */
function renderNdjson(events: RawEvent[]): Buffer {
  const lines: Uint8Array[] = [];
  let size = 0;
  for (const event of events) {
    const line =
      event.type === "json"
        ? event.payload
        : Buffer.from(JSON.stringify(pairsToObject(event.pairs)));
    lines.push(line);
    size += line.length + 1;
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const line of lines) {
    out.set(line, at);
    at += line.length;
    out[at++] = SPACE;
  }
  // A checked payload holds CR or LF only as JSON whitespace (inside
  // strings they must be escaped): as spaces, the event stays one line
  // and means the same. One scan of the batch when there are none.
  blank(out, LF);
  blank(out, CR);
  at = 0;
  for (const line of lines) {
    at += line.length;
    out[at++] = LF;
  }
  return out;
}

function blank(bytes: Buffer, byte: number): void {
  for (let i = bytes.indexOf(byte); i !== -1; i = bytes.indexOf(byte, i + 1)) {
    bytes[i] = SPACE;
  }
}

/** One logfmt line per event, through the event's object. */
function renderLogfmt(events: RawEvent[]): Buffer {
  let text = "";
  for (const event of events) {
    const object =
      event.type === "json"
        ? parseChecked(event.payload)
        : pairsToObject(event.pairs);
    text += format(object) + "\n";
  }
  return Buffer.from(text);
}

// The receiver checked the payload: it parses, to an object.
function parseChecked(payload: Buffer): Record<string, unknown> {
  return JSON.parse(payload.toString("utf8")) as Record<string, unknown>;
}

async function serveStats(
  listen: string,
  receiver: LumberjackReceiver,
  log: Context,
): Promise<Server> {
  const { host, port } = parseListen(listen, "--stats-listen");
  const server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    const found = path === "/stats" && req.method === "GET";
    res.writeHead(found ? 200 : 404, { "content-type": "application/json" });
    res.end(
      JSON.stringify(
        found
          ? receiver.stats()
          : { code: "not_found", message: "Not found: try GET /stats" },
      ) + "\n",
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) =>
      reject(
        new UnavailableError(
          `Cannot listen on --stats-listen ${listen}: ${errorMessage(err)}`,
          { cause: err },
        ),
      ),
    );
    server.listen({ host, port }, () => resolve());
  });
  const address = server.address();
  const addr =
    typeof address === "object" && address !== null
      ? `${address.address}:${address.port}`
      : listen;
  log.log({ fn: "stats", at: "listening", addr });
  return server;
}
