/**
 * Containers whose removal failed for a reason other than "already gone":
 * most often the engine was shutting down or restarting just as the job's
 * exit became known. The exit is recorded all the same; the container is
 * removed later, tried again with backoff and at once when the engine's
 * event stream comes back, until the engine removes it or says it is gone.
 */
import type Docker from "dockerode";

import { errorMessage } from "../../../errors.js";
import type { Context } from "../../../log/index.js";

const MIN_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;

/** What removal needs of a container (dockerode's Container has it). */
export type Removable = Pick<Docker.Container, "id" | "remove">;

interface Pending {
  container: Removable;
  log: Context;
}

/** See the module comment. */
export class PendingRemovals {
  readonly #pending = new Map<string, Pending>();
  #retryMs = MIN_RETRY_MS;
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  #closed = false;

  /** How many containers wait to be removed. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * Removes the container now; on a failure other than 404 it is kept
   * for later and the error is logged once. Resolves when this first try
   * is over, whatever its outcome.
   */
  async remove(container: Removable, log: Context): Promise<void> {
    const err = await removeOnce(container);
    if (err === null) return;
    log.log({
      at: "remove",
      err: errorMessage(err),
      resolution: "retrying until the engine removes it",
    });
    this.#pending.set(container.id, { container, log });
    this.#schedule();
  }

  /** Tries every pending removal now (the engine just came back). */
  retryNow(): void {
    this.#retryMs = MIN_RETRY_MS;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    void this.#retry();
  }

  /** Stops retrying; what is still pending stays for `--force` to find. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #schedule(): void {
    if (this.#closed || this.#timer || this.#running) return;
    if (this.#pending.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#retry();
    }, this.#retryMs);
    this.#timer.unref();
    this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
  }

  async #retry(): Promise<void> {
    if (this.#running || this.#closed) return;
    this.#running = true;
    try {
      for (const [id, { container, log }] of [...this.#pending]) {
        if ((await removeOnce(container)) !== null) continue;
        this.#pending.delete(id);
        log.log({ at: "removed_later" });
      }
    } finally {
      this.#running = false;
    }
    if (this.#pending.size === 0) this.#retryMs = MIN_RETRY_MS;
    this.#schedule();
  }
}

// Null once the container is gone (removed now, or already); else why not.
async function removeOnce(container: Removable): Promise<unknown> {
  try {
    await container.remove({ force: true });
    return null;
  } catch (err) {
    return (err as { statusCode?: number }).statusCode === 404 ? null : err;
  }
}
