/**
 * GET /jobs/:id/attach — upgrades to a WebSocket carrying the attach
 * protocol (host/attach/protocol.ts, docs/attach.md). Query flags:
 * `stdin`, `stdout`, `stderr` (default 1), `logs` (replay past output),
 * `stream` (live output, default 1), `new` (only a job created after
 * this attach), `height` and `width` (TTY size),
 * `wait_ms` (how long to wait for a job that does not exist yet, default
 * 30000). Bad flags are answered with a plain JSON 400 before upgrading.
 */
import { STATUS_CODES, type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";

import { WebSocketServer } from "ws";

import { ConflictError, ValidationError } from "../../errors.js";
import type { Context } from "../../log/index.js";
import {
  DEFAULT_ATTACH_WAIT_MS,
  runAttachSession,
  type AttachFlags,
} from "../attach/session.js";
import type { Host } from "../host.js";
import { validateJobId } from "../job.js";
import { errorResponse } from "./errors.js";
import { checkOrigin, requestUrl } from "./guard.js";
import { parseFlag } from "./logs.js";

const PATH = /^\/jobs\/([^/]+)\/attach$/;
/** Largest client frame (stdin chunk) accepted. */
const MAX_FRAME_BYTES = 1024 * 1024;
const MAX_WAIT_MS = 10 * 60_000;

/** Handles HTTP upgrades for attach; other upgrade paths are refused. */
export class AttachEndpoint {
  readonly #wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_FRAME_BYTES,
    perMessageDeflate: false,
  });
  readonly #host: Host;
  readonly #log: Context;

  constructor(host: Host, log: Context) {
    this.#host = host;
    this.#log = log;
  }

  /** The `upgrade` listener for the API's HTTP server. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => undefined);
    let id: string;
    let flags: AttachFlags;
    try {
      const url = requestUrl(req);
      checkOrigin(req);
      const match = PATH.exec(url.pathname);
      if (!match || req.method !== "GET") {
        throw new ValidationError(
          `No WebSocket endpoint at ${url.pathname}`,
          "path",
        );
      }
      id = validateJobId(decodePathPart(match[1] as string));
      flags = parseAttachFlags(url.searchParams);
      // Said before the upgrade when it can be, so the client gets a 409
      // (the session checks again, for a job made in between).
      if (flags.newJob && this.#host.has(id) && !this.#host.replaceable(id)) {
        throw new ConflictError(`Cannot create job "${id}": it exists already`);
      }
    } catch (err) {
      refuseUpgrade(socket, err);
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      void runAttachSession(this.#host, ws, id, flags, this.#log);
    });
  }

  /** Open attach sessions. */
  get sessions(): number {
    return this.#wss.clients.size;
  }

  /** Closes every attach connection. */
  close(): void {
    for (const ws of this.#wss.clients) ws.terminate();
    this.#wss.close();
  }
}

/** Parses the attach query flags; ValidationError names a bad one. */
export function parseAttachFlags(query: URLSearchParams): AttachFlags {
  const flag = (name: string, fallback: boolean) =>
    query.has(name) ? parseFlag(query.get(name), name) : fallback;
  const flags: AttachFlags = {
    stdin: flag("stdin", false),
    stdout: flag("stdout", true),
    stderr: flag("stderr", true),
    logs: flag("logs", false),
    stream: flag("stream", true),
    newJob: flag("new", false),
    waitMs: number(query, "wait_ms", 0, MAX_WAIT_MS) ?? DEFAULT_ATTACH_WAIT_MS,
  };
  const rows = number(query, "height", 1, 65535);
  const cols = number(query, "width", 1, 65535);
  if ((rows === undefined) !== (cols === undefined)) {
    throw new ValidationError(
      "Invalid size: give both height and width",
      "height",
    );
  }
  if (rows !== undefined && cols !== undefined) {
    flags.rows = rows;
    flags.cols = cols;
  }
  return flags;
}

function number(
  query: URLSearchParams,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const text = query.get(name);
  if (text === null) return undefined;
  const value = Number(text);
  if (!/^\d{1,10}$/.test(text) || value < min || value > max) {
    throw new ValidationError(
      `Invalid ${name} ${JSON.stringify(text)}: expected a whole number from ${min} to ${max}`,
      name,
    );
  }
  return value;
}

function decodePathPart(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new ValidationError(
      `Invalid request target: bad percent-encoding in ${JSON.stringify(text)}`,
      "path",
    );
  }
}

/**
 * Answers a request on a raw socket (an upgrade, or one Node's parser
 * refused) with the JSON error for `err`, and closes.
 */
export function refuseUpgrade(
  socket: Duplex,
  err: unknown,
  withBody = true,
): void {
  const { status, headers, body } = errorResponse(err);
  const text = JSON.stringify(body);
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${String(value)}\r\n`)
    .join("");
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\n` +
      extra +
      "content-type: application/json; charset=utf-8\r\n" +
      `content-length: ${withBody ? Buffer.byteLength(text) : 0}\r\n` +
      "connection: close\r\n\r\n" +
      (withBody ? text : ""),
  );
}
