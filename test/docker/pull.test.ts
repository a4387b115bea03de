/**
 * Docker backend: images the engine lacks are pulled, from a registry of
 * the test's own on loopback. A pull that fails or takes too long fails
 * only its job, and a slow pull (held back by a gated proxy in front of
 * the registry) never holds up other jobs.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";

import { HostClient } from "../../src/host/client.js";
import type { JobRecord } from "../../src/host/job.js";
import {
  readText,
  startDaemon,
  waitFor,
  type DaemonProcess,
} from "../helpers.js";
import {
  docker,
  describeDocker,
  removeContainersOf,
  TEST_IMAGE,
  uniqueHostId,
} from "./engine.js";
import { startGatedProxy } from "./proxy.js";
import { registryInstalled, startRegistry, type Registry } from "./registry.js";

const FINAL = ["done", "crashed", "stopped", "failed"];
const suffix = randomBytes(3).toString("hex");

await describeDocker(
  "docker pull",
  () => {
    const hostId = uniqueHostId("test-pull");
    let registry: Registry;
    let daemon: DaemonProcess;
    let client: HostClient;
    // Images the engine pulled for these tests; removed at the end.
    const pulled: string[] = [];

    before(async () => {
      registry = await startRegistry();
      daemon = await startDaemon(
        ["--backend", "docker", "--ports", "63000-63099", "--grace-ms", "500"],
        { id: hostId },
      );
      client = new HostClient(daemon);
    });

    after(async () => {
      try {
        assert.equal(await daemon.stop(), 0);
      } finally {
        await removeContainersOf(hostId);
        for (const ref of pulled) await docker(["image", "rm", ref]);
        await registry.stop();
      }
    });

    async function finalOf(id: string): Promise<JobRecord> {
      return waitFor(async () => {
        const record = await client.getJob(id);
        return FINAL.includes(record.status) && record;
      }, `job ${id} to end`);
    }

    function pullLines(ref: string): string[] {
      return daemon.lines.filter(
        (line) => /\bat=pull\b/.test(line) && line.includes(ref),
      );
    }

    test("pull: a missing image is pulled, logged, and the job runs it", async () => {
      const { ref, marker } = await registry.push(`present-${suffix}`);
      pulled.push(ref);
      assert.notEqual((await docker(["image", "inspect", ref])).code, 0);

      const job = await client.createJob({
        config: { cmd: ["cat", "/pulled"], image: ref },
      });
      assert.equal(job.status, "running");
      const ended = await finalOf(job.id);
      assert.equal(ended.status, "done");
      assert.equal(await readText(client.logs(job.id)), `${marker}\n`);
      assert.equal((await docker(["image", "inspect", ref])).code, 0);
      assert.ok(pullLines(ref).length > 0, "pull progress in the daemon log");
    });

    test("pull: a failed pull fails the job with the registry's error", async () => {
      const ref = `${registry.address}/lorne/absent-${suffix}:latest`;
      // What the engine itself says about this reference.
      const direct = await docker(["pull", ref]);
      assert.notEqual(direct.code, 0);
      const reason = direct.stderr
        .trim()
        .replace(/^Error response from daemon: /, "");
      assert.match(reason, /manifest unknown/);

      const job = await client.createJob({
        config: { cmd: ["true"], image: ref },
      });
      assert.equal(job.status, "failed");
      assert.equal(job.exit_status, null);
      const prefix = `Cannot pull image "${ref}": `;
      assert.equal(job.error?.slice(0, prefix.length), prefix);
      assert.ok(
        (job.error ?? "").includes(reason),
        `${job.error} includes ${reason}`,
      );
    });

    test("pull: a slow pull does not hold up other jobs", async () => {
      const { ref } = await registry.push(`slow-${suffix}`);
      const proxy = await startGatedProxy(registryPort(registry));
      const slowRef = ref.replace(registry.address, `127.0.0.1:${proxy.port}`);
      pulled.push(slowRef);
      const slowId = `slow-${suffix}`;
      try {
        const slow = client.createJob({
          id: slowId,
          config: { cmd: ["sleep", "60"], image: slowRef },
        });
        // Awaited below; this only keeps an early failure from going
        // unhandled while the test waits for something else.
        slow.catch(() => undefined);
        await waitFor(() => proxy.connections > 0, "the pull to begin");

        const others = await withDeadline(
          Promise.all(
            [1, 2, 3, 4, 5].map(() =>
              client.createJob({
                config: { cmd: ["sleep", "60"], image: TEST_IMAGE },
              }),
            ),
          ),
          15_000,
          "5 jobs with a local image to start while a pull is held",
        );
        assert.deepEqual(
          others.map((j) => j.status),
          ["running", "running", "running", "running", "running"],
        );
        assert.equal((await client.getJob(slowId)).status, "starting");

        proxy.release();
        const started = await withDeadline(slow, 30_000, "the slow job");
        assert.equal(started.status, "running");
        await Promise.all(others.map((j) => client.stopJob(j.id)));
        await client.stopJob(slowId);
      } finally {
        await proxy.close();
      }
    });

    test("pull: a pull that outlasts --pull-timeout-ms fails the job", async () => {
      const { ref } = await registry.push(`stuck-${suffix}`);
      const proxy = await startGatedProxy(registryPort(registry));
      const stuckRef = ref.replace(registry.address, `127.0.0.1:${proxy.port}`);
      const impatient = await startDaemon(
        ["--backend", "docker", "--pull-timeout-ms", "2000"],
        { id: hostId },
      );
      try {
        const started = Date.now();
        const job = await withDeadline(
          new HostClient(impatient).createJob({
            config: { cmd: ["true"], image: stuckRef },
          }),
          20_000,
          "the stuck pull to time out",
        );
        assert.equal(job.status, "failed");
        assert.equal(
          job.error,
          `Cannot pull image "${stuckRef}": timed out after 2000 ms`,
        );
        assert.ok(Date.now() - started >= 1900, "waited for the timeout");
        assert.ok(proxy.connections > 0, "the pull reached the proxy");
      } finally {
        assert.equal(await impatient.stop(), 0);
        await proxy.close();
      }
    });
  },
  async () =>
    (await registryInstalled())
      ? null
      : "docker-registry is not installed (run scripts/docker-setup.sh)",
);

function registryPort(registry: Registry): number {
  return Number(registry.address.split(":")[1]);
}

/** Settles like `promise`, or rejects naming `what` after `ms`. */
async function withDeadline<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
