/**
 * The `lorne ship` config loader: a butteredscones config loads as it is,
 * every default and extension resolves to exact values, relative paths
 * follow the config file, and an unreadable or non-JSON file is named with
 * the line and column. Bad values: config-errors.test.ts; TLS files:
 * config-tls.test.ts.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { after, before, test } from "node:test";

import {
  loadShipConfig,
  parseShipConfig,
  type ShipConfig,
} from "../../src/ship/config.js";
import { CertFactory, type KeyPair } from "../lumberjack/certs.js";
import {
  config,
  group,
  loadError,
  net,
  SERVER,
  type Obj,
} from "./config-helpers.js";

let certs: CertFactory;
let dir: string;
let ca: KeyPair;
let client: KeyPair;

before(() => {
  certs = new CertFactory();
  dir = certs.dir;
  ca = certs.ca("ca");
  client = certs.leaf("client", ca, { usage: "client" });
});

after(() => certs.remove());

/** butteredscones' own example config, exactly as its users wrote it. */
const BUTTEREDSCONES = `{ "state": "/var/lib/butteredscones/state.db", "max_length": 8192,
  "network": { "servers": [{ "addr": "logstash.internal:5043", "name": "logstash.internal" }],
               "certificate": "client.crt", "key": "client.key", "ca": "ca.crt",
               "timeout": 15, "spool_size": 1024 },
  "statistics": { "addr": "127.0.0.1:8088" },
  "files": [{ "paths": ["/var/log/messages", "/var/log/*.log"], "fields": { "type": "syslog" } }] }
`;

/** The defaults of config(), for comparing whole results. */
function resolved(): ShipConfig {
  return {
    statePath: join(dir, "state.db"),
    maxLineBytes: 8192,
    network: {
      servers: [
        {
          host: "127.0.0.1",
          port: 5043,
          address: "127.0.0.1:5043",
          tls: { servername: "127.0.0.1" },
        },
      ],
      version: 1,
      compressionLevel: 6,
      timeoutMs: 15_000,
      spoolSize: 1024,
    },
    files: [
      {
        paths: [join(dir, "*.log")],
        exclude: [],
        fields: {},
        readFrom: "beginning",
        includeFileFields: false,
      },
    ],
    globRefreshMs: 15_000,
    maxOpenFiles: 1024,
    closeInactiveMs: 300_000,
    stateTtlMs: 604_800_000,
  };
}

function writeConfig(name: string, text: string): string {
  return certs.file(name, text);
}

test("config: the butteredscones example loads as it is", async () => {
  const path = writeConfig("butteredscones.json", BUTTEREDSCONES);
  assert.deepEqual(await loadShipConfig(path), {
    configPath: path,
    statePath: "/var/lib/butteredscones/state.db",
    maxLineBytes: 8192,
    network: {
      servers: [
        {
          host: "logstash.internal",
          port: 5043,
          address: "logstash.internal:5043",
          tls: {
            ca: ca.cert,
            cert: client.cert,
            key: client.key,
            servername: "logstash.internal",
          },
        },
      ],
      version: 1,
      compressionLevel: 6,
      timeoutMs: 15_000,
      spoolSize: 1024,
    },
    statistics: { host: "127.0.0.1", port: 8088 },
    files: [
      {
        paths: ["/var/log/messages", "/var/log/*.log"],
        exclude: [],
        fields: { type: "syslog" },
        readFrom: "beginning",
        includeFileFields: false,
      },
    ],
    globRefreshMs: 15_000,
    maxOpenFiles: 1024,
    closeInactiveMs: 300_000,
    stateTtlMs: 604_800_000,
  } satisfies ShipConfig);
});

test("config: the smallest config gets every default", () => {
  assert.deepEqual(parseShipConfig(config(), dir), resolved());
});

