/**
 * Docker backend: losing the engine. The host talks to the engine through
 * a unix-socket proxy the test controls; cutting every connection and
 * refusing new ones takes the engine away (its event stream, wait calls
 * and attach streams all drop) without touching dockerd. A container
 * killed while the engine is away must still end its job once the engine
 * is back, and the host must say meanwhile that the engine is unreachable.
 * Output written while the engine is away is fetched again once it is back.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, test } from "node:test";

import { HostClient } from "../../src/host/client.js";
import {
  readText,
  startDaemon,
  waitFor,
  type DaemonProcess,
} from "../helpers.js";
import {
  containersOf,
  describeDocker,
  dockerOk,
  removeContainersOf,
  TEST_IMAGE,
  uniqueHostId,
} from "./engine.js";
import { startSocketProxy, type SocketProxy } from "./socket-proxy.js";

const FINAL = ["done", "crashed", "stopped", "failed"];
// The host retries the engine with a backoff of at most 5 s; the rest is
// room for the retry itself, the inspect and the container's removal.
const RECOVERY_MS = 10_000;

await describeDocker("docker engine events", () => {
  const hostId = uniqueHostId("test-events");
  const suffix = randomBytes(3).toString("hex");

  after(() => removeContainersOf(hostId));

  test("engine events: a lost engine is reported, and a container killed meanwhile ends its job once it is back", async () => {
    const proxy = await startSocketProxy();
    const id = `cut-${suffix}`;
    let daemon: DaemonProcess | undefined;
    try {
      daemon = await startDaemon(
        [
          "--backend",
          "docker",
          "--docker-socket",
          proxy.path,
          "--grace-ms",
          "500",
        ],
        { id: hostId },
      );
      const lines = daemon.lines;
      const client = new HostClient(daemon);
      const job = await client.createJob({
        id,
        config: { cmd: ["sleep", "300"], image: TEST_IMAGE },
      });
      assert.equal(job.status, "running");
      assert.deepEqual((await client.host()).backend_status, { ok: true });

      // Take the engine away: nothing new gets through, nothing open stays.
      proxy.refuse();
      proxy.cut();
      await waitFor(
        () => lines.some((line) => isEngineEvents(line, "lost")),
        "fn=engine_events at=lost in the daemon log",
      );
      const down = await waitFor(async () => {
        const status = (await client.host()).backend_status;
        return !status.ok && status;
      }, "backend_status.ok to turn false");
      assert.match(down.error ?? "", /^Docker engine unreachable: ./);

      // Killed behind the host's back, straight on the engine's socket.
      await dockerOk(["kill", `lorne-${id}`]);
      const state = await dockerOk([
        "container",
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        `lorne-${id}`,
      ]);
      assert.equal(state.trim(), "exited 137");
      const refusedAtKill = proxy.refused;
      await waitFor(
        () => proxy.refused > refusedAtKill,
        "the host to try the engine again while it is away",
      );
      assert.equal((await client.getJob(id)).status, "running");
      assert.equal((await client.host()).backend_status.ok, false);

      proxy.admit();
      const admittedAt = Date.now();
      const ended = await waitFor(
        async () => {
          const record = await client.getJob(id);
          return FINAL.includes(record.status) && record;
        },
        "the killed job to end once the engine is back",
        RECOVERY_MS,
      );
      assert.deepEqual(
        {
          status: ended.status,
          exit_status: ended.exit_status,
          signal: ended.signal,
          oom_killed: ended.oom_killed,
          error: ended.error,
        },
        {
          status: "crashed",
          exit_status: null,
          signal: "SIGKILL",
          oom_killed: false,
          error: null,
        },
      );
      assert.deepEqual(await containersOf(hostId, id), []);

      await waitFor(
        async () => (await client.host()).backend_status.ok,
        "backend_status.ok to turn true again",
        Math.max(0, RECOVERY_MS - (Date.now() - admittedAt)),
      );
      // The log reaches the test through a pipe, maybe after the API did.
      await waitFor(
        () => lines.some((line) => isEngineEvents(line, "restored")),
        "fn=engine_events at=restored in the daemon log",
      );
      const lost = lines.findIndex((line) => isEngineEvents(line, "lost"));
      const restored = lines.findIndex((line) =>
        isEngineEvents(line, "restored"),
      );
      assert.ok(
        restored > lost,
        `at=restored (line ${restored}) after at=lost (line ${lost})`,
      );
      assert.deepEqual((await client.host()).backend_status, { ok: true });
    } finally {
      // Let the daemon reach the engine again so it can stop cleanly.
      proxy.admit();
      try {
        if (daemon) assert.equal(await daemon.stop(), 0);
      } finally {
        await proxy.close();
        await removeContainersOf(hostId);
      }
    }
  });

  /**
   * Runs `body` against a docker host whose engine socket goes through a
   * proxy the test can cut; always lets the engine back in, stops the
   * daemon and removes what it left.
   */
  async function withProxiedHost(
    body: (proxy: SocketProxy, client: HostClient) => Promise<void>,
  ): Promise<void> {
    const proxy = await startSocketProxy();
    let daemon: DaemonProcess | undefined;
    try {
      daemon = await startDaemon(
        ["--backend", "docker", "--docker-socket", proxy.path],
        { id: hostId },
      );
      await body(proxy, new HostClient(daemon));
    } finally {
      proxy.admit();
      try {
        if (daemon) assert.equal(await daemon.stop(), 0);
      } finally {
        await proxy.close();
        await removeContainersOf(hostId);
      }
    }
  }

  /** Cuts the engine away from the host and waits until the host sees it. */
  async function cutEngine(proxy: SocketProxy, client: HostClient) {
    proxy.refuse();
    proxy.cut();
    await waitFor(
      async () => !(await client.host()).backend_status.ok,
      "backend_status.ok to turn false",
    );
  }

  /** Shell: wait (at most 30 s) until `file` exists. */
  const waitForFile = (file: string) =>
    `i=0; while [ ! -e ${file} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done`;

  /** Runs a shell script job; resolves once it printed "before". */
  async function startScript(client: HostClient, id: string, lines: string[]) {
    await client.createJob({
      id,
      config: { cmd: ["sh", "-c", lines.join("; ")], image: TEST_IMAGE },
    });
    await waitFor(
      async () => (await readText(client.logs(id))) === "before\n",
      "the first line in the job's output",
    );
  }

  async function finalRecord(client: HostClient, id: string) {
    return waitFor(
      async () => {
        const record = await client.getJob(id);
        return FINAL.includes(record.status) && record;
      },
      "the job to end once the engine is back",
      RECOVERY_MS,
    );
  }

  test("engine events: output written while the engine is away is not lost", async () => {
    await withProxiedHost(async (proxy, client) => {
      const id = `out-${suffix}`;
      await startScript(client, id, [
        "echo before",
        waitForFile("/tmp/go"),
        "echo after",
      ]);

      await cutEngine(proxy, client);
      await dockerOk(["exec", `lorne-${id}`, "touch", "/tmp/go"]);
      await waitFor(
        async () =>
          (await dockerOk([
            "container",
            "inspect",
            "--format",
            "{{.State.Status}}",
            `lorne-${id}`,
          ])) === "exited\n",
        "the container to exit while the engine is away",
      );

      proxy.admit();
      assert.equal((await finalRecord(client, id)).status, "done");
      assert.equal(await readText(client.logs(id)), "before\nafter\n");
    });
  });

  test("engine events: a job that runs on after the engine is back keeps all its output", async () => {
    await withProxiedHost(async (proxy, client) => {
      const id = `out2-${suffix}`;
      await startScript(client, id, [
        "echo before",
        waitForFile("/tmp/go"),
        "echo during",
        waitForFile("/tmp/go2"),
        "echo after",
      ]);

      await cutEngine(proxy, client);
      await dockerOk(["exec", `lorne-${id}`, "touch", "/tmp/go"]);
      await waitFor(
        async () =>
          (await dockerOk(["logs", `lorne-${id}`])).includes("during"),
        "the container to write while the engine is away",
      );

      proxy.admit();
      await waitFor(
        async () => (await readText(client.logs(id))) === "before\nduring\n",
        "the missed line once the engine is back",
        RECOVERY_MS,
      );
      await dockerOk(["exec", `lorne-${id}`, "touch", "/tmp/go2"]);
      assert.equal((await finalRecord(client, id)).status, "done");
      assert.equal(await readText(client.logs(id)), "before\nduring\nafter\n");
    });
  });
});

function isEngineEvents(line: string, at: string): boolean {
  const pairs = line.split(" ");
  return pairs.includes("fn=engine_events") && pairs.includes(`at=${at}`);
}
