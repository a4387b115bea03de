/**
 * The values lorne keeps in etcd, and their validation. Anyone who can
 * write to etcd can write under lorne's prefix, so every value read back is
 * checked as untrusted input: a bad one is refused with an error that names
 * the key and the field, and the caller logs it and skips the key. The
 * checks on single fields are in fields.ts.
 */
import { ValidationError } from "../errors.js";
import {
  FINAL_STATUSES,
  JOB_STATUSES,
  validateJobId,
  validateJobSpec,
  type JobSpec,
  type JobStatus,
} from "../host/job.js";
import { isWholeIn } from "../numbers.js";
import {
  expectCount,
  expectId,
  expectInteger,
  expectLease,
  expectObject,
  expectOneOf,
  expectString,
  expectStringMap,
  invalid,
  parseObject,
} from "./fields.js";

/** What happens to a job when the host running it is lost. */
export type RestartPolicy = "never" | "on-host-loss";

/** Whether the submitter wants the job running. */
export type DesiredState = "run" | "stop";

/**
 * A cluster job's state: `pending` until placed, `assigned` until its host
 * reports, the host's statuses while it runs, `lost` when its host went
 * away and it is not placed again.
 */
export type ClusterState = "pending" | "assigned" | JobStatus | "lost";

/** A service a job offers: its name and which of its ports serves it. */
export interface ServiceSpec {
  name: string;
  port_index: number;
}

/** `hosts/<id>`: what a host tells the scheduler about itself. */
export interface HostRegistration {
  id: string;
  /** The host's API, as others reach it (`--advertise`). */
  url: string;
  attributes: Record<string, string>;
  backend: string;
  capacity: { ports: number };
  version: string;
  started_at: string;
}

/** `jobs/<id>`: a submitted job. */
export interface ClusterJob {
  id: string;
  /** The spec the host runs; `config.service` is kept apart, in `service`. */
  spec: JobSpec;
  constraints: Record<string, string>;
  restart: RestartPolicy;
  service: ServiceSpec | null;
  desired: DesiredState;
  submitted_at: string;
}

/** `assignments/<host>/<job>`: a placement decision. */
export interface Assignment {
  job_id: string;
  host_id: string;
  /** The host's lease when placed: a host that re-registers is new. */
  session: string;
  /** 1 for the first placement, one more for each placement after a loss. */
  attempt: number;
  scheduler: string;
  assigned_at: string;
}

/** `status/<job>`: the job's state, written by the scheduler or its host. */
export interface ClusterStatus {
  job_id: string;
  state: ClusterState;
  host_id: string | null;
  session: string | null;
  attempt: number;
  pid: number | null;
  ports: number[];
  exit_status: number | null;
  signal: string | null;
  error: string | null;
  updated_at: string;
}

/** `services/<name>/<job>`: one live instance of a service. */
export interface ServiceInstance {
  name: string;
  job_id: string;
  host_id: string;
  /** host:port where the instance listens. */
  address: string;
}

/**
 * `retention`: how long the leading scheduler keeps finished jobs, so
 * that `lorne cluster ps --all` can say. Bound to the leader's lease.
 */
export interface RetentionRecord {
  scheduler: string;
  /** 0: finished jobs are kept forever. */
  finished_retention_ms: number;
  finished_max: number;
  published_at: string;
}

const STATES: readonly ClusterState[] = [
  "pending",
  "assigned",
  ...JOB_STATUSES,
  "lost",
];

/** Whether a cluster job has ended for good (no host will run it again). */
export function isFinalState(state: ClusterState): boolean {
  return state === "lost" || FINAL_STATUSES.has(state as JobStatus);
}

/**
 * Validates a job submission: a host job spec whose config may also carry
 * `service`, plus `constraints` and `restart`. Returns the job to store.
 */
export function validateSubmission(
  body: unknown,
  id: string,
  now: Date = new Date(),
): ClusterJob {
  const object = expectObject(body, "body");
  const { constraints, restart, ...rest } = object;
  const config = expectObject(rest.config, "config");
  const { service, ...hostConfig } = config;
  const { id: specId, ...spec } = validateJobSpec({
    ...rest,
    config: hostConfig,
  });
  return {
    id: validateJobId(specId ?? id),
    spec,
    constraints:
      constraints === undefined
        ? {}
        : expectStringMap(constraints, "constraints"),
    restart: restart === undefined ? "never" : expectRestart(restart),
    service:
      service === undefined || service === null
        ? null
        : expectService(service, "config.service"),
    desired: "run",
    submitted_at: now.toISOString(),
  };
}

/** Parses `jobs/<id>`; ValidationError naming the field when malformed. */
export function parseJob(text: string): ClusterJob {
  const o = parseObject(text);
  const spec = validateJobSpec(expectObject(o.spec, "spec"));
  if (spec.id !== undefined) throw invalid("spec.id", "absent", spec.id);
  return {
    id: expectId(o.id, "id"),
    spec,
    constraints: expectStringMap(o.constraints, "constraints"),
    restart: expectRestart(o.restart),
    service: o.service === null ? null : expectService(o.service, "service"),
    desired: expectOneOf(o.desired, "desired", ["run", "stop"] as const),
    submitted_at: expectString(o.submitted_at, "submitted_at"),
  };
}

