/**
 * The one place that maps error codes to HTTP statuses, and writes error
 * responses as JSON `{ code, message }` (plus `field` for validation), with
 * the headers some statuses need (`WWW-Authenticate` on 401, `Allow` on
 * 405, `Retry-After` on 429).
 */
import type { OutgoingHttpHeaders, ServerResponse } from "node:http";

import {
  LorneError,
  MethodNotAllowedError,
  RateLimitedError,
  type ErrorCode,
} from "../../errors.js";

const STATUS: Record<ErrorCode, number> = {
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  validation_error: 400,
  protocol_error: 400,
  unavailable: 503,
  forbidden: 403,
  unauthorized: 401,
  rate_limited: 429,
  internal: 500,
};

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  field?: string;
}

/** The HTTP status, extra headers and JSON body for any thrown value. */
export function errorResponse(err: unknown): {
  status: number;
  headers: OutgoingHttpHeaders;
  body: ErrorBody;
} {
  if (err instanceof LorneError) {
    const body: ErrorBody = { code: err.code, message: err.message };
    const field = (err as { field?: unknown }).field;
    if (typeof field === "string") body.field = field;
    return { status: STATUS[err.code], headers: errorHeaders(err), body };
  }
  return {
    status: 500,
    headers: {},
    body: { code: "internal", message: "Internal error; see the host's log" },
  };
}

/** Writes `err` as a JSON error response, unless headers went out already. */
export function sendError(res: ServerResponse, err: unknown): void {
  const { status, headers, body } = errorResponse(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, body, headers);
}

/** Writes a JSON response. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: OutgoingHttpHeaders = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

// RFC 6750 section 3: a 401 names the scheme the client should use.
function errorHeaders(err: LorneError): OutgoingHttpHeaders {
  if (err.code === "unauthorized") {
    return { "www-authenticate": 'Bearer realm="lorne"' };
  }
  if (err instanceof RateLimitedError) {
    return { "retry-after": String(err.retryAfterS) };
  }
  // RFC 9110 section 15.5.6: a 405 lists the methods the path takes.
  if (err instanceof MethodNotAllowedError) {
    return { allow: err.allowed.join(", ") };
  }
  return {};
}
