/**
 * bench/docker-start: `lorne run --image IMAGE -- true` end to end against
 * `docker run --rm IMAGE true`, taking turns in one run, plus the median
 * time from the API request to the job's `start` event with the docker
 * backend. Needs a Docker engine and the test image
 * (scripts/docker-setup.sh).
 *
 *   npm run build && npx tsx bench/docker-start.ts [rounds]
 */
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";

import { HostClient } from "../src/host/client.js";
import { cliEnv, LORNE, startDaemon } from "../test/helpers.js";

const ROUNDS = Number(process.argv[2] ?? 15);
const IMAGE = process.env.LORNE_TEST_IMAGE ?? "lorne-test-busybox:latest";

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function timed(
  cmd: string,
  args: string[],
  env = process.env,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { stdio: "ignore", env });
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code !== 0)
        reject(new Error(`${cmd} ${args.join(" ")} exited ${code}`));
      else resolve(performance.now() - started);
    });
  });
}

async function main(): Promise<void> {
  const daemon = await startDaemon([
    "--backend",
    "docker",
    "--grace-ms",
    "2000",
  ]);
  const client = new HostClient(daemon);
  const env = cliEnv(daemon);
  const lorne: number[] = [];
  const docker: number[] = [];
  const toStart: number[] = [];
  try {
    // Warm both paths (image cache, stop-signal lookup) before measuring.
    await timed(
      process.execPath,
      [LORNE, "run", "--image", IMAGE, "--", "true"],
      env,
    );
    await timed("docker", ["run", "--rm", IMAGE, "true"]);
    for (let i = 0; i < ROUNDS; i++) {
      lorne.push(
        await timed(
          process.execPath,
          [LORNE, "run", "--image", IMAGE, "--", "true"],
          env,
        ),
      );
      docker.push(await timed("docker", ["run", "--rm", IMAGE, "true"]));
    }

    const controller = new AbortController();
    const starts = new Map<string, (at: number) => void>();
    void (async () => {
      for await (const e of client.events({ signal: controller.signal })) {
        if (e.event === "start") starts.get(e.job_id)?.(performance.now());
      }
    })().catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (let i = 0; i < ROUNDS; i++) {
      const id = `api-${i}`;
      toStart.push(
        await new Promise<number>((resolve, reject) => {
          const sent = performance.now();
          starts.set(id, (at) => resolve(at - sent));
          client
            .createJob({ id, config: { cmd: ["true"], image: IMAGE } })
            .catch(reject);
        }),
      );
    }
    controller.abort();
  } finally {
    await daemon.stop();
  }

  const l = median(lorne);
  const d = median(docker);
  console.log(
    `docker-start lorne run end_to_end median_ms=${l.toFixed(1)} rounds=${ROUNDS}`,
  );
  console.log(
    `docker-start docker run --rm end_to_end median_ms=${d.toFixed(1)} rounds=${ROUNDS}`,
  );
  console.log(
    `docker-start ratio lorne/docker=${(l / d).toFixed(2)} goal<=1.00`,
  );
  console.log(
    `docker-start api->start event median_ms=${median(toStart).toFixed(1)}`,
  );
}

await main();
