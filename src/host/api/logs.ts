/**
 * GET /jobs/:id/logs — a job's captured output as plain bytes. With
 * `follow=1` the response stays open and carries new output until the job
 * ends. Following reads the files on disk rather than buffering live
 * chunks, so a slow client costs no memory: the live feed only says how
 * far the file has grown.
 */
import { open, type FileHandle } from "node:fs/promises";
import type { ServerResponse } from "node:http";

import { ValidationError } from "../../errors.js";
import type { Host } from "../host.js";
import type { OutputView } from "../output.js";
import type { RouteContext } from "./router.js";

const READ_CHUNK_BYTES = 64 * 1024;
const VIEWS: readonly string[] = ["stdout", "stderr", "all"];

/** The route handler. */
export async function getLogs(host: Host, ctx: RouteContext): Promise<void> {
  const id = ctx.params.id as string;
  const output = host.output(id);
  const view = parseView(ctx.query.get("stream"));
  const follow = parseFlag(ctx.query.get("follow"), "follow");

  let target = 0;
  let ended = !follow;
  let wake: (() => void) | null = null;
  const notify = () => {
    wake?.();
    wake = null;
  };
  const follower = output.follow(view, {
    data: (chunk) => {
      target += chunk.length;
      notify();
    },
    end: () => {
      ended = true;
      notify();
    },
  });
  target = follower.offset;
  if (!follow) follower.close();
  ctx.res.once("close", () => {
    follower.close();
    ended = true;
    notify();
  });

  const file = await open(output.path(view), "r");
  try {
    ctx.res.writeHead(200, {
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
    });
    ctx.res.flushHeaders();
    let position = 0;
    for (;;) {
      if (position < target) {
        position += await copy(file, position, target, ctx.res);
        continue;
      }
      if (ended || ctx.res.destroyed) break;
      await new Promise<void>((resolve) => (wake = resolve));
    }
    // A followed log ends once the job's end is recorded, so a client that
    // asks right after finds the final status.
    if (follow && !ctx.res.destroyed) await host.ended(id);
    ctx.res.end();
  } finally {
    follower.close();
    await file.close();
  }
}

// Copies file bytes [position, target) to the response, waiting for drain.
async function copy(
  file: FileHandle,
  position: number,
  target: number,
  res: ServerResponse,
): Promise<number> {
  const length = Math.min(READ_CHUNK_BYTES, target - position);
  const buffer = Buffer.allocUnsafe(length);
  const { bytesRead } = await file.read(buffer, 0, length, position);
  if (bytesRead === 0) throw new Error("Log file is shorter than recorded");
  if (!res.write(buffer.subarray(0, bytesRead)) && !res.destroyed) {
    await new Promise<void>((resolve) => {
      res.once("drain", resolve);
      res.once("close", resolve);
    });
  }
  return bytesRead;
}

function parseView(value: string | null): OutputView {
  if (value === null || value === "") return "all";
  if (!VIEWS.includes(value)) {
    throw new ValidationError(
      `Invalid stream ${JSON.stringify(value)}: expected stdout, stderr or all`,
      "stream",
    );
  }
  return value as OutputView;
}

/** Parses a boolean query flag: 1/true/yes, 0/false/no, or absent. */
export function parseFlag(value: string | null, name: string): boolean {
  if (value === null) return false;
  if (["", "1", "true", "yes"].includes(value)) return true;
  if (["0", "false", "no"].includes(value)) return false;
  throw new ValidationError(
    `Invalid ${name} ${JSON.stringify(value)}: expected 1 or 0`,
    name,
  );
}
