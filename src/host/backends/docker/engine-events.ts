/**
 * Watches the engine's event stream for this host's containers. When the
 * stream drops (dockerd stopped or restarted, a proxy cut it), the watcher
 * reports it, reconnects with backoff asking for events `since` the last
 * one it saw, and asks the backend to reconcile every container it tracks
 * by inspecting it, so no job stays `running` after its container died.
 */
import type Docker from "dockerode";

import { errorMessage } from "../../../errors.js";
import type { Context } from "../../../log/index.js";

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;

export interface EngineEvent {
  /** Container id. */
  id: string;
  action: string;
}

export interface EngineWatcherOptions {
  docker: Docker;
  hostId: string;
  log: Context;
  /** A container of ours died (or was OOM-killed). */
  onEvent(event: EngineEvent): void;
  /** The stream came back after a loss: re-check everything. */
  onReconnect(): void;
}

/** See the module comment. */
export class EngineWatcher {
  readonly #options: EngineWatcherOptions;
  #stream: NodeJS.ReadableStream | null = null;
  #sinceSeconds = Math.floor(Date.now() / 1000) - 1;
  #backoffMs = MIN_BACKOFF_MS;
  #retry: NodeJS.Timeout | null = null;
  #lastError: string | null = null;
  #connected = false;
  #closed = false;

  constructor(options: EngineWatcherOptions) {
    this.#options = options;
  }

  /** Whether the event stream is up. */
  get connected(): boolean {
    return this.#connected;
  }

  /** Why the stream is down, when it is. */
  get lastError(): string | null {
    return this.#lastError;
  }

  /** Opens the stream; resolves once connected (or the first try failed). */
  async start(): Promise<void> {
    await this.#connect(false);
  }

  /** Stops watching. Idempotent. */
  close(): void {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#destroyStream();
  }

  async #connect(reconnecting: boolean): Promise<void> {
    const { docker, hostId, log } = this.#options;
    try {
      const stream = await docker.getEvents({
        since: this.#sinceSeconds,
        filters: JSON.stringify({
          type: ["container"],
          event: ["die", "oom"],
          label: [`lorne.host.id=${hostId}`],
        }),
      });
      if (this.#closed) {
        (stream as { destroy?: () => void }).destroy?.();
        return;
      }
      this.#stream = stream;
      this.#connected = true;
      this.#lastError = null;
      this.#backoffMs = MIN_BACKOFF_MS;
      this.#read(stream);
      if (reconnecting) {
        log.log({ fn: "engine_events", at: "restored" });
        this.#options.onReconnect();
      }
    } catch (err) {
      this.#lost(errorMessage(err));
    }
  }

  #read(stream: NodeJS.ReadableStream): void {
    let buffer = "";
    stream.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("utf8");
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line !== "") this.#handle(line);
      }
    });
    const ended = (reason: string) => {
      if (this.#stream !== stream) return;
      this.#stream = null;
      this.#lost(reason);
    };
    stream.on("end", () => ended("event stream ended"));
    stream.on("error", (err: unknown) => ended(errorMessage(err)));
    stream.on("close", () => ended("event stream closed"));
  }

  #handle(line: string): void {
    let event: { id?: string; Action?: string; status?: string; time?: number };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      return; // Not an event; the engine never sends this.
    }
    if (typeof event.time === "number") {
      this.#sinceSeconds = Math.max(this.#sinceSeconds, event.time - 1);
    }
    const action = event.Action ?? event.status;
    if (event.id && action) this.#options.onEvent({ id: event.id, action });
  }

  #lost(reason: string): void {
    if (this.#closed) return;
    this.#connected = false;
    this.#lastError = reason;
    this.#options.log.log({
      fn: "engine_events",
      at: "lost",
      err: reason,
      retry_ms: this.#backoffMs,
    });
    this.#destroyStream();
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, MAX_BACKOFF_MS);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      void this.#connect(true);
    }, delay);
  }

  #destroyStream(): void {
    const stream = this.#stream as { destroy?: () => void } | null;
    this.#stream = null;
    stream?.destroy?.();
  }
}
