/**
 * How many files the shipper may keep open: `max_open_files`, but never so
 * many that the process runs out of descriptors (RLIMIT_NOFILE, read from
 * /proc on Linux), leaving room for sockets, the offsets store and Node's
 * own.
 */
import { readFileSync } from "node:fs";

/** Descriptors kept free for everything that is not a reader. */
export const RESERVED_DESCRIPTORS = 64;

/** The soft limit on open files, or undefined where it cannot be read. */
export function openFilesLimit(limitsText = readLimits()): number | undefined {
  const match = /^Max open files\s+(\d+|unlimited)\s/m.exec(limitsText ?? "");
  if (match === null || match[1] === "unlimited") return undefined;
  return Number(match[1]);
}

/** max_open_files, lowered to fit under the process's limit. */
export function readerLimit(
  maxOpenFiles: number,
  limit = openFilesLimit(),
): number {
  if (limit === undefined) return maxOpenFiles;
  return Math.max(1, Math.min(maxOpenFiles, limit - RESERVED_DESCRIPTORS));
}

function readLimits(): string | undefined {
  try {
    return readFileSync("/proc/self/limits", "utf8");
  } catch {
    return undefined;
  }
}
