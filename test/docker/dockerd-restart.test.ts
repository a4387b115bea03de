/**
 * Docker backend: dockerd itself restarted while lorne runs, with durable
 * state. Without live-restore the engine stops every container as it shuts
 * down (SIGTERM to its init); the jobs trap it and exit with codes of their
 * own, which lorne must record once the engine is back, with their whole
 * output, and new jobs run again.
 *
 * Opt-in with LORNE_TEST_DOCKERD_RESTART=1: it stops this machine's dockerd
 * (by the pid `pidof dockerd` names) and starts it again through
 * scripts/docker-setup.sh, which would break any other docker test or user
 * of the engine running at the same time. Run it alone:
 *   LORNE_TEST_DOCKERD_RESTART=1 node scripts/test.mjs dockerd-restart
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";

import { HostClient } from "../../src/host/client.js";
import {
  authHeader,
  isAlive,
  readText,
  startDaemon,
  waitFor,
} from "../helpers.js";
import {
  containersOf,
  describeDocker,
  docker,
  removeContainersOf,
  TEST_IMAGE,
  uniqueHostId,
} from "./engine.js";

const ENABLED = process.env.LORNE_TEST_DOCKERD_RESTART === "1";
const JOBS = 5;
// dockerd waits up to its stop timeout (10 s) per container, then needs
// a while to start again; the rest is the host's reconnect backoff.
const RESTART_MS = 90_000;

// Not an engine requirement: LORNE_TEST_DOCKER=1 must not make it fail.
if (!ENABLED) {
  test(
    "dockerd restart",
    {
      skip: "restarts this machine's dockerd; set LORNE_TEST_DOCKERD_RESTART=1 and run it alone",
    },
    () => undefined,
  );
} else {
  await describeDocker("dockerd restart", () => {
    const hostId = uniqueHostId("test-restart");

    test("dockerd restart: containers it stopped end their jobs with their own codes and output; new jobs run", async () => {
      const daemon = await startDaemon(
        ["--backend", "docker", "--grace-ms", "2000"],
        { id: hostId },
      );
      try {
        const client = new HostClient(daemon);
        const jobs = await Promise.all(
          Array.from({ length: JOBS }, (_, i) =>
            client.createJob({
              config: {
                image: TEST_IMAGE,
                cmd: [
                  "sh",
                  "-c",
                  `trap 'echo bye; exit ${20 + i}' TERM; echo hi; ` +
                    "while true; do sleep 0.1; done",
                ],
              },
            }),
          ),
        );
        for (const j of jobs) assert.equal(j.status, "running");
        await waitFor(
          async () =>
            (
              await Promise.all(jobs.map((j) => readText(client.logs(j.id))))
            ).every((t) => t === "hi\n"),
          "every job to print",
        );

        await restartDockerd();

        for (const [i, j] of jobs.entries()) {
          const ended = await waitFor(
            async () => {
              const got = await client.getJob(j.id);
              return got.status !== "running" && got;
            },
            `job ${j.id} to end`,
            RESTART_MS,
          );
          assert.equal(ended.status, "crashed", j.id);
          assert.equal(ended.exit_status, 20 + i, j.id);
          assert.equal(await readText(client.logs(j.id)), "hi\nbye\n");
          // Removed once its output is collected; if the engine refused
          // (it was going away), once it is back.
          await waitFor(
            async () => (await containersOf(hostId, j.id)).length === 0,
            `job ${j.id}'s container to be removed`,
            RESTART_MS,
          );
        }
        // The host says the engine is back.
        await waitFor(
          async () => {
            const res = await fetch(`${daemon.url}/host`, {
              headers: authHeader(daemon),
            });
            const body = (await res.json()) as {
              backend_status?: { ok?: boolean };
            };
            return body.backend_status?.ok === true;
          },
          "the host to report the engine back",
          RESTART_MS,
        );
        const fresh = await client.createJob({
          config: { image: TEST_IMAGE, cmd: ["echo", "after"] },
        });
        const done = await waitFor(async () => {
          const got = await client.getJob(fresh.id);
          return got.status === "done" && got;
        }, "a new job to run");
        assert.equal(done.exit_status, 0);
        assert.equal(await readText(client.logs(fresh.id)), "after\n");
        assert.equal(await daemon.stop(), 0);
      } finally {
        await daemon.stop();
        await removeContainersOf(hostId);
      }
    });
  });
}

// Stops dockerd by its pid, waits for it to be gone, then starts it the
// way scripts/docker-setup.sh does (by running it) and waits for it.
async function restartDockerd(): Promise<void> {
  const pids = (await run("pidof", ["dockerd"])).trim().split(/\s+/);
  assert.equal(pids.length, 1, `one dockerd runs (pids: ${pids.join(",")})`);
  const pid = Number(pids[0]);
  process.kill(pid, "SIGTERM");
  await waitFor(() => !isAlive(pid), "dockerd to stop", RESTART_MS);
  assert.notEqual((await docker(["version"], 5_000)).code, 0);
  await run("bash", ["scripts/docker-setup.sh"]);
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: RESTART_MS }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}
