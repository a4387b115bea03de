/**
 * A private image registry for the pull tests: Debian's `docker-registry`
 * (the distribution v2 registry) on a free loopback port, storing into a
 * temp dir. The engine treats 127.0.0.0/8 registries as insecure (plain
 * HTTP) by default, so no TLS is needed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { freePort, tempDir, waitFor } from "../helpers.js";
import { docker, dockerOk, TEST_IMAGE } from "./engine.js";

const START_ATTEMPTS = 3;
const READY_TIMEOUT_MS = 15_000;

export interface Registry {
  /** `127.0.0.1:PORT`, the prefix of image references it serves. */
  address: string;
  /**
   * Pushes a new image, the test image plus a layer holding `/pulled`
   * (the returned marker text), as `ADDRESS/lorne/busybox:TAG`; the image
   * is then removed from the engine, so using the reference needs a pull.
   */
  push(tag: string): Promise<{ ref: string; marker: string }>;
  /** Stops the registry and deletes its storage. */
  stop(): Promise<void>;
}

/** Whether the registry binary is installed. */
export async function registryInstalled(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn("docker-registry", ["--version"], { stdio: "ignore" });
    child.once("error", () => resolve(false));
    child.once("exit", (code) => resolve(code === 0));
  });
}

/** Starts a registry; see the module comment. */
export async function startRegistry(): Promise<Registry> {
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    try {
      return await startOnce();
    } catch (err) {
      // The free port may have been taken between probe and bind.
      lastError = err;
    }
  }
  throw lastError;
}

async function startOnce(): Promise<Registry> {
  const dir = tempDir("lorne-registry-");
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const config = join(dir.path, "config.yml");
  writeFileSync(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: warn",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(dir.path, "data")}`,
      "http:",
      `  addr: ${address}`,
      "",
    ].join("\n"),
  );

  const child = spawn("docker-registry", ["serve", config], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
  const stop = async () => {
    await stopChild(child, exited);
    dir.remove();
  };

  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`docker-registry exited: ${stderr.trim()}`);
        }
        const res = await fetch(`http://${address}/v2/`);
        return res.status === 200;
      },
      `docker-registry on ${address}`,
      READY_TIMEOUT_MS,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { address, push: (tag) => pushImage(address, tag), stop };
}

async function pushImage(
  address: string,
  tag: string,
): Promise<{ ref: string; marker: string }> {
  const ref = `${address}/lorne/busybox:${tag}`;
  const marker = `pulled ${tag} ${randomBytes(4).toString("hex")}`;
  const builder = `lorne-test-build-${randomBytes(4).toString("hex")}`;
  try {
    await dockerOk([
      "run",
      "--name",
      builder,
      TEST_IMAGE,
      "sh",
      "-c",
      `echo "${marker}" > /pulled`,
    ]);
    await dockerOk(["commit", builder, ref]);
  } finally {
    await docker(["rm", "-f", builder]);
  }
  try {
    await dockerOk(["push", ref]);
  } finally {
    await dockerOk(["image", "rm", ref]);
  }
  return { ref, marker };
}

async function stopChild(child: ChildProcess, exited: Promise<void>) {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGTERM");
  }
  await exited;
}
