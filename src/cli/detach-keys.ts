/**
 * The detach key sequence of TTY sessions (`lorne run`, `lorne attach`):
 * Ctrl-P Ctrl-Q, docker's. Keystrokes pass through a scanner that holds a
 * partial sequence back until the next key says whether it completes
 * (then the session leaves and the job goes on) or not (then the held keys
 * go to the job after all).
 */

/** Ctrl-P (0x10) then Ctrl-Q (0x11). */
export const DETACH_KEYS: readonly number[] = [0x10, 0x11];

/** Finds the detach sequence in a stream of keystrokes. */
export class DetachKeyScanner {
  readonly #keys: readonly number[];
  /** How many bytes of the sequence the last chunks ended with. */
  #matched = 0;

  constructor(keys: readonly number[] = DETACH_KEYS) {
    this.#keys = keys;
  }

  /**
   * The bytes of `chunk` to pass on (with keys held from before), and
   * whether the sequence completed: then the session should leave after
   * passing them, and the rest of the chunk is dropped.
   */
  scan(chunk: Buffer): { pass: Buffer; detach: boolean } {
    const out: number[] = [];
    for (const byte of chunk) {
      if (byte === this.#keys[this.#matched]) {
        this.#matched++;
        if (this.#matched < this.#keys.length) continue;
        this.#matched = 0;
        return { pass: Buffer.from(out), detach: true };
      }
      // Not the sequence: the held keys and this one go on, and matching
      // starts again after them (Ctrl-P Ctrl-P Ctrl-Q sends all three).
      out.push(...this.#keys.slice(0, this.#matched), byte);
      this.#matched = 0;
    }
    return { pass: Buffer.from(out), detach: false };
  }

  /** The keys held back; called when the input ends. */
  flush(): Buffer {
    const held = Buffer.from(this.#keys.slice(0, this.#matched));
    this.#matched = 0;
    return held;
  }
}
