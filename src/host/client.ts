/**
 * A typed client for the host's HTTP API, used by the CLI and the tests.
 * Errors from the host come back as the same error classes the host threw
 * (by their `code`), so callers branch on classes, not text. It reaches
 * the host over TCP with its bearer token, or over its Unix socket.
 */
import { request, type IncomingMessage } from "node:http";

import {
  ConflictError,
  errorMessage,
  LorneError,
  NotFoundError,
  UnauthorizedError,
  UnavailableError,
  ValidationError,
  type ErrorCode,
} from "../errors.js";
import type { JobEvent } from "./events.js";
import { isFinal, validateJobId, type JobRecord, type JobSpec } from "./job.js";
import type { OutputView } from "./output.js";
import { endedEarly, Reconnector, type ReconnectOptions } from "./reconnect.js";

export const DEFAULT_HOST_URL = "http://127.0.0.1:1113";

/** Where a host is and how to prove who we are to it. */
export interface HostEndpoint {
  /** Base URL, e.g. http://127.0.0.1:1113; on a socket only its path counts. */
  url: string;
  /** Bearer token sent on every request; none when absent. */
  token?: string | null;
  /** Connect to this Unix socket instead of the URL's address. */
  socketPath?: string;
  /** Where the token came from, for the message of a 401. */
  tokenSource?: string;
}

// Plain node:http keeps the CLI quick to start. No timeouts are set:
// followed logs and event streams may be quiet for hours, and a stop waits
// out the job's grace period.
type Method = "GET" | "POST" | "PUT" | "DELETE";

export interface HostInfo {
  id: string;
  version: string;
  backend: string;
  backend_status: { ok: boolean; error?: string };
  attributes: Record<string, string>;
  external_ip: string | null;
  started_at: string;
  ports: { range: { min: number; max: number }; used: number };
  jobs: { total: number; starting: number; running: number };
}

export interface LogsOptions {
  stream?: OutputView;
  follow?: boolean;
  /** Start this many bytes into the view. */
  offset?: number;
  signal?: AbortSignal;
  /**
   * With `follow`: go on across lost connections and host restarts (see
   * reconnect.ts), resuming at the byte after the last one yielded, until
   * the job has ended and all its output came.
   */
  reconnect?: ReconnectOptions;
}

/** Response header of `GET /events` naming the log its numbers count in. */
export const EVENT_LOG_HEADER = "lorne-event-log";

/** A message from the host about the event stream itself. */
export interface HostNotice {
  code: "lagging" | "events_lost" | "events_reset";
  message: string;
}

export interface EventsOptions {
  job?: string;
  /** Called with host notices about the stream. */
  onNotice?: (notice: HostNotice) => void;
  /** Resume after this event id. */
  after?: number;
  signal?: AbortSignal;
  /**
   * Follow across lost connections and host restarts (see reconnect.ts),
   * resuming after the last event yielded; without it the stream ends
   * with the connection.
   */
  reconnect?: ReconnectOptions;
}

/** See the module comment. */
export class HostClient {
  readonly baseUrl: string;
  readonly endpoint: HostEndpoint;

  constructor(endpoint: string | HostEndpoint = DEFAULT_HOST_URL) {
    this.endpoint = toEndpoint(endpoint);
    this.baseUrl = this.endpoint.url;
  }

  async host(): Promise<HostInfo> {
    return this.#json("GET", "/host");
  }

  async listJobs(): Promise<JobRecord[]> {
    return this.#json("GET", "/jobs");
  }

  async getJob(id: string): Promise<JobRecord> {
    return this.#json("GET", jobPath(id));
  }

  /** Creates a job; with `spec.id` set, PUTs it under that id. */
  async createJob(spec: JobSpec): Promise<JobRecord> {
    if (spec.id === undefined) return this.#json("POST", "/jobs", spec);
    return this.#json("PUT", jobPath(spec.id), spec);
  }

  /** Stops a job; resolves with its final record. */
  async stopJob(id: string): Promise<JobRecord> {
    return this.#json("DELETE", jobPath(id));
  }

