/**
 * The host's HTTP API. JSON everywhere; errors are `{ code, message }`
 * with the status from api/errors.ts.
 *
 *   GET    /host                  the host: id, attributes, backend, counts
 *   GET    /jobs                  every job record
 *   POST   /jobs                  create a job (id generated unless given)
 *   PUT    /jobs/:id              create a job with this id (409 if taken)
 *   GET    /jobs/:id              one job
 *   DELETE /jobs/:id              stop a job; answers once it has ended
 *   POST   /jobs/:id/signal       send a signal: {"signal": "SIGHUP"}
 *   GET    /jobs/:id/logs         output (?stream=stdout|stderr, ?follow=1)
 *   GET    /jobs/:id/attach       WebSocket attach (see api/attach.ts)
 *   GET    /events                server-sent events (?job=ID, Last-Event-ID)
 */
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";

import { ValidationError } from "../../errors.js";
import type { Context } from "../../log/index.js";
import type { Host } from "../host.js";
import { parseSignal, validateJobId, validateJobSpec } from "../job.js";
import { AttachEndpoint } from "./attach.js";
import { readJson } from "./body.js";
import { checkOrigin, requestUrl } from "./guard.js";
import { sendError, sendJson } from "./errors.js";
import { getEvents } from "./events.js";
import { getLogs } from "./logs.js";
import { Router } from "./router.js";

/** Routes whose responses stay open; they are ended when the API closes. */
const STREAMING_ROUTES = new Set(["/events", "/jobs/:id/logs"]);

/** How long open connections get to finish when the server closes. */
const CLOSE_GRACE_MS = 1_000;

export interface ApiServerOptions {
  host: Host;
  log: Context;
  version: string;
}

/** See the module comment. */
export class ApiServer {
  readonly #server: Server;
  readonly #router: Router;
  readonly #attach: AttachEndpoint;
  /** Responses that stay open (followed logs, events), ended on close. */
  readonly #streams = new Set<ServerResponse>();
  readonly #log: Context;
  #closed: Promise<void> | null = null;

  constructor(options: ApiServerOptions) {
    this.#log = options.log.child({ fn: "api" });
    this.#router = routes(options.host, options.version);
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#attach = new AttachEndpoint(options.host, this.#log);
    this.#server.on("upgrade", (req, socket, head) =>
      this.#attach.upgrade(req, socket, head),
    );
    // Time limits on receiving requests (not on answering them: a DELETE
    // waits out a grace period, a followed log stays open for hours).
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
    this.#server.keepAliveTimeout = 5_000;
  }

  /** Listens on host:port (port 0 picks a free one); resolves the address. */
  listen(port: number, hostname: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, hostname, () => {
        this.#server.off("error", reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting, ends open streams and connections. Idempotent. */
  /**
   * Stops accepting, ends open streams (followed logs, events) cleanly,
   * gives connections a moment to finish, then closes the rest. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= new Promise((resolve) => {
      this.#attach.close();
      for (const res of this.#streams) res.end();
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
      setTimeout(
        () => this.#server.closeAllConnections(),
        CLOSE_GRACE_MS,
      ).unref();
    });
    return this.#closed;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    let path = "(invalid)";
    try {
      const url = requestUrl(req);
      path = url.pathname;
      checkOrigin(req);
      const { handler, params, pattern } = this.#router.match(
        req.method ?? "GET",
        url.pathname,
      );
      if (STREAMING_ROUTES.has(pattern)) {
        this.#streams.add(res);
        res.once("close", () => this.#streams.delete(res));
      }
      await handler({ req, res, params, query: url.searchParams });
    } catch (err) {
      if (!(err instanceof ValidationError) && !isExpected(err)) {
        this.#log.report(err, { at: "request", path });
      }
      sendError(res, err);
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      this.#log.log({
        at: "request",
        method: req.method,
        path,
        status: res.statusCode,
        elapsed_ms: Math.round(ms * 1000) / 1000,
      });
    }
  }
}

function routes(host: Host, version: string): Router {
  const create = async (body: unknown, id?: string) => {
    const spec = validateJobSpec(body);
    if (id !== undefined) {
      validateJobId(id);
      if (spec.id !== undefined && spec.id !== id) {
        throw new ValidationError(
          `Invalid id: body id "${spec.id}" differs from path id "${id}"`,
          "id",
        );
      }
      spec.id = id;
    }
    return host.create(spec);
  };

  return new Router()
    .on("GET", "/host", ({ res }) =>
      sendJson(res, 200, describeHost(host, version)),
    )
    .on("GET", "/jobs", ({ res }) => sendJson(res, 200, host.list()))
    .on("POST", "/jobs", async ({ req, res }) => {
      sendJson(res, 201, await create(await readJson(req)));
    })
    .on("PUT", "/jobs/:id", async ({ req, res, params }) => {
      sendJson(res, 201, await create(await readJson(req), params.id));
    })
    .on("GET", "/jobs/:id", ({ res, params }) => {
      sendJson(res, 200, host.get(params.id as string));
    })
    .on("DELETE", "/jobs/:id", async ({ res, params }) => {
      sendJson(res, 200, await host.stop(params.id as string));
    })
    .on("POST", "/jobs/:id/signal", async ({ req, res, params }) => {
      const signal = parseSignal(await readJson(req));
      sendJson(res, 200, host.signal(params.id as string, signal));
    })
    .on("GET", "/jobs/:id/logs", (ctx) => getLogs(host, ctx))
    .on("GET", "/jobs/:id/attach", () => {
      throw new ValidationError(
        "Attach needs a WebSocket upgrade (Upgrade: websocket)",
        "upgrade",
      );
    })
    .on("GET", "/events", (ctx) => getEvents(host, ctx));
}

function describeHost(host: Host, version: string) {
  const jobs = host.list();
  const count = (status: string) =>
    jobs.filter((j) => j.status === status).length;
  return {
    id: host.id,
    version,
    backend: host.backendName,
    backend_status: host.backendStatus,
    attributes: host.attributes,
    external_ip: host.externalIp ?? null,
    started_at: host.startedAt,
    ports: { range: host.ports.range, used: host.ports.used },
    jobs: {
      total: jobs.length,
      starting: count("starting"),
      running: count("running"),
    },
  };
}

// Client mistakes (4xx) are answered, not reported as faults.
function isExpected(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return (
    code === "not_found" ||
    code === "conflict" ||
    code === "forbidden" ||
    code === "unavailable"
  );
}
