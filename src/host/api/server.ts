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
 *   DELETE /jobs/:id?remove=1     remove an ended job (409 if not ended)
 *   POST   /jobs/:id/signal       send a signal: {"signal": "SIGHUP"}
 *   GET    /jobs/:id/logs         output (?stream=stdout|stderr, ?follow=1)
 *   GET    /jobs/:id/attach       WebSocket attach (see api/attach.ts)
 *   GET    /events                server-sent events (?job=ID, Last-Event-ID)
 *   GET    /metrics               Prometheus metrics (host/metrics.ts)
 *
 * On TCP every request, upgrades included, must carry the host's token
 * (`Authorization: Bearer ...`); a missing or wrong one is refused with
 * 401 before routing, so it touches nothing and learns nothing. The Unix
 * socket listener is guarded by its file mode instead and needs no token.
 * Job starts in progress through the API are bounded (api/starts.ts).
 */
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";

import {
  errorMessage,
  ProtocolError,
  UnauthorizedError,
  ValidationError,
} from "../../errors.js";
import type { Context } from "../../log/index.js";
import type { Host } from "../host.js";
import { parseSignal, validateJobId, validateJobSpec } from "../job.js";
import { HostMetrics } from "../metrics.js";
import { TokenCheck } from "../token.js";
import { AttachEndpoint, refuseUpgrade } from "./attach.js";
import { readJson } from "./body.js";
import { checkOrigin, requestUrl } from "./guard.js";
import { sendError, sendJson } from "./errors.js";
import { getEvents } from "./events.js";
import { getLogs, parseFlag } from "./logs.js";
import { Router } from "./router.js";
import { DEFAULT_MAX_STARTS_IN_FLIGHT, StartLimit } from "./starts.js";
import { listenSocket } from "./unix.js";

/** Routes whose responses stay open; they are ended when the API closes. */
const STREAMING_ROUTES = new Set(["/events", "/jobs/:id/logs"]);

/** How long open connections get to finish when the server closes. */
const CLOSE_GRACE_MS = 1_000;

