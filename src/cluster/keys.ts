/**
 * Where the cluster keeps things in etcd. Every key lives under one prefix
 * (default `/lorne/`) so several clusters, or a cluster and other programs,
 * can share an etcd. The layout is documented in docs/cluster.md; this file
 * is the only place that spells it.
 */
import { ValidationError } from "../errors.js";

/** The key prefix used when none is given. */
export const DEFAULT_PREFIX = "/lorne/";

/** The kinds of key under the prefix, by their first path segment. */
export type KeyKind =
  "hosts" | "jobs" | "assignments" | "status" | "services" | "election";

const KINDS: readonly KeyKind[] = [
  "hosts",
  "jobs",
  "assignments",
  "status",
  "services",
  "election",
];

/** A key split into its kind and the segments after it. */
export interface ParsedKey {
  kind: KeyKind;
  parts: string[];
}

/** Builds and parses keys under one prefix; see the module comment. */
export class ClusterKeys {
  readonly prefix: string;

  constructor(prefix: string = DEFAULT_PREFIX) {
    this.prefix = validatePrefix(prefix);
  }

  /** `hosts/<id>`: a host's registration, bound to its lease. */
  host(id: string): string {
    return `${this.prefix}hosts/${id}`;
  }

  hosts(): string {
    return `${this.prefix}hosts/`;
  }

  /** `jobs/<id>`: the submitted spec and the desired state. */
  job(id: string): string {
    return `${this.prefix}jobs/${id}`;
  }

  jobs(): string {
    return `${this.prefix}jobs/`;
  }

  /** `assignments/<host>/<job>`: the scheduler placed the job there. */
  assignment(hostId: string, jobId: string): string {
    return `${this.prefix}assignments/${hostId}/${jobId}`;
  }

  /** Every assignment of one host, or of all hosts without an id. */
  assignments(hostId?: string): string {
    return hostId === undefined
      ? `${this.prefix}assignments/`
      : `${this.prefix}assignments/${hostId}/`;
  }

  /** `status/<job>`: where the job is and how it is doing. */
  status(jobId: string): string {
    return `${this.prefix}status/${jobId}`;
  }

  statuses(): string {
    return `${this.prefix}status/`;
  }

  /** `services/<name>/<job>`: a live instance, bound to its host's lease. */
  service(name: string, jobId: string): string {
    return `${this.prefix}services/${name}/${jobId}`;
  }

  services(name?: string): string {
    return name === undefined
      ? `${this.prefix}services/`
      : `${this.prefix}services/${name}/`;
  }

  /**
   * `retention`: the leader's retention of finished jobs. Not a kind:
   * `parse` and the change feed leave it out.
   */
  retention(): string {
    return `${this.prefix}retention`;
  }

  /** `election/scheduler/<lease>`: the schedulers' candidates. */
  election(): string {
    return `${this.prefix}election/`;
  }

  /** Splits a key under the prefix; null for anything else. */
  parse(key: string): ParsedKey | null {
    if (!key.startsWith(this.prefix)) return null;
    const [kind, ...parts] = key.slice(this.prefix.length).split("/");
    if (!KINDS.includes(kind as KeyKind)) return null;
    return { kind: kind as KeyKind, parts };
  }
}

/**
 * A prefix must start and end with "/" so that `/lorne/` never matches the
 * keys of `/lorne2/`.
 */
export function validatePrefix(prefix: string, source = "etcd prefix"): string {
  if (!/^\/([A-Za-z0-9_.-]+\/)*$/.test(prefix)) {
    throw new ValidationError(
      `Invalid ${source} "${prefix}": expected a path that starts and ` +
        `ends with "/", such as ${DEFAULT_PREFIX}`,
      "prefix",
    );
  }
  return prefix;
}