test("config: every lorne extension is read", () => {
  const value = config({
    network: net({
      servers: [{ addr: "[::1]:5044" }, { addr: "logs.test:5045" }],
      version: 2,
      compression_level: 0,
      tls: false,
      timeout: 3,
      spool_size: 1_048_576,
    }),
    files: [
      group({
        exclude: ["*.gz", "/var/log/secret/**"],
        read_from: "end",
        include_file_fields: true,
        fields: { type: "app", env: "test" },
      }),
    ],
    max_length: 64 * 1024 * 1024,
    glob_refresh_ms: 100,
    max_open_files: 1,
    close_inactive_ms: 1000,
    state_ttl_ms: 2_147_483_647,
  });
  const expected = resolved();
  expected.maxLineBytes = 67_108_864;
  expected.network = {
    servers: [
      { host: "::1", port: 5044, address: "[::1]:5044" },
      { host: "logs.test", port: 5045, address: "logs.test:5045" },
    ],
    version: 2,
    compressionLevel: 0,
    timeoutMs: 3000,
    spoolSize: 1_048_576,
  };
  expected.files = [
    {
      paths: [join(dir, "*.log")],
      exclude: [join(dir, "*.gz"), "/var/log/secret/**"],
      fields: { type: "app", env: "test" },
      readFrom: "end",
      includeFileFields: true,
    },
  ];
  expected.globRefreshMs = 100;
  expected.maxOpenFiles = 1;
  expected.closeInactiveMs = 1000;
  expected.stateTtlMs = 2_147_483_647;
  assert.deepEqual(parseShipConfig(value, dir), expected);
});

const GOOD: readonly [string, Obj, (c: ShipConfig) => unknown, unknown][] = [
  // [case, config, part of the result, its expected value]
  [
    "timeout 0 means the default (butteredscones failed every send)",
    config({ network: net({ timeout: 0 }) }),
    (c) => c.network.timeoutMs,
    15_000,
  ],
  [
    "the longest timeout fits a timer",
    config({ network: net({ timeout: 2_147_483 }) }),
    (c) => c.network.timeoutMs,
    2_147_483_000,
  ],
  [
    "name is the TLS server name, apart from the address",
    config({ network: net({ servers: [{ ...SERVER, name: "logs.test" }] }) }),
    (c) => c.network.servers[0]?.tls,
    { servername: "logs.test" },
  ],
  [
    "an IPv6 server's name defaults to its address",
    config({ network: net({ servers: [{ addr: "[::1]:5043" }] }) }),
    (c) => c.network.servers[0],
    {
      host: "::1",
      port: 5043,
      address: "[::1]:5043",
      tls: { servername: "::1" },
    },
  ],
  [
    "tls true is the default",
    config({ network: net({ tls: true }) }),
    (c) => c.network.servers[0]?.tls,
    { servername: "127.0.0.1" },
  ],
  [
    "statistics with an empty addr are off",
    config({ statistics: { addr: "" } }),
    (c) => "statistics" in c,
    false,
  ],
  [
    "statistics without addr are off",
    config({ statistics: {} }),
    (c) => "statistics" in c,
    false,
  ],
  [
    "statistics on port 0 take any free port",
    config({ statistics: { addr: "localhost:0" } }),
    (c) => c.statistics,
    { host: "localhost", port: 0 },
  ],
  [
    "statistics on an IPv6 address",
    config({ statistics: { addr: "[::1]:8088" } }),
    (c) => c.statistics,
    { host: "::1", port: 8088 },
  ],
  [
    "file and offset are ordinary fields without include_file_fields",
    config({ files: [group({ fields: { file: "f", offset: "o" } })] }),
    (c) => c.files[0]?.fields,
    { file: "f", offset: "o" },
  ],
  [
    "a __proto__ field stays a field",
    JSON.parse(
      '{"state": "s", "network": {"servers": [{"addr": "h:1"}]},' +
        '"files": [{"paths": ["x"], "fields": {"__proto__": "p"}}]}',
    ) as Obj,
    (c) => Object.entries(c.files[0]?.fields ?? {}),
    [["__proto__", "p"]],
  ],
  [
    "an empty exclude list",
    config({ files: [group({ exclude: [] })] }),
    (c) => c.files[0]?.exclude,
    [],
  ],
  [
    "several file groups keep their order",
    config({
      files: [group({ paths: ["/b/*.log"] }), group({ paths: ["/a/*.log"] })],
    }),
    (c) => c.files.map((f) => f.paths),
    [["/b/*.log"], ["/a/*.log"]],
  ],
];

