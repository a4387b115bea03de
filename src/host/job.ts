/**
 * The job model: the spec a client submits, the record the host keeps, and
 * the status machine between them. Validation of untrusted specs lives here
 * so the API, the manifest and the CLI share one set of rules and messages.
 */
import { randomUUID } from "node:crypto";
import { constants as osConstants } from "node:os";

import { ValidationError } from "../errors.js";
import { setKey } from "../log/data.js";
import { isWholeIn } from "../numbers.js";
import { validateEnv, validateSecretNames } from "./env.js";

/** Upper bound on `config.tcp_ports` for one job. */
export const MAX_TCP_PORTS = 64;

/** Smallest memory limit accepted (the engine refuses less than 6 MiB). */
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;

const ID_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;
/** Largest metadata, counted as JSON. */
export const MAX_METADATA_BYTES = 64 * 1024;

/** What a job runs; snake_case because it is the wire format. */
export interface JobConfig {
  /** Arguments; with `entrypoint` they follow it, otherwise cmd[0] runs. */
  cmd: string[];
  entrypoint?: string[];
  env?: Record<string, string>;
  /**
   * Names of `env` entries whose values are secret: the job gets them,
   * but records, events, API answers and logs show "<redacted>" (env.ts).
   */
  secret_env?: string[];
  working_dir?: string;
  /** How many TCP ports to allocate from the host's range. */
  tcp_ports?: number;
  stdin?: boolean;
  /** Container image; required by the docker backend. */
  image?: string;
  /** Allocate a TTY (docker backend). */
  tty?: boolean;
  /** Memory limit in bytes (docker backend). */
  memory_bytes?: number;
}

/** A job as submitted through the API, the CLI or the manifest. */
export interface JobSpec {
  id?: string;
  metadata?: Record<string, string>;
  config: JobConfig;
}

export type JobStatus =
  "starting" | "running" | "done" | "crashed" | "stopped" | "failed";

/** A job as the host records and reports it. */
export interface JobRecord {
  id: string;
  host_id: string;
  status: JobStatus;
  config: JobConfig;
  metadata: Record<string, string>;
  pid: number | null;
  ports: number[];
  /** Exit code; null while unknown (running, or killed by a signal). */
  exit_status: number | null;
  /** Name of the signal that ended the job, e.g. "SIGKILL". */
  signal: string | null;
  /** The kernel killed the job for using too much memory. */
  oom_killed: boolean;
  error: string | null;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
}

/** Every status, in the order a job goes through them. */
export const JOB_STATUSES: readonly JobStatus[] = [
  "starting",
  "running",
  "done",
  "crashed",
  "stopped",
  "failed",
];

/** Statuses a job never leaves. */
export const FINAL_STATUSES: ReadonlySet<JobStatus> = new Set([
  "done",
  "crashed",
  "stopped",
  "failed",
]);

const TRANSITIONS: Record<JobStatus, readonly JobStatus[]> = {
  starting: ["running", "failed", "stopped"],
  running: ["done", "crashed", "stopped"],
  done: [],
  crashed: [],
  stopped: [],
  failed: [],
};

/** Whether the status machine allows `from` -> `to`. */
export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** True once a job has ended, whichever way. */
export function isFinal(status: JobStatus): boolean {
  return FINAL_STATUSES.has(status);
}

/** A new job id: 32 hex characters. */
export function newJobId(): string {
  return randomUUID().replaceAll("-", "");
}

/**
 * Checks a job id. Ids become directory names, so besides the character
 * set, ids made only of dots are refused.
 */
export function validateJobId(
  id: unknown,
  field = "id",
  what = "job id",
): string {
  if (typeof id !== "string" || !ID_PATTERN.test(id) || /^\.+$/.test(id)) {
    throw new ValidationError(
      `Invalid ${what} ${JSON.stringify(id)}: ` +
        "must be 1-128 characters of A-Z a-z 0-9 _ . - and not only dots",
      field,
    );
  }
  return id;
}

/**
 * Validates an untrusted job spec (a parsed JSON body) and returns a clean
 * copy holding only known fields. Errors name the offending field.
 */
