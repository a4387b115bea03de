/**
 * The cluster as read from etcd: hosts, jobs, statuses and services, each
 * value validated. The scheduler decides from this view and the CLI prints
 * it; no host is asked anything. A value that fails validation, or whose
 * key does not match its content, is handed to `onInvalid` and left out.
 */
import type { Etcd3, IKeyValue } from "etcd3";

import { errorMessage, ValidationError } from "../errors.js";
import type { ClusterKeys } from "./keys.js";
import {
  parseHost,
  parseJob,
  parseService,
  parseStatus,
  type ClusterJob,
  type ClusterStatus,
  type HostRegistration,
  type ServiceInstance,
} from "./records.js";

/** Called with each malformed value met while reading. */
export type InvalidHandler = (key: string, err: Error) => void;

/** A value and the etcd metadata the transactions compare against. */
export interface Entry<T> {
  value: T;
  key: string;
  modRevision: string;
}

/** A live host: its registration and the lease it is bound to. */
export interface HostEntry extends Entry<HostRegistration> {
  /** The lease id in decimal; a host that registers again gets a new one. */
  lease: string;
}

export interface ClusterView {
  hosts: Map<string, HostEntry>;
  jobs: Map<string, Entry<ClusterJob>>;
  statuses: Map<string, Entry<ClusterStatus>>;
  /** Jobs whose status key holds a malformed value (reported, skipped). */
  invalidStatuses: Set<string>;
}

/**
 * Reads statuses, then hosts, then jobs. Statuses come first so that a
 * host named by a status was registered before the hosts were read: a
 * missing host then really is gone, not yet to come.
 */
export async function readView(
  client: Etcd3,
  keys: ClusterKeys,
  onInvalid: InvalidHandler,
): Promise<ClusterView> {
  const invalidStatuses = new Set<string>();
  const statuses = await readPrefix(
    client,
    keys.statuses(),
    (kv, id) => checkId(parseStatus(kv.value.toString()), id, "job_id"),
    onInvalid,
    invalidStatuses,
  );
  const hostKvs = await client.getAll().prefix(keys.hosts()).exec();
  const hosts = new Map<string, HostEntry>();
  for (const kv of hostKvs.kvs) {
    const key = kv.key.toString();
    const id = key.slice(keys.hosts().length);
    try {
      const value = checkId(parseHost(kv.value.toString()), id, "id");
      hosts.set(id, {
        value,
        key,
        modRevision: kv.mod_revision,
        lease: kv.lease,
      });
    } catch (err) {
      onInvalid(key, asError(err));
    }
  }
  const jobs = await readPrefix(
    client,
    keys.jobs(),
    (kv, id) => checkId(parseJob(kv.value.toString()), id, "id"),
    onInvalid,
  );
  return { hosts, jobs, statuses, invalidStatuses };
}

/** Live instances of one service, or of all; sorted by name then job. */
export async function readServices(
  client: Etcd3,
  keys: ClusterKeys,
  name: string | undefined,
  onInvalid: InvalidHandler,
): Promise<ServiceInstance[]> {
  const prefix = keys.services(name);
  const res = await client.getAll().prefix(prefix).exec();
  const out: ServiceInstance[] = [];
  for (const kv of res.kvs) {
    const key = kv.key.toString();
    try {
      const instance = parseService(kv.value.toString());
      const [keyName, jobId] = key.slice(keys.services().length).split("/");
      if (instance.name !== keyName || instance.job_id !== jobId) {
        throw new ValidationError(
          "Invalid value: name and job_id do not match the key",
          "name",
        );
      }
      out.push(instance);
    } catch (err) {
      onInvalid(key, asError(err));
    }
  }
  return out.sort(
    (a, b) => a.name.localeCompare(b.name) || a.job_id.localeCompare(b.job_id),
  );
}

/** Reads every key under `prefix` whose rest is one id segment. */
async function readPrefix<T>(
  client: Etcd3,
  prefix: string,
  parse: (kv: IKeyValue, id: string) => T,
  onInvalid: InvalidHandler,
  invalidIds?: Set<string>,
): Promise<Map<string, Entry<T>>> {
  const res = await client.getAll().prefix(prefix).exec();
  const out = new Map<string, Entry<T>>();
  for (const kv of res.kvs) {
    const key = kv.key.toString();
    const id = key.slice(prefix.length);
    try {
      out.set(id, { value: parse(kv, id), key, modRevision: kv.mod_revision });
    } catch (err) {
      invalidIds?.add(id);
      onInvalid(key, asError(err));
    }
  }
  return out;
}

/** Parses one value and checks that it belongs under its key. */
export function checkId<T>(value: T, id: string, field: keyof T & string): T {
  if (value[field] !== id) {
    throw new ValidationError(
      `Invalid ${field}: ${JSON.stringify(value[field])} does not match ` +
        `the key's ${JSON.stringify(id)}`,
      field,
    );
  }
  return value;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(errorMessage(err));
}
