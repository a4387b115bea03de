/**
 * The cluster settings in `lorne host --config FILE`: a config file joins
 * a host to a real one-node etcd, with its scheduler and retention, flags
 * override the file, and bad values are refused with the flags' messages,
 * naming the key.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { clusterSettings, readConfig } from "../../src/cli/host-config.js";
import { ClusterClient } from "../../src/cluster/client.js";
import { runLorne, startDaemon, tempDir, waitFor } from "../helpers.js";
import { etcdSkipReason, startEtcd, type EtcdCluster } from "./etcd.js";
import { killLeftovers, waitForLine } from "./hosts.js";

const PORTS = "60230-60239";
/** Bound of every wait: generous for a loaded CI machine. */
const WAIT_MS = 45_000;

const dir = tempDir("lorne-cluster-config-");
after(() => dir.remove());

function writeConfig(name: string, config: unknown): string {
  const path = join(dir.path, `${name}.json`);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

test("cluster config: bad cluster values are refused with the flags' messages, naming the key", () => {
  // Nothing listens there; these are only parsed.
  const etcd = "http://127.0.0.1:1";
  const cases: [Record<string, unknown>, string][] = [
    [
      { etcd: "https://e:2379" },
      'Invalid config etcd endpoint "https://e:2379": expected http://host:port (https is not supported)',
    ],
    [{ etcd: ["a"] }, 'field "etcd" must be a string'],
    [
      { advertise: "e:1" },
      "Invalid config advertise: needs --etcd or config etcd",
    ],
    [
      { etcd, advertise: "nope" },
      'Invalid config advertise "nope": expected host:port, e.g. 10.0.0.5:1113',
    ],
    [{ etcd, scheduler: "yes" }, 'field "scheduler" must be true or false'],
    [
      { etcd, etcd_prefix: "lorne" },
      'Invalid config etcd_prefix "lorne": expected a path that starts and ends with "/", such as /lorne/',
    ],
    [
      { etcd, lease_ttl_s: 0 },
      'Invalid config lease_ttl_s "0": expected a whole number of seconds from 1 to 86400',
    ],
    [{ etcd, lease_ttl_s: "2" }, 'field "lease_ttl_s" must be a number'],
    [
      { etcd, finished_max: 5 },
      "Invalid config finished_max: needs --scheduler or config scheduler",
    ],
    [
      { etcd, scheduler: false, finished_retention: "1h" },
      "Invalid config finished_retention: needs --scheduler or config scheduler",
    ],
    [
      { etcd, scheduler: true, finished_retention: "1x" },
      'Invalid config finished_retention "1x": expected a duration such as 90s, 30m, 24h or 1d12h, up to 3650d, or 0 to keep finished jobs forever',
    ],
    [
      { etcd, scheduler: true, finished_max: 0.5 },
      'Invalid config finished_max "0.5": expected a whole number of jobs from 1 to 10000000',
    ],
  ];
  cases.forEach(([config, message], i) => {
    const path = writeConfig(`bad-${i}`, config);
    const prefix = message.startsWith("field ")
      ? `Invalid config "${path}": `
      : "";
    assert.throws(() => clusterSettings({}, readConfig(path)), {
      message: prefix + message,
    });
  });

  const unknown = writeConfig("unknown", { etcd, lease_ttl: 2 });
  assert.throws(() => readConfig(unknown), {
    message:
      `Invalid config "${unknown}": unknown field "lease_ttl"; expected ` +
      "one of id, listen, state, state_store, backend, manifest, external, " +
      "attributes, ports, grace_ms, event_history, docker_socket, bind, " +
      "keep_containers, pull_timeout_ms, socket, max_starts, etcd, " +
      "advertise, scheduler, etcd_prefix, lease_ttl_s, finished_retention, " +
      "finished_max, ended_retention, ended_max",
  });
});

test("cluster config: flags override the file, setting by setting", () => {
  const file = {
    etcd: "http://127.0.0.1:1",
    etcd_prefix: "/a/",
    lease_ttl_s: 2,
    scheduler: false,
    finished_retention: "1h",
  };
  assert.deepEqual(
    clusterSettings(
      { etcd: "127.0.0.1:3", leaseTtlS: "3", scheduler: true },
      file,
    ),
    {
      endpoints: ["http://127.0.0.1:3"],
      prefix: "/a/",
      advertise: undefined,
      scheduler: true,
      leaseTtlS: 3,
      finishedRetentionMs: 3_600_000,
      finishedMax: undefined,
    },
  );
  // A flag's error names the flag, also when the file has the rest.
  assert.throws(
    () =>
      clusterSettings(
        { finishedMax: "5" },
        { ...file, finished_retention: undefined },
      ),
    { message: "Invalid --finished-max: needs --scheduler" },
  );
  assert.equal(clusterSettings({}, {}), undefined);
  // --no-scheduler turns off the file's scheduler, and needs no --etcd.
  const off = clusterSettings(
    { scheduler: false },
    { etcd: "http://127.0.0.1:1", scheduler: true },
  );
  assert.equal(off?.scheduler, false);
  assert.equal(clusterSettings({ scheduler: false }, {}), undefined);
});

test("cluster config: lorne host exits 2 on a bad cluster value in its config", async () => {
  const cases: [unknown, string][] = [
    [
      { etcd: "http://127.0.0.1:1", lease_ttl_s: 0 },
      'lorne host: Invalid config lease_ttl_s "0": expected a whole number of seconds from 1 to 86400\n',
    ],
    [
      { scheduler: true },
      "lorne host: Invalid config scheduler: needs --etcd or config etcd\n",
    ],
  ];
  const runs = await Promise.all(
    cases.map(([config], i) =>
      runLorne([
        "host",
        "--config",
        writeConfig(`cli-${i}`, config),
        "--state",
        join(dir.path, `cli-${i}-state`),
        "--listen",
        "127.0.0.1:0",
      ]),
    ),
  );
  runs.forEach((run, i) => {
    const [config, stderr] = cases[i] as [unknown, string];
    assert.equal(run.stderr, stderr, JSON.stringify(config));
    // Bad input, found before anything starts (docs/host.md).
    assert.equal(run.code, 2);
  });
});

describe("cluster config file", { skip: etcdSkipReason() }, () => {
  let etcd: EtcdCluster;

  before(async () => {
    etcd = await startEtcd();
  });

  after(async () => {
    await etcd?.close();
  });

  test("cluster config: a config file joins a host to etcd with its scheduler and retention; flags override it", async () => {
    const config = writeConfig("join", {
      etcd: etcd.endpoints.join(","),
      advertise: "127.0.0.1:1113",
      scheduler: true,
      etcd_prefix: "/cfg/",
      lease_ttl_s: 2,
      attributes: { zone: "a", rack: "r1" },
      finished_retention: "90m",
      finished_max: 7,
      ports: PORTS,
      grace_ms: 1000,
    });
    const host = await startDaemon(
      ["--config", config, "--attribute", "zone=b", "--lease-ttl-s", "3"],
      { id: "cfg-1" },
    );
    const client = await ClusterClient.open({
      endpoints: etcd.endpoints,
      prefix: "/cfg/",
    });
    try {
      const registered = await waitForLine(
        host,
        /at=registered/,
        "the host to register",
        WAIT_MS,
      );
      assert.match(registered, / lease_ttl_s=3 /);
      assert.match(registered, / url=http:\/\/127\.0\.0\.1:1113/);

      const hosts = await client.hosts();
      assert.deepEqual(
        hosts.map((h) => [h.host.id, h.host.url, h.host.attributes]),
        [["cfg-1", "http://127.0.0.1:1113", { zone: "b", rack: "r1" }]],
      );
      const retention = await waitFor(
        () => client.retention(),
        "the scheduler to publish its retention",
        WAIT_MS,
      );
      assert.deepEqual(
        [
          retention.scheduler,
          retention.finished_retention_ms,
          retention.finished_max,
        ],
        ["cfg-1", 90 * 60_000, 7],
      );

      // Its scheduler places jobs on it.
      await client.submit({ id: "cfg-job", config: { cmd: ["true"] } });
      const done = await client.waitFor(
        "cfg-job",
        (state) => state === "done",
        WAIT_MS,
      );
      assert.equal(done.state, "done");
      assert.equal(done.status?.host_id, "cfg-1");
    } finally {
      client.close();
      await host.stop();
      killLeftovers(host.stateDir);
    }
  });
});
