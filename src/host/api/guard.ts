/**
 * Checks every request (and WebSocket upgrade) before routing. The API is
 * for programs, not web pages: a request that carries an `Origin` header
 * (browsers add it to cross-site and WebSocket requests) is refused, and so
 * is a `Host` that is not an address or `localhost`, which stops DNS
 * rebinding from reaching a loopback API through a page's own name. Body
 * requests must say `application/json` (api/body.ts), which a page cannot
 * send cross-site without a preflight this API never answers.
 */
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";

import { ForbiddenError, ValidationError } from "../../errors.js";

/** The request's URL, or a ValidationError for a malformed target. */
export function requestUrl(req: IncomingMessage): URL {
  const target = req.url ?? "/";
  if (!target.startsWith("/")) {
    throw new ValidationError(
      `Invalid request target ${JSON.stringify(target.slice(0, 100))}: must be a path`,
      "path",
    );
  }
  try {
    return new URL(target, "http://host");
  } catch {
    throw new ValidationError(
      `Invalid request target ${JSON.stringify(target.slice(0, 100))}`,
      "path",
    );
  }
}

/** Refuses browser-originated and rebound requests; see module comment. */
export function checkOrigin(req: IncomingMessage): void {
  if (req.headers.origin !== undefined) {
    throw new ForbiddenError(
      "Requests from web pages are refused: the request has an Origin header",
    );
  }
  const host = req.headers.host;
  if (host === undefined) return;
  const name = hostName(host);
  if (name !== "localhost" && isIP(name) === 0) {
    throw new ForbiddenError(
      `Host header ${JSON.stringify(host.slice(0, 100))} is not an address of this host`,
    );
  }
}

function hostName(host: string): string {
  if (host.startsWith("[")) return host.slice(1, host.indexOf("]"));
  const colon = host.lastIndexOf(":");
  return (colon >= 0 ? host.slice(0, colon) : host).toLowerCase();
}
