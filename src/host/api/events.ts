/**
 * GET /events — the host's event log as server-sent events. Each frame has
 * `id:` (the sequence number), `event:` (create, start, stop, error) and
 * `data:` (the event as JSON). `?job=ID` filters; a client resumes after
 * the id in `Last-Event-ID` (or `?last_event_id=`).
 *
 * Every subscriber has a bounded buffer. One that falls behind (a client
 * that stops reading) gets a final frame `event: error` with data
 * `{"code":"lagging",...}` and is cut off, so it never slows the host or
 * other subscribers; it can reconnect and resume. A resume from an id the
 * host no longer keeps starts with `event: error`, `{"code":"events_lost"}`
 * naming the missing range. Neither frame has an `id:`.
 *
 * Numbers count within one event log, named by the `lorne-event-log`
 * response header; a client that resumes passes it back as `?log=`. A
 * resume from another log (the host's started again: a memory store, a
 * new state dir), or from a number past the newest, gets `events_reset`
 * and every event kept.
 */
import { ValidationError } from "../../errors.js";
import { EVENT_LOG_HEADER } from "../client.js";
import { validateJobId } from "../job.js";
import type { JobEvent } from "../events.js";
import type { Host } from "../host.js";
import type { RouteContext } from "./router.js";

const KEEPALIVE_MS = 15_000;
/** Bytes queued for one subscriber before it is cut off. */
export const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
/** How long a cut-off subscriber gets to read its final frame. */
const CLOSE_GRACE_MS = 5_000;

// One frame per event, shared by every subscriber.
const frames = new WeakMap<JobEvent, string>();

/** The route handler. */
export function getEvents(host: Host, ctx: RouteContext): void {
  const { req, res, query } = ctx;
  const job = query.get("job");
  const jobId = job === null ? undefined : validateJobId(job, "job");
  let after = parseEventId(
    req.headers["last-event-id"] ?? query.get("last_event_id") ?? undefined,
  );
  const log = query.get("log");
  if (log !== null && !/^[0-9a-f]{1,64}$/.test(log)) {
    throw new ValidationError(
      `Invalid log ${JSON.stringify(log)}: expected the event log id a ` +
        "stream's lorne-event-log header gave",
      "log",
    );
  }

  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    [EVENT_LOG_HEADER]: host.events.logId,
  });
  res.write(": lorne events\n\n");
  const newest = host.events.lastId;
  // The client's number counts in another log (this one started again: a
  // memory store, a new state dir), or past anything this one gave out:
  // everything kept is new to it, so it gets all of it.
  const otherLog = log !== null && log !== host.events.logId;
  if (after !== undefined && (otherLog || after > newest)) {
    const why = otherLog
      ? `Event ${after} is from another event log than this host's ` +
        "(the log started again)"
      : `Event ${after} is past this host's newest (${newest}): its event ` +
        "log started again, or the number is wrong";
    res.write(notice("events_reset", `${why}; replaying all it keeps`));
    after = 0;
  }
  const oldest = host.events.oldestId;
  if (after !== undefined && after + 1 < oldest) {
    res.write(
      notice(
        "events_lost",
        `Events ${after + 1}-${oldest - 1} are no longer kept`,
      ),
    );
  }

  let unsubscribe = () => undefined as unknown;
  const cutOff = () => {
    unsubscribe();
    const message = `Subscriber fell behind by more than ${MAX_QUEUED_BYTES} bytes; reconnect to resume`;
    res.end(notice("lagging", message));
    setTimeout(() => res.destroy(), CLOSE_GRACE_MS).unref();
  };
  const send = (event: JobEvent) => {
    if (res.writableEnded) return;
    if (res.writableLength > MAX_QUEUED_BYTES) return cutOff();
    res.write(formatEvent(event));
  };
  unsubscribe = host.events.subscribe(send, { jobId }, after);
  const keepalive = setInterval(() => {
    if (!res.writableEnded) res.write(": keepalive\n\n");
  }, KEEPALIVE_MS);
  res.once("close", () => {
    clearInterval(keepalive);
    unsubscribe();
  });
}

/** One SSE frame for an event. */
export function formatEvent(event: JobEvent): string {
  let frame = frames.get(event);
  if (frame === undefined) {
    frame = `id: ${event.id}\nevent: ${event.event}\ndata: ${JSON.stringify(event)}\n\n`;
    frames.set(event, frame);
  }
  return frame;
}

function notice(code: string, message: string): string {
  return `event: error\ndata: ${JSON.stringify({ code, message })}\n\n`;
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