/** Parses `hosts/<id>`. */
export function parseHost(text: string): HostRegistration {
  const o = parseObject(text);
  const capacity = expectObject(o.capacity, "capacity");
  if (!isWholeIn(capacity.ports, 0, 65_535)) {
    throw invalid("capacity.ports", "a whole number", capacity.ports);
  }
  const url = expectString(o.url, "url");
  if (!/^http:\/\/[^/\s]+$/.test(url)) {
    throw invalid("url", "an http URL without a path", url);
  }
  return {
    id: expectId(o.id, "id"),
    url,
    attributes: expectStringMap(o.attributes, "attributes"),
    backend: expectString(o.backend, "backend"),
    capacity: { ports: capacity.ports },
    version: expectString(o.version, "version"),
    started_at: expectString(o.started_at, "started_at"),
  };
}

/** Parses `assignments/<host>/<job>`. */
export function parseAssignment(text: string): Assignment {
  const o = parseObject(text);
  return {
    job_id: expectId(o.job_id, "job_id"),
    host_id: expectId(o.host_id, "host_id"),
    session: expectLease(o.session, "session"),
    attempt: expectCount(o.attempt, "attempt"),
    scheduler: expectString(o.scheduler, "scheduler"),
    assigned_at: expectString(o.assigned_at, "assigned_at"),
  };
}

/** Parses `status/<job>`. */
export function parseStatus(text: string): ClusterStatus {
  const o = parseObject(text);
  if (
    !Array.isArray(o.ports) ||
    !o.ports.every((p) => isWholeIn(p, 0, 65_535))
  ) {
    throw invalid("ports", "an array of port numbers", o.ports);
  }
  const state = expectOneOf(o.state, "state", STATES);
  const hostId = o.host_id === null ? null : expectId(o.host_id, "host_id");
  const session = o.session === null ? null : expectLease(o.session, "session");
  // Placed and not yet ended: the scheduler checks the job's host by both.
  if (state !== "pending" && !isFinalState(state)) {
    if (hostId === null) {
      throw invalid("host_id", `set for a job that is ${state}`, null);
    }
    if (session === null) {
      throw invalid("session", `set for a job that is ${state}`, null);
    }
  }
  return {
    job_id: expectId(o.job_id, "job_id"),
    state,
    host_id: hostId,
    session,
    attempt: expectCount(o.attempt, "attempt", 0),
    pid: o.pid === null ? null : expectCount(o.pid, "pid"),
    ports: o.ports,
    exit_status:
      o.exit_status === null
        ? null
        : expectInteger(o.exit_status, "exit_status"),
    signal: o.signal === null ? null : expectString(o.signal, "signal"),
    error: o.error === null ? null : expectString(o.error, "error"),
    updated_at: expectString(o.updated_at, "updated_at"),
  };
}

/** Parses `services/<name>/<job>`. */
export function parseService(text: string): ServiceInstance {
  const o = parseObject(text);
  const address = expectString(o.address, "address");
  if (!/^[^\s]+:\d{1,5}$/.test(address)) {
    throw invalid("address", "host:port", address);
  }
  return {
    name: expectId(o.name, "name"),
    job_id: expectId(o.job_id, "job_id"),
    host_id: expectId(o.host_id, "host_id"),
    address,
  };
}

/** Parses `retention`. */
export function parseRetention(text: string): RetentionRecord {
  const o = parseObject(text);
  return {
    scheduler: expectString(o.scheduler, "scheduler"),
    finished_retention_ms: expectCount(
      o.finished_retention_ms,
      "finished_retention_ms",
      0,
    ),
    finished_max: expectCount(o.finished_max, "finished_max"),
    published_at: expectString(o.published_at, "published_at"),
  };
}

/**
 * Checks a service spec `{ name, port_index }`; the name follows the job
 * id rules because it becomes a key segment.
 */
export function expectService(value: unknown, field: string): ServiceSpec {
  const o = expectObject(value, field);
  for (const key of Object.keys(o)) {
    if (key !== "name" && key !== "port_index") {
      throw new ValidationError(
        `Unknown field ${field}.${key}: expected ${field}.name, ${field}.port_index`,
        `${field}.${key}`,
      );
    }
  }
  const name = validateJobId(o.name, `${field}.name`, "service name");
  const portIndex = o.port_index ?? 0;
  if (!isWholeIn(portIndex, 0, 63)) {
    throw invalid(
      `${field}.port_index`,
      "a whole number from 0 to 63",
      portIndex,
    );
  }
  return { name, port_index: portIndex };
}

function expectRestart(value: unknown): RestartPolicy {
  return expectOneOf(value, "restart", ["never", "on-host-loss"] as const);
}
