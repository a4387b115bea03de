/**
 * The cluster agent registering again when it cannot follow its
 * assignments, against a real one-node etcd with auth: the host's etcd
 * user loses the right to read `jobs/`, then its lease; each attempt
 * registers, fails to watch, and must revoke the lease it took before the
 * next one takes another.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import type { Etcd3 } from "etcd3";

import { ClusterAgent } from "../../src/cluster/agent.js";
import { ClusterKeys } from "../../src/cluster/keys.js";
import { ProcessBackend } from "../../src/host/backends/process.js";
import { Host } from "../../src/host/host.js";
import { PortPool } from "../../src/host/ports.js";
import { Context, MemoryLogger } from "../../src/log/index.js";
import { tempDir, waitFor } from "../helpers.js";
import { enableAuth, revokeGrant, signIn, type Grant } from "./auth.js";
import { etcdSkipReason, startEtcd, type EtcdCluster } from "./etcd.js";
import { TEST_LEASE_TTL_S } from "./hosts.js";

const HOST_ID = "f1";
/** Attempts to watch for, each past the agent's wait between them. */
const ATTEMPTS = 3;
const WAIT_MS = 20_000;

describe("cluster agent following", { skip: etcdSkipReason() }, () => {
  const keys = new ClusterKeys();
  const readJobs: Grant = { permission: "Read", prefix: keys.jobs() };
  const dir = tempDir("lorne-agent-follow-");
  let etcd: EtcdCluster;
  let root: Etcd3;
  let client: Etcd3;

  before(async () => {
    etcd = await startEtcd();
    root = await enableAuth(etcd.endpoints, HOST_ID, [
      { permission: "Readwrite", prefix: keys.host(HOST_ID) },
      { permission: "Read", prefix: keys.assignments(HOST_ID) },
      readJobs,
    ]);
    client = signIn(etcd.endpoints, HOST_ID);
  });

  after(async () => {
    client?.close();
    root?.close();
    await etcd?.close();
    dir.remove();
  });

  /** The ids of every lease etcd holds. */
  async function leases(): Promise<string[]> {
    const res = await root.leaseClient.leaseLeases();
    return res.leases.map((l) => String(l.ID));
  }

  test("cluster agent: a lease whose assignments cannot be followed is revoked before the next attempt", async () => {
    const logger = new MemoryLogger();
    const log = new Context({ logger });
    const stateDir = join(dir.path, "state");
    const host = new Host({
      id: HOST_ID,
      stateDir,
      backend: new ProcessBackend({ stateDir, spareShim: false }),
      ports: new PortPool({ range: { min: 64360, max: 64369 } }),
      log,
    });
    const agent = await ClusterAgent.start({
      client,
      keys,
      host,
      advertise: "127.0.0.1:1",
      leaseTtlS: TEST_LEASE_TTL_S,
      version: "test",
      log,
    });
    const errors = () =>
      logger.lines().filter((l) => /at=register_error/.test(l)).length;
    try {
      const first = agent.session;
      assert.ok(first);
      await revokeGrant(root, HOST_ID, readJobs);
      await root.leaseClient.leaseRevoke({ ID: first });

      await waitFor(() => errors() >= ATTEMPTS, "failed attempts", WAIT_MS);
      // At most the lease of the attempt in progress; none kept from the
      // attempts before it.
      assert.ok((await leases()).length <= 1, (await leases()).join(","));
      assert.match(
        logger.lines().find((l) => /at=register_error/.test(l)) ?? "",
        /permission denied/,
      );
    } finally {
      await agent.close();
    }
    await waitFor(
      async () => (await leases()).length === 0,
      "the last lease to be revoked",
      WAIT_MS,
    );
  });
});
