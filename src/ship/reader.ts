/**
 * Reads lines from one open log file, as bytes, for the shipper.
 *
 * Lines end with "\n"; one "\r" before it is stripped from the line but
 * counted in offsets, and a lone "\r" elsewhere stays in the line. Bytes are
 * never decoded, so invalid UTF-8 ships as it was written. A last line
 * without its "\n" is held back until the "\n" arrives (the file may grow
 * between reads, as with tail -f). A line longer than `maxLineBytes` is
 * skipped without being held in memory: the reader drops what it gathered
 * and scans on to the next "\n"; until that "\n" is read its offset stays at
 * the line's start, so a restart skips it again rather than shipping its
 * tail.
 *
 * Lines are handed out as views of the read buffer, which is never reused
 * once a line points into it: callers may keep lines as long as they like
 * (holding one line keeps its whole buffer alive: up to `bufferBytes`, or
 * twice `maxLineBytes` when that is larger).
 */
import { constants, type BigIntStats } from "node:fs";
import { open as openFile, type FileHandle } from "node:fs/promises";

import {
  errorMessage,
  LorneError,
  NotFoundError,
  ValidationError,
} from "../errors.js";
import { identityOf, isGone, type FileIdentity } from "./identity.js";

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/** Default size of the largest read from the file. */
export const DEFAULT_BUFFER_BYTES = 256 * 1024;
// Size of the first read after the end of the file was reached.
const MIN_BUFFER_BYTES = 16 * 1024;

/** One line, without its "\n" and without one "\r" before it. */
export interface ReadLine {
  /** The line's bytes; the caller may keep them (they are never reused). */
  bytes: Buffer;
  /** Byte offset in the file just after this line's "\n". */
  endOffset: number;
}

export interface ReadResult {
  lines: ReadLine[];
  /**
   * Offset after the last complete line or completely skipped line: what
   * may be saved once these lines are acknowledged.
   */
  offset: number;
  /** Over-long lines whose "\n" was reached in this call. */
  skippedLines: number;
  /** Their bytes, line endings included. */
  skippedBytes: number;
  /** The read reached the end of the file's current data. */
  eof: boolean;
}

export interface FileReaderOptions {
  /** Byte offset to start at: a saved offset, or 0. */
  startOffset: number;
  /** Longest line shipped, without its line ending; longer ones are skipped. */
  maxLineBytes: number;
  /**
   * Largest read from the file at once (reads start smaller after the end
   * of the file and double up to this); default DEFAULT_BUFFER_BYTES.
   */
  bufferBytes?: number;
}

/**
 * One open file, read from a byte offset on. Not for concurrent use: one
 * read() at a time. The descriptor stays valid when the file is renamed or
 * deleted, so a rotated file can be read to its end.
 */
export class FileReader {
  /** The path the file was opened as, updated by rename(). */
  path: string;
  readonly identity: FileIdentity;
  readonly #handle: FileHandle;
  readonly #maxLineBytes: number;
  readonly #bufferBytes: number;
  readonly #minBytes: number;
  #wantBytes: number;
  #closed = false;
  #reading = false;

  // The read buffer holds file bytes [bufferOffset, bufferOffset + end);
  // bytes before `start` are consumed; [start, scan) has no "\n".
  #buffer: Buffer;
  #view: Buffer;
  #bufferOffset: number;
  #start = 0;
  #scan = 0;
  #end = 0;
  // A line points into #buffer, so the next fill must use a new one.
  #lent = false;
  // While skipping an over-long line, the offset of its first byte.
  #skipStart: number | undefined;
  #offset: number;

  private constructor(
    path: string,
    handle: FileHandle,
    identity: FileIdentity,
    options: Required<FileReaderOptions>,
  ) {
    this.path = path;
    this.#handle = handle;
    this.identity = identity;
    this.#maxLineBytes = options.maxLineBytes;
    this.#bufferBytes = options.bufferBytes;
    this.#minBytes = Math.min(options.bufferBytes, MIN_BUFFER_BYTES);
    this.#wantBytes = this.#minBytes;
    this.#offset = options.startOffset;
    this.#bufferOffset = options.startOffset;
    this.#buffer = Buffer.allocUnsafe(0);
    this.#view = this.#buffer;
  }

