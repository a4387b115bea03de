/**
 * A host's registration across failures, against a real one-node etcd: a
 * host whose lease ran out while etcd was down tries to register again in
 * one loop only, and once etcd is back holds no lease but its current one;
 * a registration whose record cannot be written gives its lease up.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import type { Etcd3 } from "etcd3";

import { openEtcd } from "../../src/cluster/etcd.js";
import { ClusterKeys } from "../../src/cluster/keys.js";
import { Registration } from "../../src/cluster/registration.js";
import { Context, MemoryLogger } from "../../src/log/index.js";
import { sleep } from "../../src/sleep.js";
import { waitFor, type DaemonProcess } from "../helpers.js";
import { etcdSkipReason, startEtcd, type EtcdCluster } from "./etcd.js";
import {
  killLeftovers,
  startClusterHost,
  TEST_LEASE_TTL_S,
  waitForLine,
} from "./hosts.js";

const PORT_BASE = 60440;
/** How long etcd stays down once the host has lost its lease. */
const OUTAGE_MS = 5_000;
/** The agent's wait between attempts to register again. */
const REREGISTER_MS = 1_000;
/** etcd's largest request (--max-request-bytes) is 1.5 MiB by default. */
const OVERSIZED_BYTES = 2 * 1024 * 1024;

describe("cluster registration", { skip: etcdSkipReason() }, () => {
  let etcd: EtcdCluster;
  let raw: Etcd3;
  let host: DaemonProcess | undefined;

  before(async () => {
    etcd = await startEtcd();
    raw = openEtcd({ endpoints: etcd.endpoints });
  });

  after(async () => {
    raw?.close();
    if (host) {
      await host.stop();
      killLeftovers(host.stateDir);
    }
    await etcd?.close();
  });

  /** The ids of every lease etcd holds, sorted. */
  async function leases(): Promise<string[]> {
    const res = await raw.leaseClient.leaseLeases();
    return res.leases.map((l) => String(l.ID)).sort();
  }

  test("registration: a record that cannot be written gives its lease up", async () => {
    const known = await leases();
    // Its own client: failed puts open the client's circuit breaker.
    const client = openEtcd({ endpoints: etcd.endpoints });
    const registration = new Registration({
      client,
      keys: new ClusterKeys(),
      record: {
        id: "big",
        url: "http://127.0.0.1:1",
        attributes: { pad: "x".repeat(OVERSIZED_BYTES) },
        backend: "process",
        capacity: { ports: 1 },
        version: "test",
        started_at: new Date().toISOString(),
      },
      leaseTtlS: TEST_LEASE_TTL_S,
      onLost: () => undefined,
      log: new Context({ logger: new MemoryLogger() }),
    });
    try {
      for (let i = 0; i < 2; i++) {
        await assert.rejects(registration.register());
      }
      assert.equal(registration.session, null);
      // Revoked, or let expire: either way gone within a few TTLs; a
      // lease still kept alive never goes.
      await waitFor(
        async () => (await leases()).join() === known.join(),
        "the leases granted to go",
        5 * TEST_LEASE_TTL_S * 1000,
      );
    } finally {
      await registration.revoke();
      client.close();
    }
  });

  test("registration: a host registers again in one loop and keeps only its current lease", async () => {
    // No scheduler: its election lease would be in the list too.
    const started = await startClusterHost(etcd.endpoints, {
      id: "r1",
      portBase: PORT_BASE,
    });
    host = started;
    const [member] = etcd.members;
    assert.ok(member);

    await member.stop();
    let attempts: number;
    try {
      await waitForLine(started, /at=lease_lost/, "the lease to be lost");
      const before = countLines(started, /at=register_error/);
      // The outage itself is what is measured: a fixed wait.
      await sleep(OUTAGE_MS);
      attempts = countLines(started, /at=register_error/) - before;
    } finally {
      await member.restart();
    }
    // One loop tries about once a REREGISTER_MS; loops that multiplied
    // would double that every attempt.
    assert.ok(
      attempts <= OUTAGE_MS / REREGISTER_MS + 1,
      `${attempts} attempts to register in ${OUTAGE_MS} ms`,
    );
    assert.equal(countLines(started, /at=lease_lost/), 1);

    await waitFor(
      () => countLines(started, /at=registered/) >= 2,
      "the host to register again",
      30_000,
    );
    // The lease held before the outage expires a TTL after etcd is back;
    // any other lease left besides the current one is kept alive for good.
    const current = await waitFor(async () => {
      const kv = await raw.get("/lorne/hosts/r1").exec();
      const lease = kv.kvs[0]?.lease;
      const all = await leases();
      return all.length === 1 && all[0] === lease && lease;
    }, "etcd to hold only the host's current lease");
    const registered = started.lines.filter((l) => /at=registered/.test(l));
    assert.match(
      registered.at(-1) ?? "",
      new RegExp(`lease\\.id=${current}\\b`),
    );
  });
});

function countLines(proc: { lines: string[] }, pattern: RegExp): number {
  return proc.lines.filter((l) => pattern.test(l)).length;
}
