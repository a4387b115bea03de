/**
 * Bad `lorne ship` configs: every number at both ends of its range, and a
 * table of every other kind of mistake, each with its exact message and
 * ValidationError field. None of these reads a file: the checks run before
 * any TLS file is opened.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { parseShipConfig } from "../../src/ship/config.js";
import {
  config,
  group,
  net,
  parseError,
  SERVER,
  without,
  type Obj,
} from "./config-helpers.js";

/** Never read: no case here names a TLS file that would be opened. */
const BASE = "/srv/ship";

/** [key path, config with the key set to v, min, max]. */
const RANGES: readonly [string, (v: number) => Obj, number, number][] = [
  ["max_length", (v) => config({ max_length: v }), 1, 67_108_864],
  [
    "network.timeout",
    (v) => config({ network: net({ timeout: v }) }),
    0,
    2_147_483,
  ],
  [
    "network.spool_size",
    (v) => config({ network: net({ spool_size: v }) }),
    1,
    1_048_576,
  ],
  [
    "network.compression_level",
    (v) => config({ network: net({ compression_level: v }) }),
    0,
    9,
  ],
  [
    "glob_refresh_ms",
    (v) => config({ glob_refresh_ms: v }),
    100,
    2_147_483_647,
  ],
  ["max_open_files", (v) => config({ max_open_files: v }), 1, 1_048_576],
  [
    "close_inactive_ms",
    (v) => config({ close_inactive_ms: v }),
    1000,
    2_147_483_647,
  ],
  ["state_ttl_ms", (v) => config({ state_ttl_ms: v }), 1000, 315_360_000_000],
];

for (const [field, build, min, max] of RANGES) {
  test(`config: ${field} takes whole numbers from ${min} to ${max}`, () => {
    assert.doesNotThrow(() => parseShipConfig(build(min), BASE));
    assert.doesNotThrow(() => parseShipConfig(build(max), BASE));
    for (const bad of [min - 1, max + 1, min + 0.5]) {
      const err = parseError(build(bad), BASE);
      assert.equal(
        err.message,
        `Invalid ${field} ${bad}: expected a whole number from ${min} to ${max}`,
      );
      assert.equal(err.field, field);
    }
  });
}

const TOP_KEYS =
  "state, max_length, network, statistics, files, glob_refresh_ms, " +
  "max_open_files, close_inactive_ms, state_ttl_ms";
const NETWORK_KEYS =
  "servers, certificate, key, ca, timeout, spool_size, version, " +
  "compression_level, tls";
const FILE_KEYS = "paths, fields, exclude, read_from, include_file_fields";
const ADDR = "network.servers[0].addr";

/** [addr, why]: each bad server address and the reason given. */
const BAD_ADDRS: readonly [string, string][] = [
  ["logstash", 'expected "host:port"'],
  ["logstash:0", "the port must be a whole number from 1 to 65535"],
  ["logstash:65536", "the port must be a whole number from 1 to 65535"],
  ["logstash:50x", "the port must be a whole number from 1 to 65535"],
  ["logstash:+5043", "the port must be a whole number from 1 to 65535"],
  ["logstash:", "the port must be a whole number from 1 to 65535"],
  [":5043", "the host is missing"],
  ["::1:5043", 'put an IPv6 address in brackets, as in "[::1]:5043"'],
  ["[logstash]:5043", '"logstash" is not an IPv6 address'],
  ["[::1:5043", 'put an IPv6 address in brackets, as in "[::1]:5043"'],
  ["log stash:5043", '"log stash" is not a host name or address'],
  ["-x:5043", '"-x" is not a host name or address'],
  ["user@host:5043", '"user@host" is not a host name or address'],
];

