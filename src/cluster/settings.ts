/**
 * A host's cluster settings and the parsers for them, apart from the etcd
 * client so that `lorne host` reads its flags without loading gRPC.
 */
import { ValidationError } from "../errors.js";

/** The endpoint used when neither a flag nor LORNE_ETCD names one. */
export const DEFAULT_ETCD = "http://127.0.0.1:2379";

/** Lease TTL of a host's registration when none is given. */
export const DEFAULT_LEASE_TTL_S = 10;

/** Longest lease TTL accepted, in seconds (a day). */
export const MAX_LEASE_TTL_S = 86_400;

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
  const n = Number(text);
  if (!/^\d{1,6}$/.test(text) || n < 1 || n > MAX_LEASE_TTL_S) {
    throw new ValidationError(
      `Invalid ${source} "${text}": expected a whole number of seconds ` +
        `from 1 to ${MAX_LEASE_TTL_S}`,
      "lease-ttl-s",
    );
  }
  return n;
}
