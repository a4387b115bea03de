/**
 * The host daemon's config file (`lorne host --config FILE`): a JSON
 * object with the flags' settings under snake_case keys. Read strictly
 * (the manifest's parser: positions in errors, no duplicate keys), every
 * key checked for its type here. Values with a syntax of their own (etcd
 * endpoints, durations) go through the flags' parsers, named `config
 * <key>`, so a file and a flag get the same message.
 */
import { readFileSync } from "node:fs";

import { validatePrefix } from "../cluster/keys.js";
import {
  parseAdvertise,
  parseEndpoints,
  parseFinishedMax,
  parseFinishedRetention,
  parseLeaseTtl,
  type ClusterSettings,
} from "../cluster/settings.js";
import { errorMessage, ValidationError } from "../errors.js";
import { parseJson } from "../host/manifest/json.js";
import { MAX_MS } from "./options.js";

/** The config file's settings; see docs/host.md. */
export interface HostConfigFile {
  id?: string;
  listen?: string;
  state?: string;
  state_store?: string;
  backend?: string;
  manifest?: string;
  external?: string;
  attributes?: Record<string, string>;
  ports?: string;
  grace_ms?: number;
  event_history?: number;
  docker_socket?: string;
  bind?: string;
  keep_containers?: boolean;
  pull_timeout_ms?: number;
  socket?: string;
  max_starts?: number;
  etcd?: string;
  advertise?: string;
  scheduler?: boolean;
  etcd_prefix?: string;
  lease_ttl_s?: number;
  finished_retention?: string;
  finished_max?: number;
  ended_retention?: string;
  ended_max?: number;
}

/** The cluster flags of `lorne host`, as commander gives them. */
export interface ClusterFlags {
  etcd?: string;
  advertise?: string;
  scheduler?: boolean;
  etcdPrefix?: string;
  leaseTtlS?: string;
  finishedRetention?: string;
  finishedMax?: string;
}

const EXPECTED = {
  boolean: "true or false",
  number: "a number",
  count: `a whole number from 1 to ${MAX_MS}`,
  string: "a string",
  map: "an object of strings",
  ms: `a whole number of milliseconds up to ${MAX_MS}`,
};

// Each config key and the type it must have.
const CONFIG_FIELDS: Record<keyof HostConfigFile, keyof typeof EXPECTED> = {
  id: "string",
  listen: "string",
  state: "string",
  state_store: "string",
  backend: "string",
  manifest: "string",
  external: "string",
  attributes: "map",
  ports: "string",
  grace_ms: "ms",
  event_history: "count",
  docker_socket: "string",
  bind: "string",
  keep_containers: "boolean",
  pull_timeout_ms: "ms",
  socket: "string",
  max_starts: "count",
  etcd: "string",
  advertise: "string",
  scheduler: "boolean",
  etcd_prefix: "string",
  // Checked by the flags' parsers, for the flags' messages.
  lease_ttl_s: "number",
  finished_retention: "string",
  finished_max: "number",
  ended_retention: "string",
  ended_max: "number",
};

/**
 * The cluster settings from the flags, else the config file. Each comes
 * with the name it was given under, for errors: `--lease-ttl-s` or
 * `config lease_ttl_s`.
 */
export function clusterSettings(
  flags: ClusterFlags,
  file: HostConfigFile,
): ClusterSettings | undefined {
  // A setting's flag is its key with dashes: lease_ttl_s, --lease-ttl-s.
  const pick = <T>(key: string, flagValue: T, fileValue: T) =>
    flagValue !== undefined
      ? { source: `--${key.replaceAll("_", "-")}`, value: flagValue }
      : fileValue !== undefined
        ? { source: `config ${key}`, value: fileValue }
        : undefined;
  const etcd = pick("etcd", flags.etcd, file.etcd);
  const advertise = pick("advertise", flags.advertise, file.advertise);
  const scheduler = pick("scheduler", flags.scheduler, file.scheduler);
  const prefix = pick("etcd_prefix", flags.etcdPrefix, file.etcd_prefix);
  const leaseTtl = pick(
    "lease_ttl_s",
    flags.leaseTtlS,
    file.lease_ttl_s?.toString(),
  );
  const retention = pick(
    "finished_retention",
    flags.finishedRetention,
    file.finished_retention,
  );
  const finishedMax = pick(
    "finished_max",
    flags.finishedMax,
    file.finished_max?.toString(),
  );

  if (etcd === undefined) {
    // --no-scheduler (false) needs nothing.
    const schedules = scheduler?.value === true ? scheduler : undefined;
    for (const given of [advertise, schedules, prefix, leaseTtl]) {
      if (given !== undefined) throw needs(given.source, "--etcd", "etcd");
    }
  }
  if (scheduler?.value !== true) {
    for (const given of [retention, finishedMax]) {
      if (given !== undefined) {
        throw needs(given.source, "--scheduler", "scheduler");
      }
    }
  }
  if (etcd === undefined) return undefined;
  return {
    endpoints: parseEndpoints(etcd.value, etcd.source),
    prefix:
      prefix === undefined
        ? undefined
        : validatePrefix(prefix.value, prefix.source),
    advertise:
      advertise === undefined
        ? undefined
        : parseAdvertise(advertise.value, advertise.source),
    scheduler: scheduler?.value ?? false,
    leaseTtlS:
      leaseTtl === undefined
        ? undefined
        : parseLeaseTtl(leaseTtl.value, leaseTtl.source),
    finishedRetentionMs:
      retention === undefined
        ? undefined
        : parseFinishedRetention(retention.value, retention.source),
    finishedMax:
      finishedMax === undefined
        ? undefined
        : parseFinishedMax(finishedMax.value, finishedMax.source),
  };
}

// A cluster setting given without the setting it depends on.
function needs(source: string, flag: string, key: string): ValidationError {
  const what = source.startsWith("config ") ? `${flag} or config ${key}` : flag;
  return new ValidationError(`Invalid ${source}: needs ${what}`, key);
}

/** Reads and type-checks a config file; ValidationError naming the key. */
export function readConfig(path: string): HostConfigFile {
  let parsed: unknown;
  try {
    // The manifest's strict parser: positions in errors, no duplicate keys.
    parsed = parseJson(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ValidationError(
      `Cannot read config "${path}": ${errorMessage(err)}`,
      "config",
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ValidationError(
      `Invalid config "${path}": must be a JSON object`,
      "config",
    );
  }
  for (const [key, value] of Object.entries(parsed)) {
    const kind = Object.hasOwn(CONFIG_FIELDS, key)
      ? CONFIG_FIELDS[key as keyof HostConfigFile]
      : undefined;
    if (kind === undefined) {
      throw new ValidationError(
        `Invalid config "${path}": unknown field "${key}"; expected one of ` +
          Object.keys(CONFIG_FIELDS).join(", "),
        key,
      );
    }
    const ok =
      kind === "map"
        ? isStringMap(value)
        : kind === "ms" || kind === "count"
          ? Number.isInteger(value) &&
            (value as number) >= (kind === "ms" ? 0 : 1) &&
            (value as number) <= MAX_MS
          : kind === "number"
            ? typeof value === "number" && Number.isFinite(value)
            : typeof value === (kind === "boolean" ? "boolean" : "string");
    if (!ok) {
      throw new ValidationError(
        `Invalid config "${path}": field "${key}" must be ${EXPECTED[kind]}`,
        key,
      );
    }
  }
  return parsed;
}

function isStringMap(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === "string")
  );
}
