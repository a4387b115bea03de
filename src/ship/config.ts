/**
 * The `lorne ship` config file: JSON with butteredscones' keys (a
 * butteredscones config loads as it is) plus lorne's extensions, resolved
 * once into a ShipConfig with every default filled in and units in the
 * names. The whole file is checked, TLS files read and matched, before
 * anything starts, so a bad config never runs a half-working shipper.
 * docs/ship.md lists every key.
 *
 * In `ShipServer.tls` the PEM text is a string (PEM is ASCII), the same
 * for every server, and `servername` is always set (the `name` key, else
 * the host), so a log line can say which name was checked.
 */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";

import type { ClientTlsOptions } from "../lumberjack/tls.js";

import { describeFsError, ValidationError } from "../errors.js";
import { JsonSyntaxError, parseJson } from "../host/manifest/json.js";
import { readTlsFiles } from "../lumberjack/tls-files.js";
import { MAX_MS } from "../timers.js";
import { parseFileGroups } from "./config-files.js";
import { parseHostPort, parseNetwork, withTls } from "./config-network.js";
import {
  member,
  missing,
  objectAt,
  optionalWhole,
  pathAt,
} from "./config-values.js";

export const DEFAULT_MAX_LINE_BYTES = 8192;
export const MAX_MAX_LINE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_GLOB_REFRESH_MS = 15_000;
export const DEFAULT_MAX_OPEN_FILES = 1024;
export const MAX_MAX_OPEN_FILES = 1_048_576;
export const DEFAULT_CLOSE_INACTIVE_MS = 300_000;
export const DEFAULT_STATE_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** Ten years: stateTtlMs is an age compared with the clock, not a timer. */
export const MAX_STATE_TTL_MS = 3650 * 24 * 60 * 60 * 1000;

/** How TLS file errors name the files: by their config keys. */
const TLS_CONFIG_KEYS = {
  ca: "network.ca",
  certificate: "network.certificate",
  key: "network.key",
};

const TOP_KEYS = [
  "state",
  "max_length",
  "network",
  "statistics",
  "files",
  "glob_refresh_ms",
  "max_open_files",
  "close_inactive_ms",
  "state_ttl_ms",
] as const;
const STATISTICS_KEYS = ["addr"] as const;

/** One Lumberjack server to send batches to. */
export interface ShipServer {
  /** Host name or address, IPv6 without brackets. */
  host: string;
  port: number;
  /** `addr` as written in the config, for logs and statistics. */
  address: string;
  /**
   * TLS options for LumberjackClient, PEM text already read; absent when
   * network.tls is false.
   */
  tls?: ClientTlsOptions;
}

/** One `files[]` entry: globs to tail and what each event carries. */
export interface ShipFileGroup {
  /** Absolute globs (`*`, `?`, `[...]`, `**`, `{a,b}`), not expanded. */
  paths: string[];
  /** Absolute globs; a file matching any of them is not shipped. */
  exclude: string[];
  /** Extra fields of every event, never `line` or `host`. */
  fields: Record<string, string>;
  /** Where to start a file that has no saved offset. */
  readFrom: "beginning" | "end";
  /** Add `file` (path) and `offset` (after the line) to each event. */
  includeFileFields: boolean;
}

/** A loaded config: validated, defaults filled in, paths absolute. */
export interface ShipConfig {
  /** Absolute path of the file it was loaded from, when loaded from one. */
  configPath?: string;
  /** The offsets database. */
  statePath: string;
  /** Longer lines are skipped (not counting the line ending). */
  maxLineBytes: number;
  network: {
    servers: ShipServer[];
    version: 1 | 2;
    compressionLevel: number;
    /** Bounds the connect and each send (write and ack). */
    timeoutMs: number;
    /** Most lines in one batch. */
    spoolSize: number;
  };
  /** Where to serve statistics; absent: not served. Port 0: any free. */
  statistics?: { host: string; port: number };
  files: ShipFileGroup[];
  globRefreshMs: number;
  maxOpenFiles: number;
  closeInactiveMs: number;
  /**
   * Offsets of files unseen for this long are forgotten. Compared with
   * the clock on a sweep; it may exceed MAX_MS, so never a timer delay.
   */
  stateTtlMs: number;
}

