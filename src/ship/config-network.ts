/**
 * The `network` section of a `lorne ship` config: the Lumberjack servers,
 * TLS and the batch settings, checked key by key. TLS files are read in a
 * second step (withTls), once the whole config is known to be well formed,
 * so a typo elsewhere is reported before any file is opened.
 */
import { isIP } from "node:net";

import type { Version } from "../lumberjack/frames.js";
import type { ShipConfig, ShipServer } from "./config.js";
import type { TlsMaterial, TlsPaths } from "../lumberjack/tls-files.js";

import { errorMessage, ValidationError } from "../errors.js";
import { clientTlsOptions } from "../lumberjack/tls.js";
import { MAX_MS } from "../timers.js";
import {
  arrayAt,
  booleanAt,
  invalid,
  itemPath,
  keyPath,
  member,
  missing,
  nonEmptyString,
  objectAt,
  optionalWhole,
  pathAt,
  type ConfigObject,
} from "./config-values.js";

export const DEFAULT_TIMEOUT_S = 15;
export const DEFAULT_SPOOL_SIZE = 1024;
export const MAX_SPOOL_SIZE = 1_048_576;
export const DEFAULT_VERSION: Version = 1;
export const DEFAULT_COMPRESSION_LEVEL = 6;
/** The longest timeout whose milliseconds still fit a Node timer. */
export const MAX_TIMEOUT_S = Math.floor(MAX_MS / 1000);

const NETWORK_KEYS = [
  "servers",
  "certificate",
  "key",
  "ca",
  "timeout",
  "spool_size",
  "version",
  "compression_level",
  "tls",
] as const;
const SERVER_KEYS = ["addr", "name"] as const;
const TLS_FILES = ["certificate", "key", "ca"] as const;
const HOST_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** A server before TLS is attached; `name` only when written. */
export interface ParsedServer {
  host: string;
  port: number;
  address: string;
  name: string | undefined;
}

/** The network section, checked, with TLS still to be read. */
export interface ParsedNetwork {
  settings: Omit<ShipConfig["network"], "servers">;
  servers: ParsedServer[];
  tls: boolean;
  tlsPaths: TlsPaths;
}

/** Checks the `network` object; paths are made absolute against baseDir. */
export function parseNetwork(value: unknown, baseDir: string): ParsedNetwork {
  const network = objectAt(value, "network", NETWORK_KEYS);

  const tlsValue = member(network, "tls");
  const tls =
    tlsValue === undefined ? true : booleanAt(tlsValue, "network.tls");
  const servers = parseServers(member(network, "servers"), tls);
  const tlsPaths = parseTlsPaths(network, tls, baseDir);

  const timeoutS = optionalWhole(
    network,
    "network",
    "timeout",
    0,
    MAX_TIMEOUT_S,
  );
  const version = member(network, "version") ?? DEFAULT_VERSION;
  if (version !== 1 && version !== 2) {
    throw invalid("network.version", version, "1 or 2");
  }
  return {
    settings: {
      version,
      compressionLevel:
        optionalWhole(network, "network", "compression_level", 0, 9) ??
        DEFAULT_COMPRESSION_LEVEL,
      // 0 means the default: butteredscones turned it into a deadline
      // that had always passed, so every send failed.
      timeoutMs: (timeoutS || DEFAULT_TIMEOUT_S) * 1000,
      spoolSize:
        optionalWhole(network, "network", "spool_size", 1, MAX_SPOOL_SIZE) ??
        DEFAULT_SPOOL_SIZE,
    },
    servers,
    tls,
    tlsPaths,
  };
}

/**
 * The servers with their TLS options, each one accepted by the Lumberjack
 * client's own check (clientTlsOptions), so the client cannot refuse them
 * later. Without TLS a server has no `tls`.
 */
