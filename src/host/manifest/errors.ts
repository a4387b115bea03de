/**
 * Builds the messages of manifest errors, so that every one reads the same:
 * `Manifest "<file>": service "<id>": field "<name>": <reason>`, with the
 * file left out when unknown and the service named by its position,
 * `services[3]`, when it has no usable id.
 */
import { ValidationError } from "../../errors.js";

import type { JsonValue } from "./json.js";
import type { TemplateError } from "./template/errors.js";

/** Says which manifest (and which service in it) an error is about. */
export function manifestSubject(source?: string, service?: string): string {
  const file = source === undefined ? "" : ` ${JSON.stringify(source)}`;
  if (service === undefined) return `Manifest${file}`;
  return source === undefined
    ? `Manifest ${service}`
    : `Manifest${file}: ${service}`;
}

/** `service "web"`, or `services[3]` when the id is missing or invalid. */
export function serviceLabel(index: number, id?: string): string {
  return id === undefined
    ? `services[${index}]`
    : `service ${JSON.stringify(id)}`;
}

/** The path of a field for ValidationError.field: `services[3].args[1]`. */
export function fieldPath(index: number, field?: string): string {
  if (field === undefined) return `services[${index}]`;
  return `services[${index}]${field.startsWith("[") ? "" : "."}${field}`;
}

/** `<subject>: field "<field>": <reason>`, or without the field part. */
export function manifestError(
  subject: string,
  field: string | undefined,
  reason: string,
  path?: string,
  cause?: unknown,
): ValidationError {
  const where = field === undefined ? "" : ` field ${JSON.stringify(field)}:`;
  const options = cause === undefined ? undefined : { cause };
  return new ValidationError(`${subject}:${where} ${reason}`, path, options);
}

/** `<subject>: field "<template name>" at <line>:<col>: <reason>`. */
export function templateFieldError(
  subject: string,
  err: TemplateError,
  path: string,
): ValidationError {
  const { line, col } = err.position;
  const field = JSON.stringify(err.templateName ?? "template");
  return new ValidationError(
    `${subject}: field ${field} at ${line}:${col}: ${err.reason}`,
    path,
    { cause: err },
  );
}

/** Names a JSON value's kind: "a string", "an array", "null". */
export function describeJson(value: JsonValue): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return typeof value === "number" ? "a number" : `a ${typeof value}`;
}
