/**
 * GET /events — the host's event log as server-sent events. Each frame has
 * `id:` (the sequence number), `event:` (create, start, stop, error) and
 * `data:` (the event as JSON). `?job=ID` filters; a client resumes after
 * the id in `Last-Event-ID` (or `?last_event_id=`). A client that stops
 * reading is disconnected once too much is queued for it; it can resume.
 */
import { ValidationError } from "../../errors.js";
import type { JobEvent } from "../events.js";
import type { Host } from "../host.js";
import type { RouteContext } from "./router.js";

const KEEPALIVE_MS = 15_000;
/** Queued bytes after which a client that does not read is dropped. */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

/** The route handler. */
export function getEvents(host: Host, ctx: RouteContext): void {
  const { req, res, query } = ctx;
  const jobId = query.get("job") ?? undefined;
  const after = parseEventId(
    req.headers["last-event-id"] ?? query.get("last_event_id") ?? undefined,
  );

  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  res.write(": lorne events\n\n");

  const send = (event: JobEvent) => {
    if (res.writableLength > MAX_QUEUED_BYTES) {
      res.destroy();
      return;
    }
    res.write(formatEvent(event));
  };
  const unsubscribe = host.events.subscribe(send, { jobId }, after);
  const keepalive = setInterval(
    () => res.write(": keepalive\n\n"),
    KEEPALIVE_MS,
  );
  res.once("close", () => {
    clearInterval(keepalive);
    unsubscribe();
  });
}

/** One SSE frame for an event. */
export function formatEvent(event: JobEvent): string {
  return `id: ${event.id}\nevent: ${event.event}\ndata: ${JSON.stringify(event)}\n\n`;
}

function parseEventId(
  value: string | string[] | undefined,
): number | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || !/^\d{1,15}$/.test(text)) {
    throw new ValidationError(
      `Invalid Last-Event-ID ${JSON.stringify(text)}: expected an event number`,
      "last_event_id",
    );
  }
  return Number(text);
}
