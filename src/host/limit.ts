/**
 * A counting semaphore: at most `limit` tasks run at once, the rest wait
 * in arrival order. Used to bound concurrent job starts on an engine.
 */
export class Semaphore {
  readonly #queue: (() => void)[] = [];
  #free: number;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`Semaphore limit must be a whole number >= 1`);
    }
    this.#free = limit;
  }

  /** Runs `task` once a slot is free; the slot is released when it settles. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#queue.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.#queue.shift();
      if (next) next();
      else this.#free++;
    }
  }
}
