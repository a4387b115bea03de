/**
 * The cluster commands end to end (`lorne cluster ...`, `lorne host
 * --etcd`), a host's clean shutdown, and the errors when etcd cannot be
 * reached.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";

import type { ClusterClient } from "../../src/cluster/client.js";
import {
  LORNE,
  ROOT,
  runLorne,
  tempDir,
  waitFor,
  type DaemonProcess,
} from "../helpers.js";
import {
  etcdSkipReason,
  freePorts,
  startEtcd,
  type EtcdCluster,
} from "./etcd.js";
import {
  killLeftovers,
  openClient,
  startClusterHost,
  waitForLine,
} from "./hosts.js";

const PORT_BASE = 60200;

describe("cluster cli", { skip: etcdSkipReason() }, () => {
  let etcd: EtcdCluster;
  let client: ClusterClient;
  let c1: DaemonProcess;
  let c2: DaemonProcess;
  let etcdFlag: string[];

  before(async () => {
    etcd = await startEtcd();
    etcdFlag = ["--etcd", etcd.endpoints.join(",")];
    c1 = await startClusterHost(etcd.endpoints, {
      id: "c1",
      attributes: { role: "web" },
      scheduler: true,
      portBase: PORT_BASE,
    });
    c2 = await startClusterHost(etcd.endpoints, {
      id: "c2",
      portBase: PORT_BASE + 10,
    });
    ({ client } = await openClient(etcd.endpoints));
  });

  after(async () => {
    client?.close();
    for (const host of [c1, c2]) {
      if (!host) continue;
      await host.stop();
      killLeftovers(host.stateDir);
    }
    await etcd?.close();
  });

  test("cluster cli: run, hosts, ps, services and stop", async () => {
    const run = await runLorne([
      "cluster",
      "run",
      ...etcdFlag,
      "--id",
      "cli-1",
      "--constraint",
      "role=web",
      "-p",
      "1",
      "--service",
      "web:0",
      "--wait",
      "--",
      "sleep",
      "60",
    ]);
    assert.equal(run.stdout, "cli-1\n");
    assert.equal(run.stderr, "cli-1 running on c1\n");
    assert.equal(run.code, 0);

    const hosts = await runLorne(["cluster", "hosts", ...etcdFlag]);
    assert.equal(hosts.code, 0, hosts.stderr);
    const rows = hosts.stdout
      .trimEnd()
      .split("\n")
      .map((l) => l.split(/\s{3,}/));
    assert.deepEqual(rows, [
      ["ID", "URL", "BACKEND", "JOBS", "ATTRIBUTES"],
      ["c1", c1.url, "process", "1", "role=web"],
      ["c2", c2.url, "process", "0", "-"],
    ]);

    const job = await client.job("cli-1");
    const port = job.status?.ports[0];
    const ps = await runLorne(["cluster", "ps", ...etcdFlag]);
    assert.equal(ps.code, 0, ps.stderr);
    assert.deepEqual(
      ps.stdout
        .trimEnd()
        .split("\n")
        .map((l) => l.split(/\s{3,}/)),
      [
        ["ID", "STATE", "HOST", "ATTEMPT", "PORTS", "COMMAND"],
        ["cli-1", "running", "c1", "1", String(port), "sleep 60"],
      ],
    );

    const services = await runLorne([
      "cluster",
      "services",
      "web",
      ...etcdFlag,
    ]);
    assert.equal(services.code, 0, services.stderr);
    assert.match(
      services.stdout,
      new RegExp(`^web\\s+cli-1\\s+c1\\s+127\\.0\\.0\\.1:${port}$`, "m"),
    );

    const stop = await runLorne(["cluster", "stop", "cli-1", ...etcdFlag]);
    assert.equal(stop.stdout, "cli-1 stopped on c1\n");
    assert.equal(stop.code, 0);
    const none = await runLorne(["cluster", "stop", "nope", ...etcdFlag]);
    assert.equal(none.stderr, 'lorne: Job "nope" not found\n');
    assert.equal(none.code, 1);
  });

  test("cluster cli: events prints changes as logfmt", async () => {
    const child = spawn(
      process.execPath,
      [LORNE, "cluster", "events", ...etcdFlag],
      {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
        timeout: 30_000,
      },
    );
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on("line", (l) => lines.push(l));
    const exited = new Promise<number | null>((resolve) =>
      child.once("exit", (code) => resolve(code)),
    );
    // The watch is in place once a change made now shows up.
    await waitFor(async () => {
      await client.submit({ config: { cmd: ["true"] } });
      return lines.some((l) => l.includes("event=jobs.put"));
    }, "cluster events to print");
    await client.submit({ id: "ev-1", config: { cmd: ["true"] } });
    await waitForLine(
      { lines, exited },
      /event=status\.put job\.id=ev-1 state=done host\.id=c\d exit_status=0/,
      "ev-1's done status",
    );
    assert.ok(
      lines.some((l) =>
        /^rev=\d+ event=jobs\.put job\.id=ev-1 desired=run$/.test(l),
      ),
    );
    assert.ok(
      lines.some((l) =>
        /event=assignments\.put host\.id=c\d job\.id=ev-1 attempt=1/.test(l),
      ),
    );
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
  });

  test("cluster cli: etcd unreachable is one clear line and exit 1", async () => {
    const [port] = await freePorts(1);
    const url = `http://127.0.0.1:${port}`;
    const ps = await runLorne(["cluster", "ps", "--etcd", url]);
    assert.equal(
      ps.stderr,
      `lorne: Cannot reach etcd at ${url}: connect ECONNREFUSED 127.0.0.1:${port}\n`,
    );
    assert.equal(ps.code, 1);
    const env = await runLorne(["cluster", "hosts"], {
      env: { ...process.env, LORNE_ETCD: `${url},127.0.0.1:${port}` },
    });
    assert.match(
      env.stderr,
      new RegExp(`^lorne: Cannot reach etcd at ${url},${url}: `),
    );
    assert.equal(env.code, 1);
    const bad = await runLorne(["cluster", "ps", "--etcd", "https://x:1"]);
    assert.equal(
      bad.stderr,
      'lorne: Invalid --etcd endpoint "https://x:1": expected http://host:port (https is not supported)\n',
    );
    assert.equal(bad.code, 2);

    const state = tempDir("lorne-state-");
    const host = await runLorne(
      ["host", "--listen", "127.0.0.1:0", "--state", state.path, "--etcd", url],
      { timeoutMs: 30_000 },
    );
    state.remove();
    assert.match(
      host.stderr,
      new RegExp(
        `^lorne host: Cannot reach etcd at ${url}: connect ECONNREFUSED`,
      ),
    );
    assert.equal(host.code, 1);
  });

  test("cluster cli: SIGTERM deregisters a host at once; its restartable job moves", async () => {
    // One job on c1 makes c2 the host with the fewest.
    await client.submit({
      id: "anchor",
      config: { cmd: ["sleep", "60"] },
      constraints: { role: "web" },
    });
    await client.waitFor("anchor", (s) => s === "running", 15_000);
    await client.submit({
      id: "mover",
      config: { cmd: ["sleep", "60"] },
      restart: "on-host-loss",
    });
    const placed = await client.waitFor(
      "mover",
      (s) => s === "running",
      15_000,
    );
    assert.equal(placed.status?.host_id, "c2");

    assert.equal(await c2.stop(), 0);
    assert.ok(c2.lines.some((l) => /at=deregistered/.test(l)));
    // Revoked, not expired: gone now, with no wait for the lease TTL.
    assert.deepEqual(
      (await client.hosts()).map((h) => h.host.id),
      ["c1"],
    );
    const after = await waitFor(async () => {
      const j = await client.job("mover");
      return j.state === "running" && j.status?.host_id === "c1" ? j : null;
    }, "mover to run on c1");
    assert.equal(after.status?.attempt, 2);
  });
});