for (const [name, value, pick, expected] of GOOD) {
  test(`config: ${name}`, () => {
    assert.deepEqual(pick(parseShipConfig(value, dir)), expected);
  });
}

test("config: relative paths follow the config file's directory", async () => {
  mkdirSync(join(dir, "etc"), { recursive: true });
  const path = writeConfig(
    "etc/ship.json",
    JSON.stringify(
      config({
        state: "data/state.db",
        network: net({
          certificate: "../client.crt",
          key: join(dir, "client.key"),
          ca: "./../ca.crt",
        }),
        files: [
          group({
            paths: ["logs/*.log", "/abs/**/x.log", "../up/{a,b}/[0-9]?.log"],
            exclude: ["logs/skip-*.log"],
          }),
        ],
      }),
    ),
  );
  const loaded = await loadShipConfig(relative(process.cwd(), path));
  assert.equal(loaded.configPath, path);
  assert.equal(loaded.statePath, join(dir, "etc/data/state.db"));
  assert.deepEqual(loaded.network.servers[0]?.tls, {
    ca: ca.cert,
    cert: client.cert,
    key: client.key,
    servername: "127.0.0.1",
  });
  assert.deepEqual(loaded.files[0]?.paths, [
    join(dir, "etc/logs/*.log"),
    "/abs/**/x.log",
    join(dir, "up/{a,b}/[0-9]?.log"),
  ]);
  assert.deepEqual(loaded.files[0]?.exclude, [
    join(dir, "etc/logs/skip-*.log"),
  ]);
  // parseShipConfig takes a relative base from the working directory.
  assert.equal(
    parseShipConfig(config(), "rel").statePath,
    resolve("rel", "state.db"),
  );
});

test("config: a missing config file is named", async () => {
  const err = await loadError(join(dir, "missing.json"));
  assert.equal(
    err.message,
    `Cannot read config "${dir}/missing.json": no such file`,
  );
  assert.equal(err.field, undefined);
});

test("config: a directory is not a config file", async () => {
  const err = await loadError(dir);
  assert.equal(err.message, `Cannot read config "${dir}": is a directory`);
});

const BAD_JSON: readonly [string, string, string][] = [
  // [case, file text, message after the file name]
  [
    "a bracket that closes nothing",
    '{\n  "state": "x",\n  "network": {]\n}\n',
    'at line 3, column 15: expected a string key, found "]"',
  ],
  [
    "a trailing comma",
    '{"state": "x",\n}',
    'at line 2, column 1: expected a string key, found "}"',
  ],
  [
    "a duplicate key",
    '{"state": "a", "state": "b"}',
    'at line 1, column 16: duplicate key "state"',
  ],
  [
    "an empty file",
    "",
    "at line 1, column 1: expected a value, found end of input",
  ],
];

for (const [name, text, where] of BAD_JSON) {
  test(`config: bad JSON names the file, line and column: ${name}`, async () => {
    const path = writeConfig("bad.json", text);
    const err = await loadError(path);
    assert.equal(err.message, `Invalid JSON in config "${path}" ${where}`);
    assert.equal(err.field, undefined);
  });
}

test("config: a valid JSON file with a bad value names the key", async () => {
  const path = writeConfig(
    "spool.json",
    JSON.stringify(config({ network: net({ spool_size: 0 }) })),
  );
  const err = await loadError(path);
  assert.equal(
    err.message,
    "Invalid network.spool_size 0: expected a whole number from 1 to 1048576",
  );
  assert.equal(err.field, "network.spool_size");
});
