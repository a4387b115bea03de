/**
 * Three lorne hosts on one machine, joined through a one-node etcd, each
 * also campaigning as scheduler: placement, constraints, LORNE_ETCD,
 * services, stop, malformed values, and a host killed with SIGKILL.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import type { ClusterClient } from "../../src/cluster/client.js";
import { openEtcd } from "../../src/cluster/etcd.js";
import { validateSubmission } from "../../src/cluster/records.js";
import { HostClient } from "../../src/host/client.js";
import { runLorne, waitFor, type DaemonProcess } from "../helpers.js";
import { etcdSkipReason, startEtcd, type EtcdCluster } from "./etcd.js";
import {
  killLeftovers,
  openClient,
  startClusterHost,
  waitForLine,
} from "./hosts.js";

const PORT_BASE = 60000;
const IDS = ["h1", "h2", "h3"] as const;
const ZONES = { h1: "a", h2: "b", h3: "b" };

describe("cluster", { skip: etcdSkipReason() }, () => {
  let etcd: EtcdCluster;
  let client: ClusterClient;
  let invalid: string[];
  const hosts = new Map<string, DaemonProcess>();

  before(async () => {
    etcd = await startEtcd();
    const started = await Promise.all(
      IDS.map((id, i) =>
        startClusterHost(etcd.endpoints, {
          id,
          attributes: { zone: ZONES[id] },
          scheduler: true,
          portBase: PORT_BASE + i * 10,
        }),
      ),
    );
    IDS.forEach((id, i) => hosts.set(id, started[i] as DaemonProcess));
    ({ client, invalid } = await openClient(etcd.endpoints));
  });

  after(async () => {
    client?.close();
    await Promise.all([...hosts.values()].map((h) => h.stop()));
    for (const h of hosts.values()) killLeftovers(h.stateDir);
    await etcd?.close();
  });

  async function running(ids: string[]) {
    return waitFor(
      async () => {
        const jobs = (await client.jobs()).filter((j) =>
          ids.includes(j.job.id),
        );
        return jobs.length === ids.length &&
          jobs.every((j) => j.state === "running")
          ? jobs
          : null;
      },
      `jobs ${ids.join(",")} to run`,
      15_000,
    );
  }

  test("cluster: lists the three hosts with their attributes", async () => {
    const listed = await waitFor(async () => {
      const all = await client.hosts();
      return all.length === 3 ? all : null;
    }, "three hosts");
    assert.deepEqual(
      listed.map((h) => [h.host.id, h.host.attributes.zone, h.host.backend]),
      [
        ["h1", "a", "process"],
        ["h2", "b", "process"],
        ["h3", "b", "process"],
      ],
    );
    for (const h of listed) {
      assert.equal(h.host.url, hosts.get(h.host.id)?.url);
    }
  });

  test("cluster: spreads jobs to the host with the fewest, honouring constraints", async () => {
    const spread = [];
    for (let i = 0; i < 6; i++) {
      spread.push(
        (
          await client.submit({
            id: `spread-${i}`,
            config: { cmd: ["sleep", "60"] },
          })
        ).id,
      );
    }
    const placed = await running(spread);
    const perHost = new Map<string, number>();
    for (const j of placed) {
      const host = j.status?.host_id ?? "";
      perHost.set(host, (perHost.get(host) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries(perHost), { h1: 2, h2: 2, h3: 2 });

    // Each host's own API agrees: the job runs there and nowhere else.
    for (const [id, daemon] of hosts) {
      const local = (await new HostClient(daemon).listJobs())
        .filter((j) => j.id.startsWith("spread-"))
        .map((j) => j.id)
        .sort();
      const expected = placed
        .filter((j) => j.status?.host_id === id)
        .map((j) => j.job.id)
        .sort();
      assert.deepEqual(local, expected);
    }

    const zoned = [];
    for (let i = 0; i < 3; i++) {
      const job = await client.submit({
        id: `zone-a-${i}`,
        config: { cmd: ["sleep", "60"] },
        constraints: { zone: "a" },
      });
      zoned.push(job.id);
    }
    const onA = await running(zoned);
    assert.deepEqual(
      onA.map((j) => j.status?.host_id),
      ["h1", "h1", "h1"],
    );

    await client.submit({
      id: "nowhere",
      config: { cmd: ["true"] },
      constraints: { zone: "c" },
    });
    // Only the leader logs it, and any of the three may lead.
    await waitFor(
      () =>
        [...hosts.values()]
          .flatMap((h) => h.lines)
          .some((l) => /at=no_host/.test(l) && /job\.id=nowhere/.test(l)),
      "the leader to report no host for zone c",
    );
    assert.equal((await client.job("nowhere")).state, "pending");
  });

  test("cluster: every job gets LORNE_ETCD", async () => {
    const endpoints = etcd.endpoints.join(",");
    await client.submit({
      id: "env-check",
      config: { cmd: ["sh", "-c", `test "$LORNE_ETCD" = "${endpoints}"`] },
    });
    const done = await client.waitFor(
      "env-check",
      (s) => s === "done" || s === "crashed" || s === "failed",
      15_000,
    );
    assert.equal(done.state, "done");
    assert.equal(done.status?.exit_status, 0);
  });

  test("cluster: a job's service is listed while it runs, and goes when it stops", async () => {
    await client.submit({
      id: "web-1",
      config: {
        cmd: ["sleep", "60"],
        tcp_ports: 1,
        service: { name: "web", port_index: 0 },
      },
    });
    const [job] = await running(["web-1"]);
    const services = await waitFor(async () => {
      const list = await client.services("web");
      return list.length === 1 ? list : null;
    }, "service web");
    assert.deepEqual(services, [
      {
        name: "web",
        job_id: "web-1",
        host_id: job?.status?.host_id,
        address: `127.0.0.1:${job?.status?.ports[0]}`,
      },
    ]);

    await client.stop("web-1");
    const stopped = await client.waitFor(
      "web-1",
      (s) => s === "stopped",
      15_000,
    );
    assert.equal(stopped.state, "stopped");
    assert.deepEqual(await client.services("web"), []);
  });

  test("cluster: malformed values under the prefix are logged and skipped", async () => {
    const raw = openEtcd({ endpoints: etcd.endpoints });
    try {
      await raw.put("/lorne/jobs/bad-json").value("{not json");
      await raw
        .put("/lorne/jobs/bad-spec")
        .value(JSON.stringify({ id: "bad-spec" }));
      await raw
        .put("/lorne/hosts/ghost")
        .value(JSON.stringify({ id: "ghost" }));
      await raw.put("/lorne/status/spread-0").value("[1,2,3]");
      await raw
        .put("/lorne/assignments/h2/evil")
        .value(JSON.stringify({ job_id: "evil", host_id: "h2", session: 1 }));
      await raw.put("/lorne/services/web/x").value("\u0000\u00ff");
      // A running status without its host's lease: the job waits, reported
      // (no comparison on a missing lease may reach etcd).
      await raw
        .put("/lorne/jobs/no-lease")
        .value(
          JSON.stringify(
            validateSubmission(
              { config: { cmd: ["sleep", "60"] } },
              "no-lease",
            ),
          ),
        );
      await raw.put("/lorne/status/no-lease").value(
        JSON.stringify({
          job_id: "no-lease",
          state: "running",
          host_id: null,
          session: null,
          attempt: 0,
          pid: null,
          ports: [],
          exit_status: null,
          signal: null,
          error: null,
          updated_at: new Date().toISOString(),
        }),
      );
      // A well-formed assignment to h2 of a job whose spec is malformed:
      // h2 cannot run it, and says so in the job's status.
      const h2 = (await raw.get("/lorne/hosts/h2").exec()).kvs[0];
      await raw.put("/lorne/assignments/h2/bad-spec").value(
        JSON.stringify({
          job_id: "bad-spec",
          host_id: "h2",
          session: h2?.lease,
          attempt: 1,
          scheduler: "test",
          assigned_at: new Date().toISOString(),
        }),
      );
    } finally {
      raw.close();
    }

    // Every host logs the assignment it cannot read; the leader logs the rest.
    const h2 = hosts.get("h2") as DaemonProcess;
    await waitForLine(
      h2,
      /at=invalid_value key=\/lorne\/assignments\/h2\/evil .*err=/,
      "h2 to reject its bad assignment",
    );
    const all = () => [...hosts.values()].flatMap((h) => h.lines);
    await waitFor(
      () =>
        [
          "/lorne/jobs/bad-json",
          "/lorne/jobs/bad-spec",
          "/lorne/hosts/ghost",
          "/lorne/status/no-lease",
        ].every((key) =>
          all().some(
            (l) => l.includes("at=invalid_value") && l.includes(`key=${key} `),
          ),
        ),
      "the leader to reject the bad jobs and host",
    );

    // Nothing crashed, and the cluster still places jobs.
    for (const daemon of hosts.values())
      assert.equal(daemon.child.exitCode, null);
    await client.submit({ id: "after-bad", config: { cmd: ["sleep", "60"] } });
    await running(["after-bad"]);
    // The job with the unreadable status was left alone.
    const check = openEtcd({ endpoints: etcd.endpoints });
    try {
      const placed = await check.getAll().prefix("/lorne/assignments/").keys();
      assert.deepEqual(
        placed.filter((k) => k.endsWith("/no-lease")),
        [],
      );
    } finally {
      check.close();
    }
    assert.ok(invalid.includes("/lorne/jobs/bad-json"));
    const badSpec = await waitFor(async () => {
      const raw2 = openEtcd({ endpoints: etcd.endpoints });
      try {
        return await raw2.get("/lorne/status/bad-spec").string();
      } finally {
        raw2.close();
      }
    }, "h2 to report the bad job");
    const parsed = JSON.parse(badSpec) as { state: string; error: string };
    assert.deepEqual(
      [parsed.state, parsed.error],
      [
        "failed",
        "Cannot run job: /lorne/jobs/bad-spec: Invalid spec: must be an object, got nothing",
      ],
    );

    // The CLI lists the rest and says what it skipped.
    const ps = await runLorne([
      "cluster",
      "ps",
      "--etcd",
      etcd.endpoints.join(","),
    ]);
    assert.equal(ps.code, 0, ps.stderr);
    assert.match(ps.stdout, /^after-bad\s+running\s+h\d/m);
    assert.match(
      ps.stderr,
      /lorne cluster: skipped \/lorne\/jobs\/bad-json: Invalid value: not JSON/,
    );
  });

  test("cluster: a host killed with SIGKILL loses its jobs; restartable ones run elsewhere", async () => {
    // Pin two jobs to h1 (the only zone a host), one restartable.
    await client.submit({
      id: "pinned",
      config: { cmd: ["sleep", "60"] },
      constraints: { zone: "a" },
    });
    await client.submit({
      id: "movable",
      config: { cmd: ["sleep", "60"] },
      restart: "on-host-loss",
    });
    await running(["pinned", "movable"]);
    // "movable" went wherever had fewest; move the test's focus to its host.
    const movableHost = (await client.job("movable")).status?.host_id as string;
    const victimId = movableHost;
    const victim = hosts.get(victimId) as DaemonProcess;
    const onVictim = (await client.jobs())
      .filter((j) => j.status?.host_id === victimId && j.state === "running")
      .map((j) => j.job);

    victim.child.kill("SIGKILL");
    await victim.exited;
    hosts.delete(victimId);
    killLeftovers(victim.stateDir);

    const settled = await waitFor(
      async () => {
        const jobs = await client.jobs();
        const mine = jobs.filter((j) =>
          onVictim.some((v) => v.id === j.job.id),
        );
        return mine.every(
          (j) =>
            (j.job.restart === "never" && j.state === "lost") ||
            (j.job.restart === "on-host-loss" &&
              j.state === "running" &&
              j.status?.host_id !== victimId),
        )
          ? mine
          : null;
      },
      "the killed host's jobs to be lost or moved",
      20_000,
    );
    const moved = settled.find((j) => j.job.id === "movable");
    assert.equal(moved?.status?.attempt, 2);
    assert.notEqual(moved?.status?.host_id, victimId);
    for (const j of settled.filter((j) => j.job.restart === "never")) {
      assert.match(
        j.status?.error ?? "",
        new RegExp(`host "${victimId}" was lost`),
      );
    }
    const live = (await client.hosts()).map((h) => h.host.id);
    assert.ok(!live.includes(victimId));
  });
});
