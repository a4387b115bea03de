/**
 * A host that outlives its lease: etcd goes away for longer than the TTL
 * and comes back. The host must stop its cluster jobs (the scheduler
 * counts them lost and may run them elsewhere) and register again as a
 * new session that takes new jobs.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import type { ClusterClient } from "../../src/cluster/client.js";
import { HostClient } from "../../src/host/client.js";
import { waitFor, type DaemonProcess } from "../helpers.js";
import { etcdSkipReason, startEtcd, type EtcdCluster } from "./etcd.js";
import {
  killLeftovers,
  openClient,
  startClusterHost,
  waitForLine,
} from "./hosts.js";

const PORT_BASE = 60220;

describe("cluster lease", { skip: etcdSkipReason() }, () => {
  let etcd: EtcdCluster;
  let client: ClusterClient;
  let host: DaemonProcess;

  before(async () => {
    etcd = await startEtcd();
    host = await startClusterHost(etcd.endpoints, {
      id: "l1",
      scheduler: true,
      portBase: PORT_BASE,
    });
    ({ client } = await openClient(etcd.endpoints));
  });

  after(async () => {
    client?.close();
    if (host) {
      await host.stop();
      killLeftovers(host.stateDir);
    }
    await etcd?.close();
  });

  test("cluster lease: a host whose lease ran out stops its jobs and registers again", async () => {
    await client.submit({ id: "held", config: { cmd: ["sleep", "60"] } });
    await client.submit({
      id: "sticky",
      config: { cmd: ["sleep", "60"] },
      restart: "on-host-loss",
    });
    const held = await client.waitFor("held", (s) => s === "running", 15_000);
    assert.equal(held.state, "running");
    await client.waitFor("sticky", (s) => s === "running", 15_000);
    const api = new HostClient(host);

    const member = etcd.members[0];
    assert.ok(member);
    await member.stop();
    await waitForLine(
      host,
      /at=lease_lost/,
      "the host to lose its lease",
      30_000,
    );
    const local = await waitFor(async () => {
      const job = await api.getJob("held");
      return job.status === "stopped" ? job : null;
    }, "the host to stop its cluster job");
    assert.equal(local.status, "stopped");
    assert.equal(host.child.exitCode, null);

    await member.restart();
    await waitFor(
      () => host.lines.filter((l) => /at=registered/.test(l)).length >= 2,
      "the host to register again",
      30_000,
    );
    const lost = await client.waitFor("held", (s) => s === "lost", 30_000);
    assert.equal(lost.state, "lost", host.lines.slice(-40).join("\n"));
    assert.equal(lost.status?.error, 'host "l1" was lost (its lease ended)');

    await client.submit({ id: "fresh", config: { cmd: ["sleep", "60"] } });
    const fresh = await client.waitFor("fresh", (s) => s === "running", 15_000);
    assert.equal(fresh.status?.host_id, "l1");
    assert.notEqual(fresh.status?.session, held.status?.session);

    // The restartable job waits for another host: l1 still has its id.
    const sticky = await client.job("sticky");
    assert.equal(sticky.state, "pending");
    assert.equal(sticky.status?.host_id, "l1");
    assert.equal(sticky.status?.attempt, 1);
  });
});
