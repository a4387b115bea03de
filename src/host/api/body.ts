/**
 * Reads and parses a JSON request body with a size limit, turning every
 * problem (wrong content type, too large, not JSON, a key given twice)
 * into a ValidationError. The manifest's strict parser reads it: an
 * object with two equal keys is refused rather than taking the last, so
 * a body means one thing to every reader, and errors carry a position.
 */
import type { IncomingMessage } from "node:http";

import { errorMessage, ValidationError } from "../../errors.js";
import { parseJson } from "../manifest/json.js";

/** Largest request body accepted. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Reads the body and parses it as JSON. */
export async function readJson(
  req: IncomingMessage,
  maxBytes = MAX_BODY_BYTES,
): Promise<unknown> {
  // Required, so a web page cannot send a body without a CORS preflight.
  const type = req.headers["content-type"];
  if (type === undefined || !/^application\/json\s*(;|$)/i.test(type)) {
    req.resume();
    throw new ValidationError(
      `Invalid request: content-type must be application/json, got ${type === undefined ? "none" : `"${type}"`}`,
      "content-type",
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      req.resume();
      throw new ValidationError(
        `Invalid request: body exceeds ${maxBytes} bytes`,
        "body",
      );
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") {
    throw new ValidationError("Invalid request: body is empty", "body");
  }
  try {
    return parseJson(text);
  } catch (err) {
    throw new ValidationError(
      `Invalid request: body is not JSON: ${errorMessage(err)}`,
      "body",
      { cause: err },
    );
  }
}
