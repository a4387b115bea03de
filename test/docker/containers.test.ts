/**
 * Docker backend: what only containers have. Jobs need an image; each job
 * is a container named and labelled after it, with its ports published on
 * loopback under the same numbers; `--keep-containers` keeps them after
 * the job ends; `--force` removes this host's unexplained containers and
 * nobody else's; `config.memory_bytes` limits memory and swap, and a job
 * over the limit is recorded as OOM-killed.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";

import { ValidationError } from "../../src/errors.js";
import { HostClient } from "../../src/host/client.js";
import { startDaemon, waitFor } from "../helpers.js";
import {
  containersOf,
  describeDocker,
  docker,
  dockerOk,
  removeContainersOf,
  TEST_IMAGE,
  uniqueHostId,
} from "./engine.js";

const PORTS = "63100-63199";
const FINAL = ["done", "crashed", "stopped", "failed"];

await describeDocker("docker containers", () => {
  const hostId = uniqueHostId("test-containers");
  const suffix = randomBytes(3).toString("hex");
  const args = ["--backend", "docker", "--ports", PORTS, "--grace-ms", "500"];

  test("containers: a job without config.image is refused, naming the field", async () => {
    const daemon = await startDaemon(args, { id: hostId });
    try {
      const client = new HostClient(daemon);
      await assert.rejects(
        client.createJob({ config: { cmd: ["true"] } }),
        (err: unknown) => {
          assert.ok(err instanceof ValidationError);
          assert.equal(err.field, "config.image");
          assert.match(err.message, /config\.image/);
          return true;
        },
      );
      assert.deepEqual(await client.listJobs(), []);
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  });

  test("containers: named and labelled after the job, ports published on loopback", async () => {
    const daemon = await startDaemon(args, { id: hostId });
    const id = `web-${suffix}`;
    try {
      const client = new HostClient(daemon);
      const job = await client.createJob({
        id,
        config: {
          cmd: ["sh", "-c", "exec httpd -f -p $PORT_1 -h /www"],
          image: TEST_IMAGE,
          tcp_ports: 2,
        },
      });
      assert.equal(job.status, "running");
      const [p0, p1] = job.ports as [number, number];

      const inspect = JSON.parse(
        await dockerOk(["container", "inspect", `lorne-${id}`]),
      ) as ContainerInspect[];
      const container = inspect[0] as ContainerInspect;
      assert.equal(container.Name, `/lorne-${id}`);
      assert.equal(container.Config.Labels["lorne.host.id"], hostId);
      assert.equal(container.Config.Labels["lorne.job.id"], id);
      assert.deepEqual(container.HostConfig.PortBindings, {
        [`${p0}/tcp`]: [{ HostIp: "127.0.0.1", HostPort: String(p0) }],
        [`${p1}/tcp`]: [{ HostIp: "127.0.0.1", HostPort: String(p1) }],
      });
      assert.deepEqual(await containersOf(hostId, id), [
        container.Id.slice(0, 12),
      ]);

      // Listening on $PORT_1 inside is reachable at 127.0.0.1:$PORT_1.
      const page = await waitFor(async () => {
        const res = await fetch(`http://127.0.0.1:${p1}/`);
        return res.ok && res.text();
      }, "the job's web page");
      assert.match(page, /Hello from lorne-test-busybox/);

      const stopped = await client.stopJob(id);
      assert.equal(stopped.status, "stopped");
      assert.deepEqual(await containersOf(hostId, id), []);
    } finally {
      assert.equal(await daemon.stop(), 0);
      await removeContainersOf(hostId);
    }
  });

  test("containers: --keep-containers keeps an ended job's container", async () => {
    const daemon = await startDaemon([...args, "--keep-containers"], {
      id: hostId,
    });
    const id = `kept-${suffix}`;
    try {
      const client = new HostClient(daemon);
      await client.createJob({
        id,
        config: { cmd: ["sh", "-c", "exit 3"], image: TEST_IMAGE },
      });
      const ended = await waitFor(async () => {
        const job = await client.getJob(id);
        return FINAL.includes(job.status) && job;
      }, "the job to end");
      assert.equal(ended.status, "crashed");
      assert.equal(ended.exit_status, 3);
      const state = await dockerOk([
        "container",
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        `lorne-${id}`,
      ]);
      assert.equal(state.trim(), "exited 3");
    } finally {
      assert.equal(await daemon.stop(), 0);
      await removeContainersOf(hostId);
    }
  });

  test("containers: --force removes this host's unexplained containers, not others'", async () => {
    const otherHost = uniqueHostId("test-other");
    const mine = `lorne-orphan-${suffix}`;
    const theirs = `lorne-theirs-${suffix}`;
    await runLabelled(mine, hostId, `orphan-${suffix}`);
    await runLabelled(theirs, otherHost, `theirs-${suffix}`);
    try {
      const warned = await startDaemon(args, { id: hostId });
      assert.equal(await warned.stop(), 0);
      assert.equal(
        (await containersOf(hostId)).length,
        1,
        "kept without --force",
      );

      const forced = await startDaemon([...args, "--force"], { id: hostId });
      try {
        await waitFor(
          async () => (await containersOf(hostId)).length === 0,
          "the orphan container to be removed",
        );
        assert.equal(await containerStatus(theirs), "running");
      } finally {
        assert.equal(await forced.stop(), 0);
      }
    } finally {
      await docker(["rm", "-f", mine, theirs]);
    }
  });

  test("containers: a job over its memory limit is OOM-killed and recorded so", async () => {
    const daemon = await startDaemon(args, { id: hostId });
    const id = `oom-${suffix}`;
    try {
      const client = new HostClient(daemon);
      // Waits (at most 30 s) for /tmp/go, so the limits can be read while
      // the container exists, then doubles a string until the kernel kills
      // the shell: 8 MiB, swap included, is gone a few doublings past 4 MiB.
      const script = [
        "i=0",
        "while [ ! -e /tmp/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done",
        'x=a; while true; do x="$x$x"; done',
      ].join("; ");
      const job = await client.createJob({
        id,
        config: {
          cmd: ["sh", "-c", script],
          image: TEST_IMAGE,
          memory_bytes: 8 * 1024 * 1024,
        },
      });
      assert.equal(job.status, "running");
      const limits = await dockerOk([
        "container",
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}",
        `lorne-${id}`,
      ]);
      assert.equal(limits.trim(), `${8 << 20} ${8 << 20}`);
      await dockerOk(["exec", `lorne-${id}`, "touch", "/tmp/go"]);

      const ended = await waitFor(
        async () => {
          const record = await client.getJob(id);
          return FINAL.includes(record.status) && record;
        },
        "the job to be OOM-killed",
        30_000,
      );
      assert.deepEqual(
        {
          status: ended.status,
          oom_killed: ended.oom_killed,
          signal: ended.signal,
          exit_status: ended.exit_status,
          error: ended.error,
        },
        {
          status: "crashed",
          oom_killed: true,
          signal: "SIGKILL",
          exit_status: null,
          error: null,
        },
      );
      assert.deepEqual(await containersOf(hostId, id), []);
    } finally {
      assert.equal(await daemon.stop(), 0);
      await removeContainersOf(hostId);
    }
  });
});

interface ContainerInspect {
  Id: string;
  Name: string;
  Config: { Labels: Record<string, string> };
  HostConfig: {
    PortBindings: Record<string, { HostIp: string; HostPort: string }[]>;
  };
}

/** Starts a container the way a lorne host labels its own. */
async function runLabelled(name: string, hostId: string, jobId: string) {
  await dockerOk([
    "run",
    "-d",
    "--init",
    "--name",
    name,
    "--label",
    `lorne.host.id=${hostId}`,
    "--label",
    `lorne.job.id=${jobId}`,
    TEST_IMAGE,
    "sleep",
    "60",
  ]);
}

async function containerStatus(name: string): Promise<string> {
  const out = await dockerOk([
    "container",
    "inspect",
    "--format",
    "{{.State.Status}}",
    name,
  ]);
  return out.trim();
}