const BAD: readonly [string, unknown, string, string][] = [
  // [case, config, message, ValidationError.field]
  [
    "an array",
    [],
    "Invalid config: expected an object, found an array",
    "config",
  ],
  ["null", null, "Invalid config null: expected an object", "config"],
  [
    "a misspelt top-level key",
    config({ stat: "x" }),
    `Unknown key stat: expected one of ${TOP_KEYS}`,
    "stat",
  ],
  [
    "an odd key is quoted in the path",
    config({ "max length": 1 }),
    `Unknown key ["max length"]: expected one of ${TOP_KEYS}`,
    '["max length"]',
  ],
  [
    "no state",
    without(config(), "state"),
    "Missing required key state",
    "state",
  ],
  [
    "an empty state",
    config({ state: "" }),
    'Invalid state "": expected a file path',
    "state",
  ],
  [
    "a numeric state",
    config({ state: 5 }),
    "Invalid state 5: expected a file path",
    "state",
  ],
  [
    "max_length as a string",
    config({ max_length: "8192" }),
    'Invalid max_length "8192": expected a whole number from 1 to 67108864',
    "max_length",
  ],
  [
    "max_length NaN (from an object, not JSON)",
    config({ max_length: NaN }),
    "Invalid max_length NaN: expected a whole number from 1 to 67108864",
    "max_length",
  ],
  [
    "no network",
    without(config(), "network"),
    "Missing required key network",
    "network",
  ],
  [
    "network as an array",
    config({ network: [] }),
    "Invalid network: expected an object, found an array",
    "network",
  ],
  [
    "a misspelt network key",
    config({ network: net({ timout: 15 }) }),
    `Unknown key network.timout: expected one of ${NETWORK_KEYS}`,
    "network.timout",
  ],
  [
    "no servers",
    config({ network: {} }),
    "Missing required key network.servers",
    "network.servers",
  ],
  [
    "no server in the list",
    config({ network: net({ servers: [] }) }),
    "Invalid network.servers: expected at least one server, found none",
    "network.servers",
  ],
  [
    "servers as an object",
    config({ network: net({ servers: SERVER }) }),
    "Invalid network.servers: expected an array of servers, found an object",
    "network.servers",
  ],
  [
    "a server as a string",
    config({ network: net({ servers: [SERVER, "h:1"] }) }),
    'Invalid network.servers[1] "h:1": expected an object',
    "network.servers[1]",
  ],
  [
    "a server without addr",
    config({ network: net({ servers: [{ name: "x" }] }) }),
    "Missing required key network.servers[0].addr",
    "network.servers[0].addr",
  ],
  [
    "a misspelt server key",
    config({ network: net({ servers: [SERVER, { addr: "h:1", nmae: "x" }] }) }),
    "Unknown key network.servers[1].nmae: expected one of addr, name",
    "network.servers[1].nmae",
  ],
  [
    "a numeric addr",
    config({ network: net({ servers: [{ addr: 5043 }] }) }),
    `Invalid ${ADDR} 5043: expected "host:port"`,
    ADDR,
  ],
  ...BAD_ADDRS.map(([addr, why]): [string, unknown, string, string] => [
    `addr ${JSON.stringify(addr)}`,
    config({ network: net({ servers: [{ addr }] }) }),
    `Invalid ${ADDR} ${JSON.stringify(addr)}: ${why}`,
    ADDR,
  ]),
  [
    "an empty server name",
    config({ network: net({ servers: [{ ...SERVER, name: "" }] }) }),
    'Invalid network.servers[0].name "": expected a server name',
    "network.servers[0].name",
  ],
  [
    "spool_size 0",
    config({ network: net({ spool_size: 0 }) }),
    "Invalid network.spool_size 0: expected a whole number from 1 to 1048576",
    "network.spool_size",
  ],
  [
    "version 3",
    config({ network: net({ version: 3 }) }),
    "Invalid network.version 3: expected 1 or 2",
    "network.version",
  ],
  [
    "version as a string",
    config({ network: net({ version: "2" }) }),
    'Invalid network.version "2": expected 1 or 2',
    "network.version",
  ],
  [
    "tls as a string",
    config({ network: net({ tls: "yes" }) }),
    'Invalid network.tls "yes": expected true or false',
    "network.tls",
  ],
  ...(["certificate", "key", "ca"] as const).map(
    (key): [string, unknown, string, string] => [
      `${key} with tls false`,
      config({ network: net({ tls: false, [key]: `${key}.pem` }) }),
      `Invalid network.${key}: TLS is off (network.tls is false); remove ` +
        `network.${key} or turn TLS on`,
      `network.${key}`,
    ],
  ),
  [
    "a server name with tls false",
    config({
      network: net({ tls: false, servers: [{ ...SERVER, name: "x" }] }),
    }),
    "Invalid network.servers[0].name: TLS is off (network.tls is false); " +
      "remove network.servers[0].name or turn TLS on",
    "network.servers[0].name",
  ],
  [
    "a certificate without its key",
    config({ network: net({ certificate: "client.crt" }) }),
    "Missing network.key: the client certificate (network.certificate) " +
      "needs its private key",
    "network.key",
  ],
  [
    "a key without its certificate",
    config({ network: net({ key: "client.key" }) }),
    "Missing network.certificate: the private key (network.key) needs its " +
      "client certificate",
    "network.certificate",
  ],
  [
    "an empty ca path",
    config({ network: net({ ca: "" }) }),
    'Invalid network.ca "": expected a file path',
    "network.ca",
  ],
  [
    "statistics as a string",
    config({ statistics: "127.0.0.1:8088" }),
    'Invalid statistics "127.0.0.1:8088": expected an object',
    "statistics",
  ],
  [
    "a misspelt statistics key",
    config({ statistics: { address: "127.0.0.1:8088" } }),
    "Unknown key statistics.address: expected one of addr",
    "statistics.address",
  ],
  [
    "statistics without a port",
    config({ statistics: { addr: "8088" } }),
    'Invalid statistics.addr "8088": expected "host:port"',
    "statistics.addr",
  ],
  [
    "statistics without a host (no silent bind to every interface)",
    config({ statistics: { addr: ":8088" } }),
    'Invalid statistics.addr ":8088": the host is missing',
    "statistics.addr",
  ],
  [
    "a statistics port over 65535",
    config({ statistics: { addr: "127.0.0.1:70000" } }),
    'Invalid statistics.addr "127.0.0.1:70000": the port must be a whole ' +
      "number from 0 to 65535",
    "statistics.addr",
  ],
  [
    "no files",
    without(config(), "files"),
    "Missing required key files",
    "files",
  ],
  [
    "no file group",
    config({ files: [] }),
    "Invalid files: expected at least one file group, found none",
    "files",
  ],
  [
    "files as an object",
    config({ files: group() }),
    "Invalid files: expected an array of file groups, found an object",
    "files",
  ],
  [
    "a file group as a string",
    config({ files: ["/var/log/*.log"] }),
    'Invalid files[0] "/var/log/*.log": expected an object',
    "files[0]",
  ],
  [
    "a misspelt file group key",
    config({ files: [group(), { paths: ["x"], feilds: {} }] }),
    `Unknown key files[1].feilds: expected one of ${FILE_KEYS}`,
    "files[1].feilds",
  ],
  [
    "a group without paths",
    config({ files: [{ fields: {} }] }),
    "Missing required key files[0].paths",
    "files[0].paths",
  ],
  [
    "a group with no glob",
    config({ files: [group({ paths: [] })] }),
    "Invalid files[0].paths: expected at least one glob, found none",
    "files[0].paths",
  ],
  [
    "paths as a string",
    config({ files: [group({ paths: "/var/log/*.log" })] }),
    'Invalid files[0].paths "/var/log/*.log": expected an array of globs',
    "files[0].paths",
  ],
  [
    "an empty glob",
    config({ files: [group({ paths: ["a", "b", ""] })] }),
    'Invalid files[0].paths[2] "": expected a non-empty glob',
    "files[0].paths[2]",
  ],
  [
    "a numeric glob",
    config({ files: [group({ paths: [5] })] }),
    "Invalid files[0].paths[0] 5: expected a non-empty glob",
    "files[0].paths[0]",
  ],
  [
    "exclude as a string",
    config({ files: [group({ exclude: "*.gz" })] }),
    'Invalid files[0].exclude "*.gz": expected an array of globs',
    "files[0].exclude",
  ],
  [
    "an empty exclude glob",
    config({ files: [group({ exclude: [""] })] }),
    'Invalid files[0].exclude[0] "": expected a non-empty glob',
    "files[0].exclude[0]",
  ],
  [
    "fields as an array",
    config({ files: [group({ fields: [] })] }),
    "Invalid files[0].fields: expected an object of string fields, found an array",
    "files[0].fields",
  ],
  [
    "a numeric field value",
    config({ files: [group({ fields: { type: 5 } })] }),
    "Invalid files[0].fields.type 5: expected a string",
    "files[0].fields.type",
  ],
  [
    "an object field value under an odd name",
    config({ files: [group({ fields: { "a.b": {} } })] }),
    'Invalid files[0].fields["a.b"]: expected a string, found an object',
    'files[0].fields["a.b"]',
  ],
  [
    "an empty field name",
    config({ files: [group({ fields: { "": "x" } })] }),
    'Invalid files[0].fields[""]: a field name must not be empty',
    'files[0].fields[""]',
  ],
  [
    "the reserved field line",
    config({ files: [group({ fields: { line: "x" } })] }),
    'Invalid files[0].fields.line: the field name "line" is reserved ' +
      "(every event carries its line)",
    "files[0].fields.line",
  ],
  [
    "the reserved field host",
    config({ files: [group({ fields: { host: "x" } })] }),
    'Invalid files[0].fields.host: the field name "host" is reserved ' +
      "(every event carries the shipping host)",
    "files[0].fields.host",
  ],
  ...(["file", "offset"] as const).map(
    (name): [string, unknown, string, string] => [
      `the field ${name} with include_file_fields`,
      config({
        files: [group({ include_file_fields: true, fields: { [name]: "x" } })],
      }),
      `Invalid files[0].fields.${name}: the field name "${name}" is ` +
        "reserved (files[0].include_file_fields is true)",
      `files[0].fields.${name}`,
    ],
  ),
  [
    "read_from start",
    config({ files: [group({ read_from: "start" })] }),
    'Invalid files[0].read_from "start": expected "beginning" or "end"',
    "files[0].read_from",
  ],
  [
    "a long bad value is cut",
    config({ files: [group({ read_from: "x".repeat(200) })] }),
    `Invalid files[0].read_from "${"x".repeat(78)}…: expected "beginning" or "end"`,
    "files[0].read_from",
  ],
  [
    "include_file_fields as a string",
    config({ files: [group({ include_file_fields: "true" })] }),
    'Invalid files[0].include_file_fields "true": expected true or false',
    "files[0].include_file_fields",
  ],
  [
    "a typo is reported before a missing TLS file is read",
    config({ network: net({ ca: "nope.crt" }), files: [{ path: ["x"] }] }),
    `Unknown key files[0].path: expected one of ${FILE_KEYS}`,
    "files[0].path",
  ],
];

for (const [name, value, message, field] of BAD) {
  test(`config: refuses ${name}`, () => {
    const err = parseError(value, BASE);
    assert.equal(err.message, message);
    assert.equal(err.field, field);
  });
}