  /**
   * Removes an ended job (record, output files); resolves with the record
   * it had. ConflictError when the job has not ended.
   */
  async removeJob(id: string): Promise<JobRecord> {
    return this.#json("DELETE", `${jobPath(id)}?remove=1`);
  }

  /** Sends a signal (e.g. "SIGHUP") to a running job. */
  async signalJob(id: string, signal: string): Promise<JobRecord> {
    return this.#json("POST", jobPath(id, "/signal"), {
      signal,
    });
  }

  /** A job's output as a stream of byte chunks. */
  async *logs(
    id: string,
    options: LogsOptions = {},
  ): AsyncGenerator<Uint8Array> {
    let offset = options.offset ?? 0;
    const reconnector =
      options.follow && options.reconnect
        ? new Reconnector(options.reconnect, options.signal)
        : null;
    // Set once the job was seen ended: the next stream that ends is the
    // last, as it carried everything up to the output's end.
    let final = false;
    for (;;) {
      try {
        const res = await this.#request(
          "GET",
          logsPath(id, options, offset),
          undefined,
          options.signal,
        );
        reconnector?.back();
        for await (const chunk of this.#body(res, options.signal)) {
          offset += chunk.length;
          yield chunk;
        }
        if (!reconnector || final) return;
        // A followed log ends with the job, or with a host shutting down
        // (output may be left): only the job's record tells them apart.
        final = isFinal((await this.getJob(id)).status);
        if (!final) throw endedEarly(describeEndpoint(this.endpoint));
      } catch (err) {
        if (!reconnector) throw err;
        await reconnector.lost(err);
      }
    }
  }

  /**
   * The host's events, parsed from the SSE stream, until aborted. When the
   * host cuts the stream off because this reader fell behind, it
   * reconnects after the last event seen, so the sequence has no gaps while
   * the host still keeps the events; host notices (`lagging`,
   * `events_lost`, `events_reset`) go to `onNotice`. With `reconnect`, a lost connection
   * or a stream the host ended is resumed the same way.
   */
  async *events(options: EventsOptions = {}): AsyncGenerator<JobEvent> {
    let after = options.after;
    // The event log `after` counts in, once a stream has said: a host
    // whose log started again (a restart with a memory store) then knows
    // to replay all of its log.
    let log: string | undefined;
    const reconnector =
      options.reconnect && new Reconnector(options.reconnect, options.signal);
    for (;;) {
      let lagging = false;
      try {
        const frames = this.#sse(options, after, log, (id) => {
          log = id;
          reconnector?.back();
        });
        for await (const frame of frames) {
          if (frame.id === undefined) {
            const notice = JSON.parse(frame.data) as HostNotice;
            options.onNotice?.(notice);
            if (notice.code === "lagging") lagging = true;
            continue;
          }
          const event = JSON.parse(frame.data) as JobEvent;
          after = event.id;
          yield event;
        }
        if (lagging) continue;
        if (!reconnector) return;
        // A host that shuts down ends the stream cleanly: still a loss.
        throw endedEarly(describeEndpoint(this.endpoint));
      } catch (err) {
        if (!reconnector) throw err;
        await reconnector.lost(err);
      }
    }
  }

  async *#sse(
    options: EventsOptions,
    after: number | undefined,
    log: string | undefined,
    onOpen: (log: string | undefined) => void,
  ): AsyncGenerator<{ id?: string; data: string }> {
    const query = new URLSearchParams();
    if (options.job) query.set("job", options.job);
    if (after !== undefined) query.set("last_event_id", String(after));
    if (after !== undefined && log !== undefined) query.set("log", log);
    const res = await this.#request(
      "GET",
      `/events?${query.toString()}`,
      undefined,
      options.signal,
    );
    const header = res.headers[EVENT_LOG_HEADER];
    onOpen(typeof header === "string" ? header : undefined);
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of this.#body(res, options.signal)) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const lines = buffer.slice(0, end).split("\n");
        buffer = buffer.slice(end + 2);
        const field = (name: string) =>
          lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
        const data = field("data");
        if (data !== undefined) yield { id: field("id"), data };
      }
    }
  }

  // A response body, read to its end; a connection the host dropped (it
  // stopped or was killed) is an UnavailableError that says so, not
  // Node's bare "aborted".
  async *#body(
    res: AsyncIterable<unknown>,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of res) yield chunk as Buffer;
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new UnavailableError(
        `Lost the connection to lorne host at ${this.baseUrl}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }

  async #json<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const res = await this.#request(method, path, body);
    return JSON.parse(await readAll(res)) as T;
  }

  #request(
    method: Method,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<IncomingMessage> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = authHeaders(this.endpoint);
    if (payload !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = Buffer.byteLength(payload);
    }
    return new Promise((resolve, reject) => {
      const req = request(
        this.baseUrl + path,
        { method, signal, headers, socketPath: this.endpoint.socketPath },
        (res) => {
          if ((res.statusCode ?? 500) < 400) return resolve(res);
          toError(res, this.endpoint).then(reject, reject);
        },
      );
      req.once("error", (err) => {
        if (err.name === "AbortError") return reject(err);
        reject(
          new UnavailableError(
            `Cannot reach lorne host at ${describeEndpoint(this.endpoint)}: ${err.message}`,
            { cause: err },
          ),
        );
      });
      req.end(payload);
    });
  }
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function logsPath(id: string, options: LogsOptions, offset: number): string {
  const query = new URLSearchParams();
  if (options.stream) query.set("stream", options.stream);
  if (options.follow) query.set("follow", "1");
  if (offset > 0) query.set("offset", String(offset));
  return `${jobPath(id, "/logs")}?${query.toString()}`;
}

/**
 * The API path of a job. The id is checked first: ids such as "." or ".."
 * would otherwise be folded away by URL rules and reach another route.
 */
export function jobPath(id: string, suffix = ""): string {
  return `/jobs/${encodeURIComponent(validateJobId(id))}${suffix}`;
}

/** An endpoint from a base URL or an endpoint, trailing slashes removed. */
export function toEndpoint(endpoint: string | HostEndpoint): HostEndpoint {
  const given = typeof endpoint === "string" ? { url: endpoint } : endpoint;
  return { ...given, url: given.url.replace(/\/+$/, "") };
}

/** The Authorization header for an endpoint, if it has a token. */
export function authHeaders(endpoint: HostEndpoint): Record<string, string> {
  if (!endpoint.token) return {};
  return { authorization: `Bearer ${endpoint.token}` };
}

/** The endpoint's address for messages: its socket or its URL. */
export function describeEndpoint(endpoint: HostEndpoint): string {
  return endpoint.socketPath !== undefined
    ? `socket ${endpoint.socketPath}`
    : endpoint.url;
}

/**
 * The error a host response stands for, from its JSON `{code, message}`.
 * A 401 also says where the token came from, when the endpoint knows.
 */
export async function toError(
  res: IncomingMessage,
  endpoint?: HostEndpoint,
): Promise<LorneError> {
  let code: ErrorCode = "internal";
  let message = `Host answered HTTP ${res.statusCode}`;
  let field: string | undefined;
  try {
    const body = JSON.parse(await readAll(res)) as {
      code?: ErrorCode;
      message?: string;
      field?: string;
    };
    code = body.code ?? code;
    message = body.message ?? message;
    field = body.field;
  } catch {
    // Not our JSON: keep the status line.
  }
  switch (code) {
    case "not_found":
      return new NotFoundError(message);
    case "conflict":
      return new ConflictError(message);
    case "validation_error":
      return new ValidationError(message, field);
    case "unavailable":
      return new UnavailableError(message);
    case "unauthorized":
      return new UnauthorizedError(
        endpoint?.tokenSource === undefined
          ? message
          : `${message}; token: ${endpoint.tokenSource}`,
      );
    default:
      return new LorneError(code, message);
  }
}