  /**
   * Opens `path` read-only. Throws ValidationError for bad options or a
   * path that is not a regular file (a directory, a FIFO), NotFoundError
   * when nothing is there, and LorneError (code `unavailable`) when it
   * cannot be opened, with the cause chained.
   */
  static async open(
    path: string,
    options: FileReaderOptions,
  ): Promise<FileReader> {
    const resolved = resolveOptions(options);
    let handle: FileHandle;
    try {
      // O_NONBLOCK: opening a FIFO must not wait for a writer; it has no
      // effect on a regular file.
      handle = await openFile(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      if (isGone(err)) {
        throw new NotFoundError(`Cannot open "${path}": no such file`, {
          cause: err,
        });
      }
      throw ioError(`Cannot open "${path}"`, err);
    }
    let stats: BigIntStats;
    try {
      stats = await handle.stat({ bigint: true });
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw ioError(`Cannot stat "${path}"`, err);
    }
    if (!stats.isFile()) {
      await handle.close().catch(() => undefined);
      throw new ValidationError(
        `Cannot read "${path}": it is not a regular file`,
        "path",
      );
    }
    return new FileReader(path, handle, identityOf(stats), resolved);
  }

  /** Offset after the last complete or completely skipped line. */
  get offset(): number {
    return this.#offset;
  }

  /**
   * The open descriptor, for identity.ts's positional fingerprint reads;
   * -1 once closed.
   */
  get fd(): number {
    return this.#handle.fd;
  }

  /** Records that the file now lives at `path` (after a rotation). */
  rename(path: string): void {
    this.path = path;
  }

  /**
   * Up to `maxLines` complete lines, and no more once `maxBytes` line bytes
   * are reached (the line that reaches it is included, so a long line is
   * never stuck). Stops early at the end of the file's current data.
   */
  async read(maxLines: number, maxBytes = Infinity): Promise<ReadResult> {
    this.#checkOpen("read");
    if (!(maxLines >= 1) || !(maxBytes >= 1)) {
      throw new ValidationError(
        `Cannot read "${this.path}": maxLines and maxBytes must be at least 1`,
        maxLines >= 1 ? "maxBytes" : "maxLines",
      );
    }
    if (this.#reading) {
      throw new LorneError(
        "conflict",
        `Cannot read "${this.path}": a read is already in progress`,
      );
    }
    this.#reading = true;
    try {
      return await this.#read(maxLines, maxBytes);
    } finally {
      this.#reading = false;
    }
  }

  /** Whether a `read()` is in progress (`reset()` must wait for it). */
  get reading(): boolean {
    return this.#reading;
  }

  /** fstat of the open descriptor: works after a rename or delete. */
  async stat(): Promise<{ size: number; identity: FileIdentity }> {
    this.#checkOpen("stat");
    try {
      const stats = await this.#handle.stat({ bigint: true });
      return { size: Number(stats.size), identity: identityOf(stats) };
    } catch (err) {
      throw ioError(`Cannot stat "${this.path}"`, err);
    }
  }

  /**
   * Starts again at `offset` (default 0), forgetting buffered bytes and any
   * over-long line in progress; for a file the caller found truncated.
   */
  reset(offset = 0): void {
    this.#checkOpen("reset");
    if (this.#reading) {
      throw new LorneError(
        "conflict",
        `Cannot reset "${this.path}": a read is in progress`,
      );
    }
    checkOffset(offset, "offset");
    this.#offset = offset;
    this.#bufferOffset = offset;
    this.#start = this.#scan = this.#end = 0;
    this.#view = this.#buffer.subarray(0, 0);
    this.#skipStart = undefined;
  }

  /** Closes the descriptor; later calls do nothing. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.close();
  }

  async #read(maxLines: number, maxBytes: number): Promise<ReadResult> {
    const lines: ReadLine[] = [];
    let lineBytes = 0;
    let skippedLines = 0;
    let skippedBytes = 0;
    let eof = false;

    while (lines.length < maxLines && lineBytes < maxBytes) {
      const newline = this.#view.indexOf(NEWLINE, this.#scan);
      if (newline === -1) {
        this.#scan = this.#end;
        this.#dropOverLong();
        if ((await this.#fill()) === 0) {
          this.#compact(
            Math.max(this.#minBytes, (this.#end - this.#start) * 2),
          );
          eof = true;
          break;
        }
        continue;
      }

      const lineEnd = this.#bufferOffset + newline + 1;
      const length =
        newline > this.#start && this.#view[newline - 1] === CARRIAGE_RETURN
          ? newline - 1 - this.#start
          : newline - this.#start;
      if (this.#skipStart !== undefined || length > this.#maxLineBytes) {
        skippedLines += 1;
        skippedBytes += lineEnd - (this.#skipStart ?? this.#offset);
        this.#skipStart = undefined;
      } else {
        const bytes = this.#view.subarray(this.#start, this.#start + length);
        lines.push({ bytes, endOffset: lineEnd });
        lineBytes += length;
        this.#lent = true;
      }
      this.#start = this.#scan = newline + 1;
      this.#offset = lineEnd;
    }

    return { lines, offset: this.#offset, skippedLines, skippedBytes, eof };
  }

  // A pending line with no "\n" yet that is already too long, even if its
  // last byte turns out to be a "\r" before the "\n", is dropped; the
  // reader then skips to the next "\n" (see module comment).
  #dropOverLong(): void {
    const pending = this.#end - this.#start;
    if (this.#skipStart === undefined && pending <= this.#maxLineBytes + 1) {
      return;
    }
    this.#skipStart ??= this.#offset;
    this.#bufferOffset += this.#end;
    this.#start = this.#scan = this.#end = 0;
  }

  // Reads more of the file after the pending bytes; returns bytes read.
  // Read sizes double while the file has more to give and fall back at
  // its end, so a reader that waits on an idle file holds a small buffer.
  async #fill(): Promise<number> {
    this.#compact(Math.max(this.#wantBytes, (this.#end - this.#start) * 2));
    const room = this.#buffer.length - this.#end;
    let bytesRead: number;
    try {
      ({ bytesRead } = await this.#handle.read(
        this.#buffer,
        this.#end,
        room,
        this.#bufferOffset + this.#end,
      ));
    } catch (err) {
      throw ioError(`Cannot read "${this.path}"`, err);
    }
    this.#end += bytesRead;
    this.#view = this.#buffer.subarray(0, this.#end);
    this.#wantBytes =
      bytesRead === room
        ? Math.min(this.#wantBytes * 2, this.#bufferBytes)
        : this.#minBytes;
    return bytesRead;
  }

  // Moves the pending bytes to the start of a buffer of `size` bytes: a
  // new one when lines point into the current one or its size differs.
  #compact(size: number): void {
    const pending = this.#end - this.#start;
    if (this.#lent || this.#buffer.length !== size) {
      const buffer = Buffer.allocUnsafe(size);
      this.#buffer.copy(buffer, 0, this.#start, this.#end);
      this.#buffer = buffer;
      this.#lent = false;
    } else if (this.#start > 0) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
    }
    this.#bufferOffset += this.#start;
    this.#scan -= this.#start;
    this.#start = 0;
    this.#end = pending;
    this.#view = this.#buffer.subarray(0, pending);
  }

  #checkOpen(action: string): void {
    if (this.#closed) {
      throw new LorneError(
        "internal",
        `Cannot ${action} "${this.path}": the reader is closed`,
      );
    }
  }
}

function resolveOptions(
  options: FileReaderOptions,
): Required<FileReaderOptions> {
  const bufferBytes = options.bufferBytes ?? DEFAULT_BUFFER_BYTES;
  checkOffset(options.startOffset, "startOffset");
  checkOffset(options.maxLineBytes, "maxLineBytes");
  if (!Number.isSafeInteger(bufferBytes) || bufferBytes < 1) {
    throw new ValidationError(
      `Invalid bufferBytes ${bufferBytes}: must be a positive integer`,
      "bufferBytes",
    );
  }
  return { ...options, bufferBytes };
}

function checkOffset(value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ValidationError(
      `Invalid ${field} ${value}: must be a non-negative integer`,
      field,
    );
  }
}

function ioError(what: string, err: unknown): LorneError {
  return new LorneError("unavailable", `${what}: ${errorMessage(err)}`, {
    cause: err,
  });
}