export function validateJobSpec(body: unknown): JobSpec {
  const spec = expectObject(body, "body");
  rejectUnknown(spec, ["id", "metadata", "config"], "");
  const config = expectObject(spec.config, "config");
  rejectUnknown(
    config,
    [
      "cmd",
      "entrypoint",
      "env",
      "secret_env",
      "working_dir",
      "tcp_ports",
      "stdin",
      "image",
      "tty",
      "memory_bytes",
    ],
    "config.",
  );

  const out: JobSpec = { config: { cmd: [] } };
  if (spec.id !== undefined) out.id = validateJobId(spec.id);
  if (spec.metadata !== undefined) {
    out.metadata = expectStringMap(spec.metadata, "metadata");
    const bytes = Buffer.byteLength(JSON.stringify(out.metadata));
    if (bytes > MAX_METADATA_BYTES) {
      throw new ValidationError(
        `Invalid metadata: ${bytes} bytes as JSON, more than ${MAX_METADATA_BYTES}`,
        "metadata",
      );
    }
  }

  const cmd =
    config.cmd === undefined ? [] : expectStrings(config.cmd, "config.cmd");
  out.config.cmd = cmd;
  if (config.entrypoint !== undefined) {
    out.config.entrypoint = expectStrings(
      config.entrypoint,
      "config.entrypoint",
    );
  }
  if (config.image !== undefined) {
    out.config.image = expectNonEmptyString(config.image, "config.image");
  }
  const argvLength = cmd.length + (out.config.entrypoint?.length ?? 0);
  if (argvLength === 0 && out.config.image === undefined) {
    throw new ValidationError(
      "Invalid config.cmd: a job needs a command (cmd or entrypoint)",
      "config.cmd",
    );
  }
  const [programField, program] = out.config.entrypoint?.length
    ? ["config.entrypoint[0]", out.config.entrypoint[0]]
    : ["config.cmd[0]", cmd[0]];
  if (program === "") {
    throw new ValidationError(
      `Invalid ${programField}: the program to run must not be empty`,
      programField,
    );
  }
  if (config.env !== undefined) out.config.env = validateEnv(config.env);
  if (config.secret_env !== undefined) {
    const names = expectStrings(config.secret_env, "config.secret_env");
    out.config.secret_env = validateSecretNames(names, out.config.env ?? {});
  }
  if (config.working_dir !== undefined) {
    out.config.working_dir = expectAbsolutePath(
      config.working_dir,
      "config.working_dir",
    );
  }
  if (config.tcp_ports !== undefined) {
    out.config.tcp_ports = expectPortCount(config.tcp_ports);
  }
  for (const flag of ["stdin", "tty"] as const) {
    const value = config[flag];
    if (value === undefined) continue;
    if (typeof value !== "boolean") {
      throw typeError(`config.${flag}`, "a boolean", value);
    }
    out.config[flag] = value;
  }
  if (config.memory_bytes !== undefined) {
    const bytes = config.memory_bytes;
    if (
      typeof bytes !== "number" ||
      !Number.isSafeInteger(bytes) ||
      bytes < MIN_MEMORY_BYTES
    ) {
      throw typeError(
        "config.memory_bytes",
        `a whole number of bytes, at least ${MIN_MEMORY_BYTES}`,
        bytes,
      );
    }
    out.config.memory_bytes = bytes;
  }
  return out;
}

/**
 * Validates a signal request body `{ "signal": "SIGHUP" }`; the name may
 * leave out the SIG prefix. Returns the full name.
 */
export function parseSignal(body: unknown): NodeJS.Signals {
  const object = expectObject(body, "body");
  rejectUnknown(object, ["signal"], "");
  const value = object.signal;
  if (typeof value !== "string") throw typeError("signal", "a string", value);
  const upper = value.toUpperCase();
  const name = upper.startsWith("SIG") ? upper : `SIG${upper}`;
  if (!(name in osConstants.signals)) {
    throw new ValidationError(
      `Invalid signal ${JSON.stringify(value)}: not a signal this system knows`,
      "signal",
    );
  }
  return name as NodeJS.Signals;
}

/** The argv a job runs: entrypoint, then cmd. */
export function jobArgv(config: JobConfig): string[] {
  return [...(config.entrypoint ?? []), ...config.cmd];
}

function expectPortCount(value: unknown): number {
  if (!isWholeIn(value, 0, MAX_TCP_PORTS)) {
    throw new ValidationError(
      `Invalid config.tcp_ports: must be an integer from 0 to ` +
        `${MAX_TCP_PORTS}, got ${describe(value)}`,
      "config.tcp_ports",
    );
  }
  return value;
}

function expectObject(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw typeError(field, "an object", value);
  }
  return value as Record<string, unknown>;
}

function expectStrings(value: unknown, field: string): string[] {
  if (!Array.isArray(value)) throw typeError(field, "an array", value);
  value.forEach((item: unknown, i) => {
    if (typeof item !== "string" || item.includes("\0")) {
      throw typeError(`${field}[${i}]`, "a string without NUL", item);
    }
  });
  return [...(value as string[])];
}

function expectStringMap(
  value: unknown,
  field: string,
): Record<string, string> {
  const map = expectObject(value, field);
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(map)) {
    if (typeof item !== "string" || item.includes("\0")) {
      throw typeError(`${field}.${key}`, "a string without NUL", item);
    }
    setKey(out, key, item); // "__proto__" stays data
  }
  return out;
}

function expectNonEmptyString(value: unknown, field: string): string {
  if (typeof value !== "string" || value === "" || value.includes("\0")) {
    throw typeError(field, "a non-empty string", value);
  }
  return value;
}

// The job runs on the host: a relative directory would be taken from the
// daemon's own working directory, which means nothing to the client.
function expectAbsolutePath(value: unknown, field: string): string {
  const path = expectNonEmptyString(value, field);
  if (!path.startsWith("/")) {
    throw new ValidationError(
      `Invalid ${field} ${JSON.stringify(path)}: expected an absolute path ` +
        "(the job runs on the host, not where the request came from)",
      field,
    );
  }
  return path;
}

function rejectUnknown(
  object: Record<string, unknown>,
  known: readonly string[],
  prefix: string,
): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) {
      throw new ValidationError(
        `Unknown field ${prefix}${key}: expected one of ` +
          known.map((k) => prefix + k).join(", "),
        prefix + key,
      );
    }
  }
}

function typeError(field: string, expected: string, value: unknown) {
  if (value === undefined) {
    return new ValidationError(`Missing ${field}: must be ${expected}`, field);
  }
  return new ValidationError(
    `Invalid ${field}: must be ${expected}, got ${describe(value)}`,
    field,
  );
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") return String(value);
  return `a ${typeof value}`;
}
