/**
 * The record of how a job ended, `exit.json` in the job's directory: the
 * shim writes it for a process job, the docker backend for a container it
 * is about to remove. It is written durably (temp file, fsync, rename,
 * fsync of the directory) before the daemon records the exit, so a daemon
 * that was down (or died) in between learns the truth when it comes back.
 */
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";

import { EXIT_FILE } from "./spec.js";
import type { ShimExit } from "./protocol.js";

/** Writes the exit record; throws when it cannot be made durable. */
export function writeExitFile(dir: string, exit: ShimExit): void {
  const path = join(dir, EXIT_FILE);
  const temp = `${path}.tmp`;
  try {
    const fd = openSync(temp, "w", 0o640);
    try {
      writeSync(fd, `${JSON.stringify(exit)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true }); // a full disk leaves no half file
    throw err;
  }
  const dirFd = openSync(dir, "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/**
 * The exit record, or null when there is none. Throws when one is there
 * but unreadable or malformed, naming the file.
 */
export function readExitFile(dir: string): ShimExit | null {
  const path = join(dir, EXIT_FILE);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new Error(`Cannot read "${path}": ${(err as Error).message}`, {
      cause: err,
    });
  }
  return checkExit(text, path);
}

/** The exit record, or null when there is none or it cannot be read. */
export function readExitFileOrNull(dir: string): ShimExit | null {
  try {
    return readExitFile(dir);
  } catch {
    return null; // unreadable: as good as none
  }
}

function checkExit(text: string, path: string): ShimExit {
  let value: Partial<ShimExit>;
  try {
    value = JSON.parse(text) as Partial<ShimExit>;
  } catch {
    throw new Error(`Cannot read "${path}": not JSON`);
  }
  const position = value.position;
  const ok =
    typeof value === "object" &&
    value !== null &&
    (value.exitStatus === null || Number.isInteger(value.exitStatus)) &&
    (value.signal === null || typeof value.signal === "string") &&
    typeof value.endedAt === "string" &&
    typeof position === "object" &&
    position !== null &&
    [position.stdout, position.stderr, position.index].every(
      (n) => Number.isSafeInteger(n) && n >= 0,
    );
  if (!ok) throw new Error(`Cannot read "${path}": not an exit record`);
  return {
    exitStatus: value.exitStatus ?? null,
    signal: value.signal ?? null,
    oomKilled: value.oomKilled === true,
    ...(typeof value.error === "string" ? { error: value.error } : {}),
    endedAt: value.endedAt as string,
    // Written since lorne records it; an older shim's record has none.
    ...(typeof value.startedAt === "string" &&
    !isNaN(Date.parse(value.startedAt))
      ? { startedAt: value.startedAt }
      : {}),
    position,
    droppedBytes: Number(value.droppedBytes) || 0,
  };
}
