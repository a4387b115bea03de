/**
 * Error reports as records. The first record reads `at=exception
 * class=<constructor name> message=<text>` over the merged data (context,
 * the error's own `data` object, call data); then one record per stack
 * frame with `site=<frame>` (at most MAX_SITES; then one record with
 * `sites_omitted=<count>`). Each error in the `cause` chain follows with
 * the same pairs plus `cause=<depth>` (1 for the direct cause), its own
 * class, message and sites. An error whose `reportable` property is
 * `false` is not reported at all. Nothing here throws, whatever is thrown
 * or passed as data: an unreadable value is described as "[Throws]".
 */
import type { Data } from "./types.js";

import { THROWS, copyData } from "./data.js";
import { errorText, safeJson } from "./value.js";

/** Causes followed at most; deeper ones are left out. */
const MAX_CAUSE_DEPTH = 8;
/** Most stack frames reported per error; the rest are counted. */
export const MAX_SITES = 100;

/** False when `err` carries `reportable: false`. */
export function isReportable(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return true;
  try {
    return (err as { reportable?: unknown }).reportable !== false;
  } catch {
    return true;
  }
}

/**
 * The records reporting `err`: first the summary line, then sites, then
 * each cause with its sites. `context` is never changed.
 */
export function reportRecords(
  context: Data,
  err: unknown,
  data: Data | undefined,
): Data[] {
  const records: Data[] = [];
  const seen = new Set<unknown>();
  let base: Data = copyData(context);
  let current: unknown = err;

  for (let depth = 0; depth <= MAX_CAUSE_DEPTH; depth++) {
    seen.add(current);
    base = copyData(base, ownData(current));
    const head: Data = copyData(base, data);
    head.at = "exception";
    if (depth > 0) head.cause = depth;
    head.class = className(current);
    head.message = messageOf(current);
    records.push(head);
    const sites = stackSites(current);
    for (const site of sites.slice(0, MAX_SITES)) {
      records.push({ ...head, site });
    }
    // A stack of thousands of frames (stackTraceLimit raised, deep
    // recursion) is said in one line, not thousands.
    if (sites.length > MAX_SITES) {
      records.push({ ...head, sites_omitted: sites.length - MAX_SITES });
    }

    const cause = causeOf(current);
    if (cause === undefined || cause === null || seen.has(cause)) break;
    current = cause;
  }
  return records;
}

/** The constructor's name: `TypeError`, `String` for a thrown string. */
export function className(err: unknown): string {
  if (err === null) return "null";
  if (err === undefined) return "undefined";
  try {
    const ctor: unknown = (Object(err) as { constructor?: unknown })
      .constructor;
    if (typeof ctor === "function" && ctor.name) return ctor.name;
  } catch {
    // A hostile object: fall through to its type.
  }
  return typeof err === "object" ? "Object" : typeof err;
}

/**
 * The message of an Error, the text of a string, JSON of other objects;
 * "[Throws]" for a value that cannot be read at all (a revoked Proxy).
 */
export function messageOf(err: unknown): string {
  if (typeof err === "string") return err;
  try {
    if (err instanceof Error) return errorText(err);
  } catch {
    return THROWS; // instanceof read the prototype of a hostile Proxy
  }
  if (typeof err === "object" && err !== null) {
    try {
      const message: unknown = (err as { message?: unknown }).message;
      if (typeof message === "string") return message;
    } catch {
      // Fall back to JSON below.
    }
    return safeJson(err);
  }
  try {
    return String(err); // a function's source text may be unreadable
  } catch {
    return THROWS;
  }
}

/** Frames of a V8 stack, without the leading `at `. */
export function stackSites(err: unknown): string[] {
  if (typeof err !== "object" || err === null) return [];
  let stack: unknown;
  try {
    stack = (err as { stack?: unknown }).stack;
  } catch {
    return [];
  }
  if (typeof stack !== "string") return [];
  let header = "";
  try {
    if (err instanceof Error) header = String(err);
  } catch {
    // Error.prototype.toString read a throwing getter: scan every line.
  }

  // Skip the `Name: message` header so message lines never read as frames.
  const frames = stack.startsWith(header) ? stack.slice(header.length) : stack;
  const sites: string[] = [];
  for (const line of frames.split("\n")) {
    const trimmed = line.trim();
    if (trimmed.startsWith("at ")) sites.push(trimmed.slice(3));
  }
  return sites;
}

/** The error's own `data` object, when it has one that is not an array. */
function ownData(err: unknown): unknown {
  if (typeof err !== "object" || err === null) return undefined;
  try {
    const data: unknown = (err as { data?: unknown }).data;
    if (typeof data !== "object" || data === null) return undefined;
    return Array.isArray(data) ? undefined : data;
  } catch {
    return undefined; // a getter threw, or Array.isArray met a revoked Proxy
  }
}

function causeOf(err: unknown): unknown {
  if (typeof err !== "object" || err === null) return undefined;
  try {
    return "cause" in err ? (err as { cause?: unknown }).cause : undefined;
  } catch {
    return undefined;
  }
}
