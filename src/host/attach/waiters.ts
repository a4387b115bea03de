/**
 * Attachers waiting for a job that does not exist yet. The host calls
 * `created(id)` right after the job's record and output exist and before
 * it starts; waiters are called synchronously there, so they subscribe to
 * the output before the job can write its first byte.
 */
export type CreatedCallback = () => void;

/** See the module comment. */
export class AttachWaiters {
  readonly #waiting = new Map<string, Set<CreatedCallback>>();

  /** How many attachers wait for `id`. */
  count(id: string): number {
    return this.#waiting.get(id)?.size ?? 0;
  }

  /** Registers a callback for when `id` is created; returns the cancel. */
  add(id: string, callback: CreatedCallback): () => void {
    let set = this.#waiting.get(id);
    if (!set) {
      set = new Set();
      this.#waiting.set(id, set);
    }
    set.add(callback);
    return () => {
      set.delete(callback);
      if (set.size === 0 && this.#waiting.get(id) === set) {
        this.#waiting.delete(id);
      }
    };
  }

  /** Calls and forgets every waiter for `id`. */
  created(id: string): void {
    const set = this.#waiting.get(id);
    if (!set) return;
    this.#waiting.delete(id);
    for (const callback of set) {
      try {
        callback();
      } catch {
        // A waiter's own failure is its business; the others still hear.
      }
    }
  }
}
