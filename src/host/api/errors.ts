/**
 * The one place that maps error codes to HTTP statuses, and writes error
 * responses as JSON `{ code, message }` (plus `field` for validation).
 */
import type { ServerResponse } from "node:http";

import { LorneError, type ErrorCode } from "../../errors.js";

const STATUS: Record<ErrorCode, number> = {
  not_found: 404,
  conflict: 409,
  validation_error: 400,
  protocol_error: 400,
  unavailable: 503,
  forbidden: 403,
  internal: 500,
};

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  field?: string;
}

/** The HTTP status and JSON body for any thrown value. */
export function errorResponse(err: unknown): {
  status: number;
  body: ErrorBody;
} {
  if (err instanceof LorneError) {
    const body: ErrorBody = { code: err.code, message: err.message };
    const field = (err as { field?: unknown }).field;
    if (typeof field === "string") body.field = field;
    return { status: STATUS[err.code], body };
  }
  return {
    status: 500,
    body: { code: "internal", message: "Internal error; see the host's log" },
  };
}

/** Writes `err` as a JSON error response, unless headers went out already. */
export function sendError(res: ServerResponse, err: unknown): void {
  const { status, body } = errorResponse(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, body);
}

/** Writes a JSON response. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}
