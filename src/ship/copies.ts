/**
 * Copy detection for copytruncate rotation: `cp app.log app.log.1` then
 * `truncate app.log`. The copy is a new inode holding the lines the
 * original had, so reading it from 0 would send them twice. Each
 * truncation is remembered (fingerprint, read and acked offsets) for a
 * while; a new file whose first bytes match a remembered one goes on
 * reading from the read offset, but counts as saved only up to the acked
 * one: lines of the original still in flight when it was truncated are
 * acked for the original's old content, which no longer exists, so a crash
 * before then must send them again from the copy. A new file identical to a live, not yet truncated file is held
 * back up to COPY_WAIT_MS, since the truncation usually follows the copy
 * at once.
 */
import type { FileHandle } from "node:fs/promises";
import type { Fingerprint } from "./identity.js";
import type { TrackedFile } from "./tracked.js";

import { fingerprintMatches } from "./identity.js";

/** How long a new copy of a live file waits for that file's truncation. */
export const COPY_WAIT_MS = 5000;
/** How long a truncated file's last offset is kept for its copy. */
export const TRUNCATED_MEMORY_MS = 60_000;

/** Where a truncated file had been read to, and acked to. */
export interface CopyStart {
  readOffset: number;
  ackedOffset: number;
}

interface Truncation extends CopyStart {
  fingerprint: Fingerprint;
  atMs: number;
}

export class CopyDetector {
  readonly #now: () => number;
  readonly #truncations: Truncation[] = [];
  /** New files held back as a possible copy, by key: since when. */
  readonly #waiting = new Map<string, number>();
  /** Fingerprints of the known files, taken at the start of a refresh. */
  #twins = new Set<string>();

  constructor(now: () => number) {
    this.#now = now;
  }

  /** Whether a new file is held back: a refresh should come soon. */
  get holding(): boolean {
    return this.#waiting.size > 0;
  }

  /** Notes the known files' fingerprints before a refresh looks at paths. */
  snapshot(files: Iterable<TrackedFile>): void {
    this.#twins = new Set();
    for (const file of files) this.#twins.add(twinKey(file.fingerprint));
  }

  /** Remembers where a file was read to before it was truncated. */
  truncated(fingerprint: Fingerprint, start: CopyStart): void {
    this.#truncations.push({ fingerprint, ...start, atMs: this.#now() });
  }

  /** Where a just-truncated file had got to, when this is its copy. */
  async copyOf(
    handle: FileHandle,
    size: number,
  ): Promise<CopyStart | undefined> {
    for (const [i, t] of this.#truncations.entries()) {
      if (t.fingerprint.length === 0 || size < t.readOffset) continue;
      if (!(await fingerprintMatches(handle, t.fingerprint))) continue;
      this.#truncations.splice(i, 1);
      return { readOffset: t.readOffset, ackedOffset: t.ackedOffset };
    }
    return undefined;
  }

  /**
   * Whether to hold a new file back: it is identical to a live file that
   * may be truncated next (copytruncate), and it has not waited long.
   */
  hold(key: string, fingerprint: Fingerprint): boolean {
    if (fingerprint.length === 0) return false;
    if (!this.#twins.has(twinKey(fingerprint))) return false;
    const now = this.#now();
    const since = this.#waiting.get(key) ?? now;
    this.#waiting.set(key, since);
    return now - since < COPY_WAIT_MS;
  }

  /** The file was taken on (as a copy or as new): it waits no more. */
  settled(key: string): void {
    this.#waiting.delete(key);
  }

  /** Drops memories too old to matter. */
  forgetOld(nowMs: number): void {
    const keep = this.#truncations.filter(
      (t) => nowMs - t.atMs < TRUNCATED_MEMORY_MS,
    );
    this.#truncations.splice(0, this.#truncations.length, ...keep);
    for (const [key, since] of this.#waiting) {
      if (nowMs - since > COPY_WAIT_MS * 10) this.#waiting.delete(key);
    }
  }
}

function twinKey(fp: Fingerprint): string {
  return `${fp.length}:${fp.hash}`;
}
