/**
 * The values lorne keeps in etcd, checked as untrusted input, and the
 * placement rule. No etcd needed.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { ClusterKeys } from "../../src/cluster/keys.js";
import { chooseHost, type Candidate } from "../../src/cluster/placement.js";
import {
  parseAssignment,
  parseHost,
  parseJob,
  parseRetention,
  parseStatus,
  validateSubmission,
} from "../../src/cluster/records.js";
import {
  parseAdvertise,
  parseEndpoints,
  parseFinishedMax,
  parseFinishedRetention,
  parseLeaseTtl,
} from "../../src/cluster/settings.js";
import { retentionNote } from "../../src/cli/cluster.js";
import { formatDuration } from "../../src/duration.js";

const NOW = new Date("2026-01-02T03:04:05.000Z");

function host(
  id: string,
  attributes: Record<string, string> = {},
  ports = 100,
) {
  return {
    id,
    url: "http://127.0.0.1:1113",
    attributes,
    backend: "process",
    capacity: { ports },
    version: "0.1.0",
    started_at: NOW.toISOString(),
  };
}

test("records: a submission keeps the host spec apart from service, constraints and restart", () => {
  const job = validateSubmission(
    {
      id: "web",
      config: {
        cmd: ["httpd"],
        tcp_ports: 1,
        service: { name: "www", port_index: 0 },
      },
      constraints: { zone: "a" },
      restart: "on-host-loss",
    },
    "generated",
    NOW,
  );
  assert.deepEqual(job, {
    id: "web",
    spec: { config: { cmd: ["httpd"], tcp_ports: 1 } },
    constraints: { zone: "a" },
    restart: "on-host-loss",
    service: { name: "www", port_index: 0 },
    desired: "run",
    submitted_at: NOW.toISOString(),
  });
  // It reads back as it was written.
  assert.deepEqual(parseJob(JSON.stringify(job)), job);
  assert.equal(
    validateSubmission({ config: { cmd: ["true"] } }, "gen").id,
    "gen",
  );
});

test("records: bad submissions name the field", () => {
  const cases: [unknown, string][] = [
    [
      { config: { cmd: [] } },
      "Invalid config.cmd: a job needs a command (cmd or entrypoint)",
    ],
    [
      { config: { cmd: ["x"], env: { LORNE_ETCD: "x" } } },
      "Invalid config.env.LORNE_ETCD: the host sets it",
    ],
    [
      { config: { cmd: ["x"] }, restart: "always" },
      'Invalid restart: must be one of never, on-host-loss, got "always"',
    ],
    [
      { config: { cmd: ["x"] }, constraints: { zone: 1 } },
      "Invalid constraints.zone: must be a string, got 1",
    ],
    [
      { config: { cmd: ["x"], service: { name: "a/b" } } },
      'Invalid service name "a/b": must be 1-128 characters of A-Z a-z 0-9 _ . - and not only dots',
    ],
    [
      { config: { cmd: ["x"], service: { name: "a", port_index: 64 } } },
      "Invalid config.service.port_index: must be a whole number from 0 to 63, got 64",
    ],
    [
      { config: { cmd: ["x"], service: { name: "a", port: 1 } } },
      "Unknown field config.service.port: expected config.service.name, config.service.port_index",
    ],
  ];
  for (const [body, message] of cases) {
    assert.throws(() => validateSubmission(body, "id"), { message });
  }
});

test("records: malformed etcd values are refused with the field", () => {
  const status = {
    job_id: "j",
    state: "running",
    host_id: "h",
    session: "1",
    attempt: 1,
    pid: 10,
    ports: [],
    exit_status: null,
    signal: null,
    error: null,
    updated_at: NOW.toISOString(),
  };
  const cases: [() => unknown, string][] = [
    [() => parseJob("{nope"), "Invalid value: not JSON"],
    [() => parseJob("[]"), "Invalid value: must be an object, got an array"],
    [
      () => parseJob('{"id":"x"}'),
      "Invalid spec: must be an object, got nothing",
    ],
    [
      () => parseHost(JSON.stringify({ ...host("h"), url: "ftp://x" })),
      'Invalid url: must be an http URL without a path, got "ftp://x"',
    ],
    [
      () => parseHost(JSON.stringify({ ...host("h"), capacity: {} })),
      "Invalid capacity.ports: must be a whole number, got nothing",
    ],
    [
      () => parseStatus(JSON.stringify({ ...status, state: "zombie" })),
      'Invalid state: must be one of pending, assigned, starting, running, done, crashed, stopped, failed, lost, got "zombie"',
    ],
    [
      () => parseStatus(JSON.stringify({ ...status, ports: [70000] })),
      "Invalid ports: must be an array of port numbers, got an array",
    ],
    [
      () => parseStatus(JSON.stringify({ ...status, host_id: "../x" })),
      'Invalid host id "../x": must be 1-128 characters of A-Z a-z 0-9 _ . - and not only dots',
    ],
    [
      () =>
        parseAssignment(
          JSON.stringify({ job_id: "j", host_id: "h", session: 1 }),
        ),
      "Invalid session: must be a lease id (decimal digits), got 1",
    ],
    [
      () =>
        parseAssignment(
          JSON.stringify({ job_id: "j", host_id: "h", session: "abc" }),
        ),
      'Invalid session: must be a lease id (decimal digits), got "abc"',
    ],
    [
      () => parseStatus(JSON.stringify({ ...status, session: "abc" })),
      'Invalid session: must be a lease id (decimal digits), got "abc"',
    ],
    // A placed job not yet ended is checked by its host and lease.
    [
      () => parseStatus(JSON.stringify({ ...status, session: null })),
      "Invalid session: must be set for a job that is running, got null",
    ],
    [
      () =>
        parseStatus(
          JSON.stringify({ ...status, state: "assigned", host_id: null }),
        ),
      "Invalid host_id: must be set for a job that is assigned, got null",
    ],
  ];
  for (const [parse, message] of cases) assert.throws(parse, { message });
  assert.deepEqual(parseStatus(JSON.stringify(status)), status);
  // Pending and ended jobs need neither.
  for (const state of ["pending", "done", "lost"]) {
    const free = { ...status, state, host_id: null, session: null };
    assert.deepEqual(parseStatus(JSON.stringify(free)), free);
  }
});

test("placement: constraints first, then the fewest active jobs, ties to the smallest id", () => {
  const candidates: Candidate[] = [
    { host: host("c", { zone: "a" }), active: 1 },
    { host: host("b", { zone: "b" }), active: 1 },
    { host: host("a", { zone: "b" }), active: 2 },
    { host: host("d", { zone: "a" }, 0), active: 0 },
  ];
  const job = (constraints: Record<string, string>, tcp_ports = 0) => ({
    ...validateSubmission(
      { config: { cmd: ["x"], tcp_ports }, constraints },
      "j",
    ),
  });
  assert.equal(chooseHost(job({}), candidates)?.host.id, "d");
  assert.equal(chooseHost(job({}, 1), candidates)?.host.id, "b");
  assert.equal(chooseHost(job({ zone: "a" }, 1), candidates)?.host.id, "c");
  assert.equal(chooseHost(job({ zone: "b" }), candidates)?.host.id, "b");
  assert.equal(chooseHost(job({ zone: "c" }), candidates), null);
  // An inherited name is not an attribute.
  assert.equal(chooseHost(job({ toString: "x" }), candidates), null);
});

test("keys: the layout under a prefix, and bad prefixes", () => {
  const keys = new ClusterKeys("/x/");
  assert.equal(keys.assignment("h", "j"), "/x/assignments/h/j");
  assert.deepEqual(keys.parse("/x/status/j"), { kind: "status", parts: ["j"] });
  assert.equal(keys.parse("/y/status/j"), null);
  assert.equal(keys.parse("/x/other/j"), null);
  for (const bad of ["lorne/", "/lorne", "", "/a//"]) {
    assert.throws(() => new ClusterKeys(bad), {
      message: `Invalid etcd prefix "${bad}": expected a path that starts and ends with "/", such as /lorne/`,
    });
  }
});

test("settings: endpoints, advertise and lease TTL flags", () => {
  assert.deepEqual(parseEndpoints("127.0.0.1:2379, http://[::1]:2380"), [
    "http://127.0.0.1:2379",
    "http://[::1]:2380",
  ]);
  assert.throws(() => parseEndpoints("https://e:2379"), {
    message:
      'Invalid --etcd endpoint "https://e:2379": expected http://host:port (https is not supported)',
  });
  assert.throws(() => parseEndpoints(","), {
    message:
      'Invalid --etcd ",": expected URL[,URL...], e.g. http://127.0.0.1:2379',
  });
  assert.equal(parseAdvertise("node-1.example:1113"), "node-1.example:1113");
  assert.throws(() => parseAdvertise("10.0.0.1"), {
    message:
      'Invalid --advertise "10.0.0.1": expected host:port, e.g. 10.0.0.5:1113',
  });
  assert.equal(parseLeaseTtl("2"), 2);
  assert.throws(() => parseLeaseTtl("0"), {
    message:
      'Invalid --lease-ttl-s "0": expected a whole number of seconds from 1 to 86400',
  });
});

test("settings: retention flags, and the note ps --all prints", () => {
  const ok: [string, number][] = [
    ["0", 0],
    ["500ms", 500],
    ["90s", 90_000],
    ["30m", 1_800_000],
    ["24h", 86_400_000],
    ["3650d", 3_650 * 86_400_000],
  ];
  for (const [text, ms] of ok) {
    assert.equal(parseFinishedRetention(text), ms, text);
  }
  for (const bad of ["", "24", "1.5h", "-1h", "3651d", "1w", " 1h"]) {
    assert.throws(() => parseFinishedRetention(bad), {
      message:
        `Invalid --finished-retention ${JSON.stringify(bad)}: expected a ` +
        "duration such as 90s, 30m, 24h or 1d12h, up to 3650d, or 0 to keep " +
        "finished jobs forever",
    });
  }
  assert.equal(parseFinishedMax("1"), 1);
  assert.equal(parseFinishedMax("10000000"), 10_000_000);
  for (const bad of ["0", "10000001", "1e3", "-1", ""]) {
    assert.throws(() => parseFinishedMax(bad), {
      message:
        `Invalid --finished-max ${JSON.stringify(bad)}: expected a whole ` +
        "number of jobs from 1 to 10000000",
    });
  }
  assert.deepEqual(
    [0, 90, 90_000, 86_400_000, 90_061_001].map(formatDuration),
    ["0s", "90ms", "1m30s", "1d", "1d1h1m1s1ms"],
  );

  const record = parseRetention(
    JSON.stringify({
      scheduler: "h1",
      finished_retention_ms: 86_400_000,
      finished_max: 10_000,
      published_at: NOW.toISOString(),
    }),
  );
  assert.equal(
    retentionNote(record),
    "Finished jobs are removed 1d after they end, and the oldest first " +
      'beyond 10000 (scheduler "h1")',
  );
  assert.equal(
    retentionNote({ ...record, finished_retention_ms: 0 }),
    'Finished jobs are kept forever (scheduler "h1": --finished-retention 0)',
  );
  assert.equal(
    retentionNote(null),
    "Finished jobs: no scheduler leads, so none is removed until one does " +
      "(by default 1d after it ended)",
  );
  assert.equal(
    retentionNote(null, "s2"),
    'Finished jobs: scheduler "s2" leads, but how long it keeps them ' +
      "cannot be read",
  );
  assert.throws(
    () => parseRetention('{"scheduler":"h1","finished_max":0}'),
    /^ValidationError: Invalid finished_retention_ms: must be a whole number from 0, got nothing$/,
  );
});
