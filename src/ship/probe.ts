/**
 * Small looks into a file a refresh takes: open it only if it is still the
 * file it was found as, and check where its lines begin and end.
 */
import { open, type FileHandle } from "node:fs/promises";

import type { FileIdentity } from "./identity.js";

import { identityOf, isGone } from "./identity.js";

/** Opens `path` for a look at its bytes, if it is still `identity`. */
export async function withFile(
  path: string,
  identity: FileIdentity,
  use: (handle: FileHandle, size: number) => Promise<void>,
): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (err) {
    if (isGone(err)) return;
    throw err;
  }
  try {
    const stats = await handle.stat({ bigint: true });
    if (identityOf(stats).key !== identity.key) return;
    await use(handle, Number(stats.size));
  } finally {
    await handle.close();
  }
}

/** Whether the byte before `offset` is a newline (or offset is 0). */
export async function followsNewline(
  handle: FileHandle,
  offset: number,
): Promise<boolean> {
  if (offset === 0) return true;
  const byte = Buffer.alloc(1);
  const { bytesRead } = await handle.read(byte, 0, 1, offset - 1);
  return bytesRead === 1 && byte[0] === 0x0a;
}

/**
 * Where the line `size` falls in starts: after the last newline of the
 * last 64 KiB (a file is joined at a line, not in a half-written one);
 * `size` itself when there is none that near.
 */
export async function lineStart(
  handle: FileHandle,
  size: number,
): Promise<number> {
  const length = Math.min(size, 64 * 1024);
  const tail = Buffer.alloc(length);
  const { bytesRead } = await handle.read(tail, 0, length, size - length);
  const newline = tail.subarray(0, bytesRead).lastIndexOf(0x0a);
  return newline < 0 ? size : size - length + newline + 1;
}
