/**
 * GET /jobs/:id/logs — a job's captured output as plain bytes: one stream,
 * or both in the order they were written. With `follow=1` the response
 * stays open and carries new output until the job ends. `offset=N` starts
 * N bytes into the chosen view, where a client that lost its connection
 * had got to (past the end there is nothing, or, followed, what comes
 * once the output reaches it). The output comes from an OutputCursor
 * reading the files on disk: a slow client costs no memory and never
 * holds up the job.
 */
import type { ServerResponse } from "node:http";

import { ValidationError } from "../../errors.js";
import { OutputCursor } from "../attach/cursor.js";
import type { Host } from "../host.js";
import type { OutputStream, OutputView } from "../output.js";
import type { RouteContext } from "./router.js";

/** Largest piece read from the files and written at once. */
const PIECE_BYTES = 256 * 1024;
const VIEWS: readonly string[] = ["stdout", "stderr", "all"];
const VIEW_STREAMS: Record<OutputView, readonly OutputStream[]> = {
  stdout: ["stdout"],
  stderr: ["stderr"],
  all: ["stdout", "stderr"],
};

/** The route handler. */
export async function getLogs(host: Host, ctx: RouteContext): Promise<void> {
  const id = ctx.params.id as string;
  const output = host.output(id);
  const view = parseView(ctx.query.get("stream"));
  const follow = parseFlag(ctx.query.get("follow"), "follow");
  const offset = parseOffset(ctx.query.get("offset"));
  // Asked for now: once the job has ended it may be removed while this
  // response still sends what the cursor holds open.
  const ended = follow ? host.ended(id) : null;

  const cursor = new OutputCursor(output, {
    fromStart: true,
    streams: new Set(VIEW_STREAMS[view]),
    untilNow: !follow,
    skipBytes: offset,
  });
  const { res } = ctx;
  res.once("close", () => cursor.close());
  res.writeHead(200, {
    "content-type": "text/plain; charset=utf-8",
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
  });
  res.flushHeaders();
  // The host's shutdown may end the response while output still comes.
  const gone = () => res.destroyed || res.writableEnded;
  for await (const piece of cursor.pieces(PIECE_BYTES)) {
    if (gone()) break;
    if (!res.write(piece.data)) await drained(res);
  }
  // A followed log ends once the job's end is recorded, so a client that
  // asks right after finds the final status.
  if (ended && !gone()) await ended;
  res.end();
}

function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.once("drain", done);
    res.once("close", done);
  });
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

function parseOffset(value: string | null): number {
  if (value === null) return 0;
  if (!/^\d{1,15}$/.test(value)) {
    throw new ValidationError(
      `Invalid offset ${JSON.stringify(value)}: expected a byte count from 0`,
      "offset",
    );
  }
  return Number(value);
}

/** Parses a boolean query flag: 1/true/yes, 0/false/no, or absent. */
export function parseFlag(value: string | null, name: string): boolean {
  if (value === null) return false;
  if (["", "1", "true", "yes"].includes(value)) return true;
  if (["0", "false", "no"].includes(value)) return false;
  throw new ValidationError(
    `Invalid ${name} ${JSON.stringify(value)}: expected 1, true or yes (or nothing) for on, 0, false or no for off`,
    name,
  );
}
