/**
 * A host's cluster settings and the parsers for them, apart from the etcd
 * client so that `lorne host` reads its flags without loading gRPC.
 */
import { durationMs } from "../duration.js";
import { ValidationError } from "../errors.js";
import { parseWhole } from "../numbers.js";

/** The endpoint used when neither a flag nor LORNE_ETCD names one. */
export const DEFAULT_ETCD = "http://127.0.0.1:2379";

/** Lease TTL of a host's registration when none is given. */
export const DEFAULT_LEASE_TTL_S = 10;

/** Longest lease TTL accepted, in seconds (a day). */
export const MAX_LEASE_TTL_S = 86_400;

/** How long a finished job stays in etcd when none is given: a day. */
export const DEFAULT_FINISHED_RETENTION_MS = 86_400_000;

/** Longest retention accepted: 3650 days, about ten years. */
export const MAX_FINISHED_RETENTION_MS = 3_650 * 86_400_000;

/** How many finished jobs stay in etcd at most when none is given. */
export const DEFAULT_FINISHED_MAX = 10_000;

/** Largest count bound accepted. */
export const MAX_FINISHED_MAX = 10_000_000;

/** The cluster settings of a host daemon. */
export interface ClusterSettings {
  endpoints: string[];
  /** Key prefix; default keys.ts's DEFAULT_PREFIX. */
  prefix?: string;
  /** host:port others reach the API at; default the address it listens on. */
  advertise?: string;
  /** Also run a scheduler in this process. */
  scheduler?: boolean;
  /** Default DEFAULT_LEASE_TTL_S. */
  leaseTtlS?: number;
  /** The scheduler's; default DEFAULT_FINISHED_RETENTION_MS; 0: forever. */
  finishedRetentionMs?: number;
  /** The scheduler's; default DEFAULT_FINISHED_MAX. */
  finishedMax?: number;
}

/**
 * Splits `URL[,URL...]` into endpoints. Each must be `http://host:port`
 * (TLS to etcd is not supported yet); a bare `host:port` gets http://.
 */
export function parseEndpoints(text: string, source = "--etcd"): string[] {
  const endpoints = text
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "")
    .map((part) => (/^[a-z]+:\/\//i.test(part) ? part : `http://${part}`));
  if (endpoints.length === 0) {
    throw new ValidationError(
      `Invalid ${source} "${text}": expected URL[,URL...], e.g. ${DEFAULT_ETCD}`,
      "etcd",
    );
  }
  for (const endpoint of endpoints) {
    if (!/^http:\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s[\]]+):\d{1,5}$/.test(endpoint)) {
      throw new ValidationError(
        `Invalid ${source} endpoint "${endpoint}": expected http://host:port ` +
          "(https is not supported)",
        "etcd",
      );
    }
  }
  return endpoints;
}

/**
 * `host:port` (a name, an IPv4 address or a bracketed IPv6 address) that
 * other machines can reach; it is not looked up here.
 */
export function parseAdvertise(text: string, source = "--advertise"): string {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/.exec(text);
  if (!match || Number(match[2]) < 1 || Number(match[2]) > 65_535) {
    throw new ValidationError(
      `Invalid ${source} "${text}": expected host:port, e.g. 10.0.0.5:1113`,
      "advertise",
    );
  }
  return text;
}

/**
 * A lease TTL in whole seconds. etcd rounds anything under its minimum
 * (about 2 s with default timings) up to that minimum.
 */
export function parseLeaseTtl(text: string, source = "--lease-ttl-s"): number {
  return parseWhole(text, source, "lease-ttl-s", {
    min: 1,
    max: MAX_LEASE_TTL_S,
    unit: "seconds",
  });
}

/**
 * How long finished jobs are kept: a duration such as `90s`, `30m`, `24h`
 * or `7d`, or `0` to keep them forever. Not a timer, so it may exceed the
 * longest delay a Node timer holds.
 */
export function parseFinishedRetention(
  text: string,
  source = "--finished-retention",
): number {
  const ms = durationMs(text);
  if (!(ms <= MAX_FINISHED_RETENTION_MS)) {
    throw new ValidationError(
      `Invalid ${source} "${text}": expected a duration such as 90s, 30m, ` +
        "24h or 1d12h, up to 3650d, or 0 to keep finished jobs forever",
      "finished-retention",
    );
  }
  return ms;
}

/** The most finished jobs kept: a whole number from 1 to MAX_FINISHED_MAX. */
export function parseFinishedMax(
  text: string,
  source = "--finished-max",
): number {
  return parseWhole(text, source, "finished-max", {
    min: 1,
    max: MAX_FINISHED_MAX,
    unit: "jobs",
  });
}
