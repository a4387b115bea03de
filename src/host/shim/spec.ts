/**
 * What the daemon tells `lorne shim` to run, and where a shim job keeps
 * its files. The spec travels as one JSON line on the shim's stdin (never
 * on disk: a job's env may hold secrets); the shim checks it like any
 * other input and answers with one JSON line on its stdout.
 *
 *   <job dir>/stdout.log, stderr.log, output.idx   the output (output.ts)
 *   <job dir>/exit.json    how the job ended, written before it is told
 *   <job dir>/shim.pid     the shim's pid
 *   <job dir>/pid          the job's pid (its process group; statedir.ts)
 *   <state>/shims/<hash>.sock   the shim's control socket
 *
 * Socket paths are short hashes of the job id so that any job id fits in
 * a Unix socket address (108 bytes on Linux).
 */
import { createHash } from "node:crypto";
import { join } from "node:path";

import { ValidationError } from "../../errors.js";
import type { TtySize } from "../backend.js";

/** Longest socket path Linux takes (sun_path less its NUL). */
export const MAX_SOCKET_PATH_BYTES = 107;

export const EXIT_FILE = "exit.json";
export const SHIM_PID_FILE = "shim.pid";
export const SHIM_LOG_FILE = "shim.log";

export interface ShimSpec {
  jobId: string;
  /** The job's directory: output, exit file, shim pid file. */
  dir: string;
  /** Where the shim listens for the daemon. */
  socket: string;
  argv: string[];
  env: Record<string, string>;
  cwd?: string;
  tty: boolean;
  stdin: boolean;
  ttySize?: TtySize;
}

/** The shim's answer to a spec. */
export type ShimReply =
  /** `startedAt`: when the job was spawned, ISO 8601, by the shim's clock. */
  { ok: true; pid: number; startedAt?: string } | { ok: false; error: string };

/** The directory holding the shims' sockets. */
export function shimSocketDir(stateDir: string): string {
  return join(stateDir, "shims");
}

/** The control socket of one job's shim. */
export function shimSocketPath(stateDir: string, jobId: string): string {
  const hash = createHash("sha256").update(jobId).digest("hex").slice(0, 20);
  return join(shimSocketDir(stateDir), `${hash}.sock`);
}

/**
 * Refuses a state dir whose socket paths would not fit, before any job
 * depends on one.
 */
export function checkSocketPathFits(stateDir: string): void {
  const example = shimSocketPath(stateDir, "x");
  const bytes = Buffer.byteLength(example);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new ValidationError(
      `Cannot use state dir "${stateDir}": its job control sockets ` +
        `("${example}") would be ${bytes} bytes, more than the ` +
        `${MAX_SOCKET_PATH_BYTES} a Unix socket path may have; use a shorter path`,
      "state",
    );
  }
}

/** Checks a spec read from the daemon; errors name the field. */
export function parseShimSpec(line: string): ShimSpec {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new ValidationError(
      `Invalid shim spec: not JSON (${(err as Error).message})`,
      "spec",
    );
  }
  const spec = object(value, "spec");
  const argv = strings(spec.argv, "argv");
  if (argv.length === 0) throw invalid("argv", "must name a program");
  const env = object(spec.env, "env");
  for (const [key, item] of Object.entries(env)) {
    if (typeof item !== "string")
      throw invalid(`env.${key}`, "must be a string");
  }
  const out: ShimSpec = {
    jobId: string(spec.jobId, "jobId"),
    dir: string(spec.dir, "dir"),
    socket: string(spec.socket, "socket"),
    argv,
    env: env as Record<string, string>,
    tty: spec.tty === true,
    stdin: spec.stdin === true,
  };
  if (spec.cwd !== undefined) out.cwd = string(spec.cwd, "cwd");
  if (spec.ttySize !== undefined) {
    const size = object(spec.ttySize, "ttySize");
    out.ttySize = {
      rows: dimension(size.rows, "ttySize.rows"),
      cols: dimension(size.cols, "ttySize.cols"),
    };
  }
  return out;
}

function object(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(field, "must be an object");
  }
  return value as Record<string, unknown>;
}

function string(value: unknown, field: string): string {
  if (typeof value !== "string" || value === "") {
    throw invalid(field, "must be a non-empty string");
  }
  return value;
}

function strings(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw invalid(field, "must be an array of strings");
  }
  return value as string[];
}

function dimension(value: unknown, field: string): number {
  if (
    !Number.isInteger(value) ||
    (value as number) < 1 ||
    (value as number) > 65535
  ) {
    throw invalid(field, "must be an integer from 1 to 65535");
  }
  return value as number;
}

function invalid(field: string, problem: string): ValidationError {
  return new ValidationError(`Invalid shim spec: ${field} ${problem}`, field);
}
