/**
 * The client side of attach: opens the WebSocket, reports `waiting`,
 * resolves once the host says `success` (or rejects with the host's
 * error), hands output to the caller, and carries stdin, signals and
 * resizes the other way. Used by `lorne run`, `lorne attach` and tests.
 */
import { WebSocket } from "ws";

import {
  ConflictError,
  errorMessage,
  LorneError,
  ProtocolError,
  UnavailableError,
} from "../../errors.js";
import {
  authHeaders,
  describeEndpoint,
  jobPath,
  toEndpoint,
  toError,
  type HostEndpoint,
} from "../client.js";
import type { OutputStream } from "../output.js";
import { decodeServer, encodeClient, type ExitPayload } from "./protocol.js";

export interface AttachOptions {
  stdin?: boolean;
  stdout?: boolean;
  stderr?: boolean;
  /** Replay the output written before attaching. */
  logs?: boolean;
  /** Follow live output (default true). */
  stream?: boolean;
  rows?: number;
  cols?: number;
  /** How long the host waits for a job that does not exist yet. */
  waitMs?: number;
  /** Called when the host says the job does not exist yet. */
  onWaiting?: () => void;
  /**
   * Gives up attaching (before the host's `success`): the open rejects
   * with the abort's reason (a caller whose create failed).
   */
  signal?: AbortSignal;
  /**
   * Refuse to attach to a job that exists already (the host's `new=1`):
   * for a caller that is about to create the job under this id. An ended
   * job a create would replace (one of an earlier daemon) is waited for.
   */
  requireWaiting?: boolean;
  /** Output; called in order. */
  onData?: (stream: OutputStream, data: Buffer) => void;
  onEof?: (stream: OutputStream) => void;
}

/** See the module comment. */
export class AttachConnection {
  /** How the job ended; null if the connection closed without telling. */
  readonly exit: Promise<ExitPayload | null>;
  readonly #ws: WebSocket;

  private constructor(ws: WebSocket, exit: Promise<ExitPayload | null>) {
    this.#ws = ws;
    this.exit = exit;
  }

  /** Attaches to job `id` on the host at `host` (a base URL or endpoint). */
  static open(
    host: string | HostEndpoint,
    id: string,
    options: AttachOptions = {},
  ): Promise<AttachConnection> {
    const endpoint = toEndpoint(host);
    const url = new URL(
      jobPath(id, "/attach"),
      endpoint.url.replace(/^http/, "ws"),
    );
    const flags: [string, boolean | number | undefined][] = [
      ["stdin", options.stdin],
      ["stdout", options.stdout],
      ["stderr", options.stderr],
      ["logs", options.logs],
      ["stream", options.stream],
      ["new", options.requireWaiting],
      ["height", options.rows],
      ["width", options.cols],
      ["wait_ms", options.waitMs],
    ];
    for (const [name, value] of flags) {
      if (value === undefined) continue;
      url.searchParams.set(
        name,
        typeof value === "boolean" ? (value ? "1" : "0") : String(value),
      );
    }
    // ws reaches a Unix socket through its ws+unix:PATH:REQUEST form.
    const target =
      endpoint.socketPath === undefined
        ? url
        : `ws+unix:${endpoint.socketPath}:${url.pathname}${url.search}`;
    const ws = new WebSocket(target, {
      perMessageDeflate: false,
      maxPayload: 0,
      headers: authHeaders(endpoint),
    });

    return new Promise((resolve, reject) => {
      let settled = false;
      let failed = false;
      let waited = false;
      let resolveExit!: (exit: ExitPayload | null) => void;
      const exit = new Promise<ExitPayload | null>((r) => (resolveExit = r));
      const fail = (err: LorneError) => {
        failed = true;
        if (!settled) {
          settled = true;
          reject(err);
        }
        resolveExit(null);
        ws.terminate();
      };
      const { signal } = options;
      const onAbort = () =>
        fail(
          signal?.reason instanceof LorneError
            ? signal.reason
            : new UnavailableError(
                `Cannot attach: ${errorMessage(signal?.reason)}`,
              ),
        );
      if (signal?.aborted) onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      ws.on("close", () => signal?.removeEventListener("abort", onAbort));
      ws.on(
        "unexpected-response",
        (_req, res) => void toError(res, endpoint).then(fail, fail),
      );
      ws.on("error", (err) => {
        fail(
          new UnavailableError(
            `Cannot attach at ${describeEndpoint(endpoint)}: ${errorMessage(err)}`,
            { cause: err },
          ),
        );
      });
      ws.on("close", () => {
        if (!settled) {
          settled = true;
          reject(
            new UnavailableError(
              "Attach connection closed before the host answered",
            ),
          );
        }
        resolveExit(null);
      });
      ws.on("message", (message: Buffer) => {
        // Frames already on their way when we gave up are not delivered.
        if (failed) return;
        let frame;
        try {
          frame = decodeServer(message);
        } catch (err) {
          return fail(
            err instanceof LorneError
              ? err
              : new ProtocolError(errorMessage(err)),
          );
        }
        switch (frame.type) {
          case "waiting":
            waited = true;
            return options.onWaiting?.();
          case "success":
            if (options.requireWaiting && !waited) {
              return fail(
                new ConflictError(
                  `Cannot create job "${id}": it exists already`,
                ),
              );
            }
            settled = true;
            signal?.removeEventListener("abort", onAbort);
            return resolve(new AttachConnection(ws, exit));
          case "error":
            return fail(new LorneError("unavailable", frame.message));
          case "data":
            return options.onData?.(frame.stream, frame.data);
          case "eof":
            return options.onEof?.(frame.stream);
          case "exit":
            return resolveExit(frame.exit);
        }
      });
    });
  }

  /** Writes to the job's stdin; settles once the bytes left this process. */
  write(data: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.#ws.readyState !== WebSocket.OPEN) return resolve();
      this.#ws.send(encodeClient({ type: "stdin", data }), () => resolve());
    });
  }

  /** Closes the job's stdin. */
  closeStdin(): void {
    this.#send(encodeClient({ type: "stdin_close" }));
  }

  signal(signal: string): void {
    this.#send(encodeClient({ type: "signal", signal }));
  }

  resize(rows: number, cols: number): void {
    this.#send(encodeClient({ type: "resize", rows, cols }));
  }

  /** Detaches; the job goes on. */
  close(): void {
    this.#ws.close(1000, "detach");
  }

  #send(frame: Buffer): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(frame);
  }
}
