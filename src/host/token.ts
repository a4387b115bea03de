/**
 * The host API's bearer token: created once per state dir, kept in
 * `<state>/token` readable by its owner only, and read back by the CLI.
 *
 * The file is written under a temporary name opened with O_EXCL and mode
 * 0600, then linked to its final name (link(2) refuses to replace), so it
 * is never readable by others, never seen half-written, and two creators
 * cannot both win. A token file that others may read is refused rather
 * than trusted.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  linkSync,
  lstatSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";

import { errorMessage, ValidationError } from "../errors.js";

/** Random bytes in a token (hex-encoded: 64 characters). */
export const TOKEN_BYTES = 32;
const TOKEN_PATTERN = /^[0-9a-f]{64}$/;

/** Where the daemon keeps its token. */
export function tokenPath(stateDir: string): string {
  return join(stateDir, "token");
}

/** The state dir's token, created on first use; see module comment. */
export function loadOrCreateToken(stateDir: string): string {
  const path = tokenPath(stateDir);
  try {
    return readTokenFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw readError(path, err);
    }
  }
  const token = randomBytes(TOKEN_BYTES).toString("hex");
  const temp = `${path}.${process.pid}.tmp`;
  // Left by a crash of an earlier daemon with this pid; the dir is locked.
  rmSync(temp, { force: true });
  try {
    const fd = openSync(temp, "wx", 0o600);
    try {
      writeSync(fd, `${token}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    linkSync(temp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      try {
        return readTokenFile(path);
      } catch (readErr) {
        throw readError(path, readErr);
      }
    }
    throw new ValidationError(
      `Cannot create token file "${path}": ${errorMessage(err)}`,
      "state",
      { cause: err },
    );
  } finally {
    rmSync(temp, { force: true });
  }
  return token;
}

/**
 * Reads a token file. Errors keep the file system's `code` (ENOENT) so a
 * caller can tell a missing file; a file others can read, or one that
 * does not hold a token, is refused with a ValidationError.
 */
export function readTokenFile(path: string): string {
  const stat = lstatSync(path);
  if (!stat.isFile()) {
    throw new ValidationError(
      `Invalid token file "${path}": not a regular file`,
      "token",
    );
  }
  if ((stat.mode & 0o077) !== 0) {
    throw new ValidationError(
      `Invalid token file "${path}": readable by others (mode ` +
        `${(stat.mode & 0o777).toString(8)}); make it 600`,
      "token",
    );
  }
  const token = readFileSync(path, "utf8").trim();
  if (!TOKEN_PATTERN.test(token)) {
    throw new ValidationError(
      `Invalid token file "${path}": expected ${TOKEN_BYTES * 2} hex digits`,
      "token",
    );
  }
  return token;
}

/**
 * Compares presented tokens with the host's in constant time: both sides
 * are hashed first, so the comparison never depends on the length or
 * content of what a client sent.
 */
export class TokenCheck {
  readonly #digest: Buffer;

  constructor(token: string) {
    this.#digest = digest(token);
  }

  /** Whether an `Authorization` header value carries the token. */
  matches(header: string | undefined): boolean {
    const match = /^Bearer +(\S+) *$/i.exec(header ?? "");
    const presented = digest(match?.[1] ?? "");
    // Always compare, so a missing header costs the same as a wrong one.
    return timingSafeEqual(presented, this.#digest) && match !== null;
  }
}

function readError(path: string, err: unknown): ValidationError {
  if (err instanceof ValidationError) return err;
  return new ValidationError(
    `Cannot read token file "${path}": ${errorMessage(err)}`,
    "token",
    { cause: err },
  );
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}
