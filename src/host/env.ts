/**
 * A job's environment as a spec gives it: names and values checked, the
 * total bounded, and values marked secret (`config.secret_env`) kept out
 * of everything the host shows. Env values may be secrets whether marked
 * or not, so no error here ever quotes one.
 */
import { ValidationError } from "../errors.js";
import { setKey } from "../log/data.js";
import type { JobSpec } from "./job.js";

/**
 * Largest job environment, counted as the kernel does (NAME=value plus a
 * NUL each); well under Linux's 2 MiB for arguments and environment.
 */
export const MAX_ENV_BYTES = 128 * 1024;

/** What records, events, API answers and logs show for a secret value. */
export const REDACTED = "<redacted>";

const NAME_PATTERN = /^[^=\0]+$/;
/** Variables the host gives every job; a spec may not set them. */
const RESERVED =
  /^(PORT|PORT_\d+|EXTERNAL_IP|LORNE_JOB_ID|LORNE_HOST_ID|LORNE_ETCD)$/;

/** Validates `config.env` (a parsed JSON value); returns a clean copy. */
export function validateEnv(value: unknown): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ValidationError(
      `Invalid config.env: must be an object, got ${typeName(value)}`,
      "config.env",
    );
  }
  const out: Record<string, string> = {};
  let bytes = 0;
  for (const [name, item] of Object.entries(value)) {
    const field = `config.env.${name}`;
    if (!NAME_PATTERN.test(name)) {
      throw new ValidationError(
        `Invalid config.env: name ${JSON.stringify(name)} ` +
          "must be non-empty without = or NUL",
        field,
      );
    }
    if (RESERVED.test(name)) {
      throw new ValidationError(`Invalid ${field}: the host sets it`, field);
    }
    if (typeof item !== "string" || item.includes("\0")) {
      const got = typeof item === "string" ? "one with NUL" : typeName(item);
      throw new ValidationError(
        `Invalid ${field}: must be a string without NUL, got ${got}`,
        field,
      );
    }
    bytes += Buffer.byteLength(name) + Buffer.byteLength(item) + 2;
    if (bytes > MAX_ENV_BYTES) {
      throw new ValidationError(
        `Invalid config.env: more than ${MAX_ENV_BYTES} bytes as NAME=value`,
        "config.env",
      );
    }
    setKey(out, name, item); // "__proto__" stays data
  }
  return out;
}

/** Checks `config.secret_env`: each a name in `env`, none twice. */
export function validateSecretNames(
  names: string[],
  env: Record<string, string>,
): string[] {
  names.forEach((name, i) => {
    const field = `config.secret_env[${i}]`;
    if (!Object.hasOwn(env, name)) {
      throw new ValidationError(
        `Invalid ${field}: ${JSON.stringify(name)} is not a name in config.env`,
        field,
      );
    }
    if (names.indexOf(name) !== i) {
      throw new ValidationError(
        `Invalid ${field}: ${JSON.stringify(name)} is listed twice`,
        field,
      );
    }
  });
  return names;
}

/**
 * A copy of a spec whose secret env values read REDACTED: what the host
 * records, reports and logs. The spec itself is left alone.
 */
export function redactSpec(spec: JobSpec): JobSpec {
  const secret = spec.config.secret_env;
  const env = spec.config.env;
  if (!secret?.length || env === undefined) return spec;
  const shown: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    setKey(shown, name, secret.includes(name) ? REDACTED : value);
  }
  return { ...spec, config: { ...spec.config, env: shown } };
}

/** What the host assigns a job besides its spec's env; see jobEnv. */
export interface HostAssignedEnv {
  jobId: string;
  hostId: string;
  ports: readonly number[];
  /** Given as EXTERNAL_IP when set. */
  externalIp?: string;
  /** More variables for every job (HostOptions.jobEnv), all RESERVED. */
  extra?: Record<string, string>;
}

/**
 * The environment a job starts with: its spec's env, secret values
 * included (this goes to the backend only), then the RESERVED variables
 * the host assigns, which the job's own env never overrides.
 */
export function jobEnv(
  spec: JobSpec,
  assigned: HostAssignedEnv,
): Record<string, string> {
  const env: Record<string, string> = { ...spec.config.env };
  const { ports } = assigned;
  if (ports[0] !== undefined) env.PORT = String(ports[0]);
  ports.forEach((port, i) => (env[`PORT_${i}`] = String(port)));
  if (assigned.externalIp) env.EXTERNAL_IP = assigned.externalIp;
  Object.assign(env, assigned.extra);
  env.LORNE_JOB_ID = assigned.jobId;
  env.LORNE_HOST_ID = assigned.hostId;
  return env;
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}