// A request line: a method token, a target, the version.
const REQUEST_LINE = /([!#$%&'*+.^_`|~0-9A-Za-z-]+) \S+ HTTP\/1\.[01]\r?\n/g;

export interface ApiServerOptions {
  host: Host;
  log: Context;
  version: string;
  /**
   * The token TCP requests must carry; null serves TCP without one (the
   * daemon allows that on loopback only).
   */
  token: string | null;
  /** Job starts in progress through the API before 429; default 32. */
  maxStartsInFlight?: number;
}

/** See the module comment. */
export class ApiServer {
  /** One HTTP server per listener (TCP, Unix socket). */
  readonly #servers: Server[] = [];
  readonly #router: Router;
  readonly #attach: AttachEndpoint;
  readonly #metrics: HostMetrics;
  readonly #tokenCheck: TokenCheck | null;
  /** Responses that stay open (followed logs, events), ended on close. */
  readonly #streams = new Set<ServerResponse>();
  readonly #eventStreams = new Set<ServerResponse>();
  readonly #log: Context;
  #closed: Promise<void> | null = null;

  constructor(options: ApiServerOptions) {
    this.#log = options.log.child({ fn: "api" });
    this.#tokenCheck =
      options.token === null ? null : new TokenCheck(options.token);
    this.#attach = new AttachEndpoint(options.host, this.#log);
    this.#metrics = new HostMetrics({
      host: options.host,
      attachSessions: () => this.#attach.sessions,
      eventSubscribers: () => this.#eventStreams.size,
    });
    this.#router = routes({
      host: options.host,
      version: options.version,
      metrics: this.#metrics,
      starts: new StartLimit(
        options.maxStartsInFlight ?? DEFAULT_MAX_STARTS_IN_FLIGHT,
      ),
    });
  }

  /**
   * Listens on TCP host:port (port 0 picks a free one), requiring the
   * token when there is one; resolves the address.
   */
  listen(port: number, hostname: string): Promise<AddressInfo> {
    const server = this.#newServer(this.#tokenCheck !== null);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, hostname, () => {
        server.off("error", reject);
        resolve(server.address() as AddressInfo);
      });
    });
  }

  /**
   * Listens on a Unix socket that only this user may connect to (mode
   * 0600); requests there need no token. See api/unix.ts.
   */
  listenSocket(path: string): Promise<void> {
    return listenSocket(this.#newServer(false), path);
  }

  /**
   * Stops accepting, ends open streams (followed logs, events) cleanly,
   * gives connections a moment to finish, then closes the rest. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#attach.close();
      this.#metrics.close();
      for (const res of this.#streams) res.end();
      await Promise.all(this.#servers.map((server) => closeServer(server)));
    })();
    return this.#closed;
  }

  #newServer(auth: boolean): Server {
    // The last request's method on each connection: bytes refused after
    // it (a body it sent that was not read, a bad next request) are
    // answered as it would be, without a body if it was a HEAD.
    const methods = new WeakMap<Duplex, string>();
    const server = createServer((req, res) => {
      if (req.method) methods.set(req.socket, req.method);
      void this.#handle(req, res, auth);
    });
    server.on("upgrade", (req, socket, head) =>
      this.#upgrade(req, socket, head, auth),
    );
    // Node hands CONNECT over as a raw socket; without this it would close
    // it with no answer. No route takes CONNECT: 405 (or 404), as routing
    // says for any other method.
    server.on("connect", (req: IncomingMessage, socket: Duplex) => {
      socket.on("error", () => undefined);
      try {
        if (auth) this.#authorize(req);
        this.#router.match("CONNECT", (req.url ?? "").split("?")[0] ?? "");
      } catch (err) {
        refuseUpgrade(socket, err);
        return;
      }
      socket.destroy(); // not reached: no route takes CONNECT
    });
    // Requests Node's parser refuses (an unknown method, a malformed
    // header) still get a JSON error, not a bare 400.
    server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
      // As Node's own handler does: a response already under way on this
      // socket (an internal field, not typed) must not get a second one.
      const pending = (socket as { _httpMessage?: { headersSent?: boolean } })
        ._httpMessage;
      if (
        !socket.writable ||
        err.code === "ECONNRESET" ||
        pending?.headersSent === true
      ) {
        socket.destroy();
        return;
      }
      const reason = err.code ?? "malformed request";
      // A HEAD answer has no body; the client would take one for garbage.
      // Whose answer is it? The refused bytes may start with what is left
      // of an earlier request's body, so the last request line in them
      // names the method; without one, the connection's last request.
      const raw = (err as { rawPacket?: Buffer }).rawPacket;
      const lines = [...(raw?.toString("latin1") ?? "").matchAll(REQUEST_LINE)];
      const method = lines.at(-1)?.[1] ?? methods.get(socket);
      refuseUpgrade(
        socket,
        new ProtocolError(`Invalid HTTP request: ${reason}`, { cause: err }),
        method !== "HEAD",
      );
    });
    // Time limits on receiving requests (not on answering them: a DELETE
    // waits out a grace period, a followed log stays open for hours).
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.keepAliveTimeout = 5_000;
    this.#servers.push(server);
    return server;
  }

  #upgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    auth: boolean,
  ): void {
    try {
      if (auth) this.#authorize(req);
    } catch (err) {
      socket.on("error", () => undefined);
      refuseUpgrade(socket, err);
      return;
    }
    this.#attach.upgrade(req, socket, head);
  }

  // The token is checked before anything else looks at the request.
  #authorize(req: IncomingMessage): void {
    if (this.#tokenCheck?.matches(req.headers.authorization) !== false) {
      return;
    }
    throw new UnauthorizedError(
      req.headers.authorization === undefined
        ? "Missing token: send Authorization: Bearer <token> " +
            "(the token is in the host's state dir, file token)"
        : "Invalid token: Authorization does not carry this host's token",
    );
  }

  async #handle(
    req: IncomingMessage,
    res: ServerResponse,
    auth: boolean,
  ): Promise<void> {
    const started = process.hrtime.bigint();
    let path = (req.url ?? "").split("?")[0] ?? "";
    // Why the host could not serve (a full disk): the request line says.
    let unavailable: string | undefined;
    try {
      if (auth) this.#authorize(req);
      const url = requestUrl(req);
      path = url.pathname;
      checkOrigin(req);
      const { handler, params, pattern } = this.#router.match(
        req.method ?? "GET",
        url.pathname,
      );
      if (STREAMING_ROUTES.has(pattern)) {
        const streams =
          pattern === "/events"
            ? [this.#streams, this.#eventStreams]
            : [this.#streams];
        for (const set of streams) set.add(res);
        res.once("close", () => streams.forEach((set) => set.delete(res)));
      }
      await handler({ req, res, params, query: url.searchParams });
    } catch (err) {
      if (!(err instanceof ValidationError) && !isExpected(err)) {
        this.#log.report(err, { at: "request", path });
      } else if ((err as { code?: unknown }).code === "unavailable") {
        unavailable = errorMessage(err);
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
        ...(unavailable === undefined ? {} : { err: unavailable }),
      });
    }
  }
}

interface RouteDeps {
  host: Host;
  version: string;
  metrics: HostMetrics;
  starts: StartLimit;
}

function routes({ host, version, metrics, starts }: RouteDeps): Router {
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
    return starts.run(() => host.create(spec));
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
    .on("DELETE", "/jobs/:id", async ({ res, params, query }) => {
      const id = params.id as string;
      if (!parseFlag(query.get("remove"), "remove")) {
        sendJson(res, 200, await host.stop(id));
        return;
      }
      // Answered once the files are deleted, so the disk space is back.
      const { record, deleted } = host.remove(id);
      await deleted;
      sendJson(res, 200, record);
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
    .on("GET", "/events", (ctx) => getEvents(host, ctx))
    .on("GET", "/metrics", async ({ res }) => {
      const text = await metrics.text();
      res.writeHead(200, {
        "content-type": metrics.contentType,
        "content-length": Buffer.byteLength(text),
      });
      res.end(text);
    });
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
    code === "unauthorized" ||
    code === "rate_limited" ||
    code === "unavailable"
  );
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS).unref();
  });
}
