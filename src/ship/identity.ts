/**
 * File identity for the shipper. A log file is known by its device and
 * inode, not its path: a rotated file keeps its identity under its new
 * name, and a new file created at the old path gets a new one. Inodes are
 * reused once a file is deleted, and a file truncated in place keeps its
 * inode, so a fingerprint (a hash of the file's first bytes) tells whether
 * the bytes behind a saved offset are still the ones that were read.
 *
 * All reads here are positional (pread): they never move the position of a
 * descriptor that a reader may share.
 */
import { createHash } from "node:crypto";
import { read as readCallback, type BigIntStats } from "node:fs";
import { stat, type FileHandle } from "node:fs/promises";
import { promisify } from "node:util";

import { errorMessage, LorneError } from "../errors.js";

/** How many leading bytes a fingerprint covers at most. */
export const FINGERPRINT_BYTES = 1024;

/** Device + inode, as exact decimal strings and as one key "dev:ino". */
export interface FileIdentity {
  key: string;
  dev: string;
  ino: string;
}

/**
 * sha256 (hex) of a file's first `length` bytes, where `length` is at most
 * FINGERPRINT_BYTES. A fingerprint of length 0 (an empty file) matches any
 * file.
 */
export interface Fingerprint {
  length: number;
  hash: string;
}

const preadNumber = promisify(readCallback);

/** The identity in stats taken with `{ bigint: true }` (exact for any ino). */
export function identityOf(stats: BigIntStats): FileIdentity {
  const dev = stats.dev.toString();
  const ino = stats.ino.toString();
  return { key: `${dev}:${ino}`, dev, ino };
}

/**
 * The identity, size and modification time (ns) of the file at `path`,
 * following symlinks.
 * Undefined when nothing is there (ENOENT, or a path component that is not
 * a directory). Other failures throw a LorneError with the cause chained.
 */
export async function statIdentity(
  path: string,
): Promise<
  { identity: FileIdentity; size: number; mtimeNs: bigint } | undefined
> {
  let stats: BigIntStats;
  try {
    stats = await stat(path, { bigint: true });
  } catch (err) {
    if (isGone(err)) return undefined;
    throw new LorneError(
      "unavailable",
      `Cannot stat "${path}": ${errorMessage(err)}`,
      { cause: err },
    );
  }
  return {
    identity: identityOf(stats),
    size: Number(stats.size),
    mtimeNs: stats.mtimeNs,
  };
}

/**
 * Hashes the first min(size, FINGERPRINT_BYTES) bytes of an open file.
 * `size` is what the caller knows of the file (its size, or the offset read
 * so far). If the file has become shorter, the fingerprint covers what is
 * there, and its `length` says so.
 */
export async function readFingerprint(
  fd: FileHandle | number,
  size: number,
): Promise<Fingerprint> {
  const wanted = Math.max(0, Math.min(size, FINGERPRINT_BYTES));
  const bytes = await readPrefix(fd, wanted);
  return { length: bytes.length, hash: sha256(bytes) };
}

/**
 * Whether the file still starts with the bytes `fp` was taken from: false
 * when it is shorter than `fp.length` or its first `fp.length` bytes differ
 * (truncated and rewritten, or the inode was reused). Growth keeps a match.
 */
export async function fingerprintMatches(
  fd: FileHandle | number,
  fp: Fingerprint,
): Promise<boolean> {
  const bytes = await readPrefix(fd, fp.length);
  return bytes.length === fp.length && sha256(bytes) === fp.hash;
}

/**
 * `fp` taken again over the first min(`size`, FINGERPRINT_BYTES) bytes,
 * when the file still starts with the bytes `fp` covers; undefined when it
 * does not (truncated and written again). A fingerprint grows this way as
 * a file is read, so that a later rewrite of its first bytes is seen.
 */
export async function widenFingerprint(
  fd: FileHandle | number,
  fp: Fingerprint,
  size: number,
): Promise<Fingerprint | undefined> {
  if (!(await fingerprintMatches(fd, fp))) return undefined;
  if (Math.min(size, FINGERPRINT_BYTES) <= fp.length) return fp;
  return readFingerprint(fd, size);
}

/** Whether an fs error means the file is not there. */
export function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

// Up to `length` bytes from offset 0; fewer only at end of file. A pread
// may return less than asked, so it loops until full or at the end.
async function readPrefix(
  fd: FileHandle | number,
  length: number,
): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const n = await pread(fd, buffer, filled, length - filled, filled);
    if (n === 0) break;
    filled += n;
  }
  return buffer.subarray(0, filled);
}

async function pread(
  fd: FileHandle | number,
  buffer: Buffer,
  offset: number,
  length: number,
  position: number,
): Promise<number> {
  try {
    const { bytesRead } =
      typeof fd === "number"
        ? await preadNumber(fd, buffer, offset, length, position)
        : await fd.read(buffer, offset, length, position);
    return bytesRead;
  } catch (err) {
    throw new LorneError(
      "unavailable",
      `Cannot read the start of a file: ${errorMessage(err)}`,
      { cause: err },
    );
  }
}

function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}
