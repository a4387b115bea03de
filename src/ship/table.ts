/**
 * The shipper's table of known files: by identity and by path, which of
 * them may have lines to read (in round-robin order), and how many readers
 * are open. Opening a reader when `max_open_files` are open first closes
 * the least recently read one that is idle (at its end, nothing in
 * flight); when none is idle the file waits for a later batch. After each
 * read the file's first bytes are checked against its fingerprint, so a
 * file truncated and written past the read offset is not read from the
 * middle of its new lines.
 */
import type { Fingerprint } from "./identity.js";
import type { OffsetClaim, TrackedFile } from "./tracked.js";

import { widenFingerprint } from "./identity.js";
import { FileReader } from "./reader.js";
import { canRead, isBusy } from "./tracked.js";

export interface FileTableOptions {
  maxOpenFiles: number;
  maxLineBytes: number;
}

export class FileTable {
  readonly #options: FileTableOptions;
  readonly #byKey = new Map<string, TrackedFile>();
  readonly #byPath = new Map<string, TrackedFile>();
  /** Keys of files that may have lines and have no batch in flight. */
  readonly #ready = new Set<string>();
  #open = 0;

  constructor(options: FileTableOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#byKey.size;
  }

  get openReaders(): number {
    return this.#open;
  }

  files(): IterableIterator<TrackedFile> {
    return this.#byKey.values();
  }

  get(key: string): TrackedFile | undefined {
    return this.#byKey.get(key);
  }

  atPath(path: string): TrackedFile | undefined {
    return this.#byPath.get(path);
  }

  add(file: TrackedFile): void {
    this.#byKey.set(file.key, file);
    this.moveTo(file, file.path);
    if (file.dirty) this.markDirty(file);
  }

  /** Records that `file` now lives at `path` (a rename or a new match). */
  moveTo(file: TrackedFile, path: string): void {
    if (this.#byPath.get(file.path) === file) this.#byPath.delete(file.path);
    file.path = path;
    this.#byPath.set(path, file);
  }

  /** Forgets a file whose path no longer leads to it. */
  unlinkPath(file: TrackedFile): void {
    if (this.#byPath.get(file.path) === file) this.#byPath.delete(file.path);
  }

  async remove(file: TrackedFile): Promise<void> {
    this.unlinkPath(file);
    this.#byKey.delete(file.key);
    this.#ready.delete(file.key);
    await this.closeReader(file);
  }

  markDirty(file: TrackedFile): void {
    file.dirty = true;
    if (canRead(file)) this.#ready.add(file.key);
  }

  /** Files to read from, in turn; a file read in full goes to the back. */
  ready(): TrackedFile[] {
    const out: TrackedFile[] = [];
    for (const key of this.#ready) {
      const file = this.#byKey.get(key);
      if (file === undefined) this.#ready.delete(key);
      else out.push(file);
    }
    return out;
  }

  /** Moves a file to the back of the turn after it was read from. */
  readFrom(file: TrackedFile): void {
    this.#ready.delete(file.key);
    if (file.dirty && canRead(file)) this.#ready.add(file.key);
  }

  /** Batch `id` holds lines of these files until unlock. */
  lock(id: number, claims: readonly OffsetClaim[]): void {
    for (const { file } of claims) {
      file.pending.push(id);
      if (!canRead(file)) this.#ready.delete(file.key);
    }
  }

  unlock(id: number, claims: readonly OffsetClaim[]): void {
    for (const { file } of claims) {
      const at = file.pending.indexOf(id);
      if (at >= 0) file.pending.splice(at, 1);
      if (file.dirty && canRead(file) && this.#byKey.get(file.key) === file) {
        this.#ready.add(file.key);
      }
    }
  }

  /**
   * The file's reader, opened at its read offset when it has none; or
   * undefined when every slot is taken by a busy file (try again later)
   * or the file is gone (ENOENT: the caller's refresh deals with it).
   */
  async reader(file: TrackedFile): Promise<FileReader | undefined> {
    if (file.reader !== undefined) return file.reader;
    if (
      this.#open >= this.#options.maxOpenFiles &&
      !(await this.#closeIdle())
    ) {
      return undefined;
    }
    this.#open++;
    try {
      file.reader = await FileReader.open(file.path, {
        startOffset: file.readOffset,
        maxLineBytes: this.#options.maxLineBytes,
      });
    } catch (err) {
      this.#open--;
      // Out of descriptors (a lower ulimit than max_open_files, or others
      // use them): make room, and let the file wait for its turn.
      if (isOutOfDescriptors(err)) {
        await this.#closeIdle();
        return undefined;
      }
      throw err;
    }
    if (file.reader.identity.key !== file.key) {
      // The path leads to another file now; that one is found by refresh.
      await this.closeReader(file);
      return undefined;
    }
    return file.reader;
  }

  /**
   * Whether `file`, just read up to `offset` through its open reader,
   * still starts with the bytes of its fingerprint. False means it was
   * truncated and written again since, so what was read may be the middle
   * of new lines: the caller drops it and reads the file again from 0. On
   * a match the fingerprint grows to cover the first `offset` bytes (up to
   * FINGERPRINT_BYTES), so that a later rewrite is seen too. A rewrite
   * that keeps the first bytes cannot be seen.
   */
  async samePrefix(file: TrackedFile, offset: number): Promise<boolean> {
    const reader = file.reader;
    if (reader === undefined) return true;
    let wider: Fingerprint | undefined;
    try {
      wider = await widenFingerprint(reader.fd, file.fingerprint, offset);
    } catch (err) {
      if (file.reader !== reader) return true;
      throw err;
    }
    // A reader closed meanwhile (a refresh let the file go) may have had
    // its descriptor number reused: the bytes were another file's.
    if (file.reader !== reader) return true;
    if (wider !== undefined) file.fingerprint = wider;
    return wider !== undefined;
  }

  async closeReader(file: TrackedFile): Promise<void> {
    const reader = file.reader;
    if (reader === undefined) return;
    file.reader = undefined;
    this.#open--;
    await reader.close();
  }

  async closeAll(): Promise<void> {
    await Promise.all(
      [...this.#byKey.values()].map((f) => this.closeReader(f)),
    );
  }

  async #closeIdle(): Promise<boolean> {
    let oldest: TrackedFile | undefined;
    for (const file of this.#byKey.values()) {
      if (file.reader === undefined || isBusy(file) || file.dirty) continue;
      if (oldest === undefined || file.lastReadMs < oldest.lastReadMs) {
        oldest = file;
      }
    }
    if (oldest === undefined) return false;
    await this.closeReader(oldest);
    return true;
  }
}

function isOutOfDescriptors(err: unknown): boolean {
  const seen = new Set<unknown>();
  for (let e = err; e instanceof Error && !seen.has(e); e = e.cause) {
    seen.add(e);
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EMFILE" || code === "ENFILE") return true;
  }
  return false;
}