export function withTls(
  parsed: ParsedNetwork,
  material: TlsMaterial,
): ShipServer[] {
  return parsed.servers.map((server, index) => {
    const { host, port, address, name } = server;
    if (!parsed.tls) return { host, port, address };
    const tls = { ...material, servername: name ?? host };
    try {
      clientTlsOptions(host, port, tls);
    } catch (err) {
      // Not reached while the checks here are as strict as the client's.
      const field = itemPath("network.servers", index);
      throw new ValidationError(
        `Invalid ${field}: the Lumberjack client refuses its TLS ` +
          `options (${errorMessage(err)})`,
        field,
        { cause: err },
      );
    }
    return { host, port, address, tls };
  });
}

/**
 * Splits "host:port" ("[::1]:5043" for IPv6) and checks both parts; the
 * port must be from `minPort` to 65535.
 */
export function parseHostPort(
  value: unknown,
  field: string,
  minPort: number,
): { host: string; port: number } {
  if (typeof value !== "string") throw invalid(field, value, '"host:port"');
  const fail = (why: string): ValidationError =>
    new ValidationError(
      `Invalid ${field} ${JSON.stringify(value)}: ${why}`,
      field,
    );

  const colon = value.lastIndexOf(":");
  if (colon === -1) throw fail('expected "host:port"');
  let host = value.slice(0, colon);
  const portText = value.slice(colon + 1);
  if (host.startsWith("[") && host.endsWith("]")) {
    host = host.slice(1, -1);
    if (isIP(host) !== 6) {
      throw fail(`${JSON.stringify(host)} is not an IPv6 address`);
    }
  } else if (host.includes(":")) {
    throw fail('put an IPv6 address in brackets, as in "[::1]:5043"');
  } else if (host === "") {
    throw fail("the host is missing");
  } else if (!HOST_NAME.test(host)) {
    throw fail(`${JSON.stringify(host)} is not a host name or address`);
  }

  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= minPort && port <= 65535)) {
    throw fail(`the port must be a whole number from ${minPort} to 65535`);
  }
  return { host, port };
}

function parseServers(value: unknown, tls: boolean): ParsedServer[] {
  if (value === undefined) missing("network.servers");
  const list = arrayAt(value, "network.servers", "an array of servers");
  if (list.length === 0) {
    throw new ValidationError(
      "Invalid network.servers: expected at least one server, found none",
      "network.servers",
    );
  }
  return list.map((item, index) => {
    const path = itemPath("network.servers", index);
    const server = objectAt(item, path, SERVER_KEYS);
    const addr = member(server, "addr");
    if (addr === undefined) missing(keyPath(path, "addr"));
    const { host, port } = parseHostPort(addr, keyPath(path, "addr"), 1);
    const nameValue = member(server, "name");
    if (nameValue !== undefined && !tls) throw tlsOff(keyPath(path, "name"));
    const name =
      nameValue === undefined
        ? undefined
        : nonEmptyString(nameValue, keyPath(path, "name"), "a server name");
    return { host, port, address: addr as string, name };
  });
}

function parseTlsPaths(
  network: ConfigObject,
  tls: boolean,
  baseDir: string,
): TlsPaths {
  const paths: TlsPaths = {};
  for (const key of TLS_FILES) {
    const value = member(network, key);
    if (value === undefined) continue;
    const field = `network.${key}`;
    if (!tls) throw tlsOff(field);
    paths[key] = pathAt(value, field, baseDir, "a file path");
  }
  if (paths.certificate !== undefined && paths.key === undefined) {
    throw new ValidationError(
      "Missing network.key: the client certificate (network.certificate) " +
        "needs its private key",
      "network.key",
    );
  }
  if (paths.key !== undefined && paths.certificate === undefined) {
    throw new ValidationError(
      "Missing network.certificate: the private key (network.key) needs " +
        "its client certificate",
      "network.certificate",
    );
  }
  return paths;
}

function tlsOff(field: string): ValidationError {
  return new ValidationError(
    `Invalid ${field}: TLS is off (network.tls is false); remove ` +
      `${field} or turn TLS on`,
    field,
  );
}
