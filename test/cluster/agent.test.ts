/**
 * The host's cluster agent against a real one-node etcd: a job that ends
 * while etcd is down gets its final status once etcd is back (the agent
 * keeps trying), and a job id the cluster has forgotten (its keys removed,
 * as retention does) runs again on the host that ran it before.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import type { ClusterClient } from "../../src/cluster/client.js";
import { openEtcd } from "../../src/cluster/etcd.js";
import { HostClient } from "../../src/host/client.js";
import { tempDir, waitFor, type DaemonProcess } from "../helpers.js";
import { etcdSkipReason, startEtcd, type EtcdCluster } from "./etcd.js";
import {
  killLeftovers,
  openClient,
  startClusterHost,
  waitForLine,
} from "./hosts.js";

const PORT_BASE = 60400;
/** Bound of every wait: generous for a loaded CI machine. */
const WAIT_MS = 60_000;

describe("cluster agent", { skip: etcdSkipReason() }, () => {
  let etcd: EtcdCluster;
  let client: ClusterClient;
  let host: DaemonProcess;
  const go = tempDir("lorne-agent-go-");

  before(async () => {
    etcd = await startEtcd();
    host = await startClusterHost(etcd.endpoints, {
      id: "a1",
      scheduler: true,
      portBase: PORT_BASE,
      // Outlives the etcd outage below: the host stays registered.
      leaseTtlS: 30,
    });
    ({ client } = await openClient(etcd.endpoints));
  });

  after(async () => {
    client?.close();
    await host?.stop();
    if (host) killLeftovers(host.stateDir);
    await etcd?.close();
    go.remove();
  });

  /** A job that runs until its go file appears, or 120 s at most. */
  function waitingJob(name: string): string[] {
    const file = join(go.path, name);
    return [
      "sh",
      "-c",
      `n=0; while [ ! -e ${file} ] && [ $n -lt 2400 ]; do sleep 0.05; n=$((n+1)); done`,
    ];
  }

  test("cluster agent: a job that ends while etcd is down is reported done once etcd is back", async () => {
    await client.submit({ id: "blip", config: { cmd: waitingJob("blip") } });
    await client.waitFor("blip", (s) => s === "running", WAIT_MS);

    const [member] = etcd.members;
    assert.ok(member);
    await member.stop();
    try {
      writeFileSync(join(go.path, "blip"), "");
      await waitFor(
        async () =>
          (await new HostClient(host).getJob("blip")).status === "done",
        "the job to end on its host",
        WAIT_MS,
      );
      // Past the five attempts the agent used to give up after.
      await waitForLine(
        host,
        /at=status_error.*job\.id=blip.*attempt=7\b/,
        "the agent's seventh attempt at the status",
        WAIT_MS,
      );
    } finally {
      await member.restart();
    }
    // The client's own calls may fail for a moment after the restart.
    const done = await waitFor(
      async () => {
        const job = await client.job("blip");
        return job.state === "done" && job;
      },
      "the job's status to say done",
      WAIT_MS,
    );
    assert.equal(done.status?.exit_status, 0);
  });

  test("cluster agent: an id the cluster forgot runs again on the host that ran it", async () => {
    await client.submit({ id: "again", config: { cmd: ["true"] } });
    await client.waitFor("again", (s) => s === "done", WAIT_MS);
    // What retention removes: the job's own keys; the host keeps its record.
    const raw = openEtcd({ endpoints: etcd.endpoints });
    try {
      await raw.delete().key("/lorne/jobs/again");
      await raw.delete().key("/lorne/status/again");
      await raw.delete().prefix("/lorne/assignments/a1/again");
    } finally {
      raw.close();
    }
    assert.equal((await new HostClient(host).getJob("again")).status, "done");

    await client.submit({ id: "again", config: { cmd: waitingJob("again") } });
    const running = await client.waitFor(
      "again",
      (s) => s === "running" || s === "failed",
      WAIT_MS,
    );
    assert.equal(running.state, "running", running.status?.error ?? "");
    writeFileSync(join(go.path, "again"), "");
    const done = await client.waitFor("again", (s) => s === "done", WAIT_MS);
    assert.equal(done.status?.host_id, "a1");
  });
});