/**
 * Reads the JSON config at `path` and resolves it (see parseShipConfig).
 * Relative paths in it are taken from the file's directory. Throws a
 * ValidationError when the file cannot be read or is not JSON (naming the
 * file, and the line and column), or when any value is bad.
 */
export async function loadShipConfig(path: string): Promise<ShipConfig> {
  const configPath = resolve(path);
  let text: string;
  try {
    text = await readFile(configPath, "utf8");
  } catch (err) {
    throw new ValidationError(
      `Cannot read config "${configPath}": ${describeFsError(err)}`,
      undefined,
      { cause: err },
    );
  }

  let document: unknown;
  try {
    // The strict parser: a position in every error, no duplicate keys.
    document = parseJson(text);
  } catch (err) {
    if (!(err instanceof JsonSyntaxError)) throw err;
    const { line, col } = err.position;
    throw new ValidationError(
      `Invalid JSON in config "${configPath}" at line ${line}, column ` +
        `${col}: ${err.reason}`,
      undefined,
      { cause: err },
    );
  }
  return { configPath, ...parseShipConfig(document, dirname(configPath)) };
}

/**
 * Validates a parsed config and resolves it: defaults filled in, units in
 * names, relative paths made absolute against `baseDir`, TLS files read
 * and checked. Reads nothing but the TLS files. Throws a ValidationError
 * whose `field` is the key path of the first problem, e.g.
 * `files[0].paths[2]`.
 */
export function parseShipConfig(value: unknown, baseDir: string): ShipConfig {
  const base = resolve(baseDir);
  const config = objectAt(value, "", TOP_KEYS);

  const state = member(config, "state");
  if (state === undefined) missing("state");
  const statePath = pathAt(state, "state", base, "a file path");
  const maxLineBytes =
    optionalWhole(config, "", "max_length", 1, MAX_MAX_LINE_BYTES) ??
    DEFAULT_MAX_LINE_BYTES;

  const networkValue = member(config, "network");
  if (networkValue === undefined) missing("network");
  const network = parseNetwork(networkValue, base);
  const statistics = parseStatistics(member(config, "statistics"));
  const files = parseFileGroups(member(config, "files"), base);

  const globRefreshMs =
    optionalWhole(config, "", "glob_refresh_ms", 100, MAX_MS) ??
    DEFAULT_GLOB_REFRESH_MS;
  const maxOpenFiles =
    optionalWhole(config, "", "max_open_files", 1, MAX_MAX_OPEN_FILES) ??
    DEFAULT_MAX_OPEN_FILES;
  const closeInactiveMs =
    optionalWhole(config, "", "close_inactive_ms", 1000, MAX_MS) ??
    DEFAULT_CLOSE_INACTIVE_MS;
  const stateTtlMs =
    optionalWhole(config, "", "state_ttl_ms", 1000, MAX_STATE_TTL_MS) ??
    DEFAULT_STATE_TTL_MS;

  // Last, so that a typo anywhere is reported before files are opened.
  const servers = withTls(
    network,
    readTlsFiles(network.tlsPaths, TLS_CONFIG_KEYS),
  );
  return {
    statePath,
    maxLineBytes,
    network: { servers, ...network.settings },
    ...(statistics === undefined ? {} : { statistics }),
    files,
    globRefreshMs,
    maxOpenFiles,
    closeInactiveMs,
    stateTtlMs,
  };
}

// butteredscones serves statistics only when addr is set: an absent or
// empty addr keeps them off.
function parseStatistics(
  value: unknown,
): { host: string; port: number } | undefined {
  if (value === undefined) return undefined;
  const statistics = objectAt(value, "statistics", STATISTICS_KEYS);
  const addr = member(statistics, "addr");
  if (addr === undefined || addr === "") return undefined;
  return parseHostPort(addr, "statistics.addr", 0);
}
