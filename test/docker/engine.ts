/**
 * The local Docker engine as the docker tests see it: the docker CLI run
 * against /var/run/docker.sock, whether the docker suite can run here (and
 * why not), and the containers a lorne host left behind, found by label.
 * The CLI is used on purpose: the tests check lorne's work with a tool that
 * does not share its code.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";

import { runLorne } from "../helpers.js";

/** The image scripts/docker-setup.sh builds. */
export const TEST_IMAGE = "lorne-test-busybox:latest";

/** Set to 1 (as CI does) to make a missing engine a failure, not a skip. */
export const REQUIRED = process.env.LORNE_TEST_DOCKER === "1";

const SETUP_HINT = "run scripts/docker-setup.sh";

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `docker ARGS`; resolves with the outcome, never rejects. */
export function docker(
  args: string[],
  timeoutMs = 60_000,
): Promise<DockerResult> {
  return new Promise((resolve) => {
    execFile(
      "docker",
      args,
      { timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code =
          err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        resolve({ code, stdout, stderr: stderr || (err?.message ?? "") });
      },
    );
  });
}

/** Runs `docker ARGS` and returns its stdout; throws with stderr on failure. */
export async function dockerOk(args: string[]): Promise<string> {
  const result = await docker(args);
  if (result.code !== 0) {
    throw new Error(
      `docker ${args.join(" ")} exited ${result.code}: ${result.stderr.trim()}`,
    );
  }
  return result.stdout;
}

/**
 * Why the docker suite cannot run here, or null when it can: lorne must
 * offer `--backend docker`, an engine must answer, the test image must
 * exist.
 */
export async function dockerUnavailable(): Promise<string | null> {
  const help = await runLorne(["host", "--help"]);
  // Help text wraps where the terminal's width says: read it as one line.
  const choices =
    /--backend <name>[^(]*\(default[^)]*\) \(choices: ([^)]*)\)/.exec(
      help.stdout.replace(/\s+/g, " "),
    );
  if (!choices?.[1]?.includes('"docker"')) {
    return (
      "lorne has no docker backend yet " +
      `(lorne host --help offers --backend ${choices?.[1] ?? "nothing"})`
    );
  }
  const version = await docker(["version", "--format", "{{.Server.Version}}"]);
  if (version.code !== 0) {
    return `no Docker engine answers (${SETUP_HINT}): ${version.stderr.trim()}`;
  }
  const image = await docker(["image", "inspect", TEST_IMAGE]);
  if (image.code !== 0) return `image ${TEST_IMAGE} is missing (${SETUP_HINT})`;
  return null;
}

/**
 * Registers docker tests under `name` when Docker is usable here. Otherwise
 * one test stands for them: skipped with the reason, or failing with it
 * when LORNE_TEST_DOCKER=1. `extraCheck` adds a requirement of its own
 * (returns why it is not met, or null).
 */
export async function describeDocker(
  name: string,
  define: () => void,
  extraCheck?: () => Promise<string | null>,
): Promise<void> {
  const unavailable =
    (await dockerUnavailable()) ?? (await extraCheck?.()) ?? null;
  if (unavailable === null) describe(name, define);
  else if (REQUIRED) {
    test(name, () => assert.fail(`LORNE_TEST_DOCKER=1 but ${unavailable}`));
  } else test(name, { skip: unavailable }, () => {});
}

/** A host id no other test run uses, so labels never cross between runs. */
export function uniqueHostId(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/**
 * Ids of containers labelled with this host id (and job id, when given),
 * whatever their state.
 */
export async function containersOf(
  hostId: string,
  jobId?: string,
): Promise<string[]> {
  const args = ["ps", "-a", "-q", "--filter", `label=lorne.host.id=${hostId}`];
  if (jobId !== undefined) args.push("--filter", `label=lorne.job.id=${jobId}`);
  const out = await dockerOk(args);
  return out.split("\n").filter((line) => line !== "");
}

/** Ids of the running containers labelled with this host and job id. */
export async function runningContainersOf(
  hostId: string,
  jobId: string,
): Promise<string[]> {
  const out = await dockerOk([
    "ps",
    "-q",
    "--filter",
    `label=lorne.host.id=${hostId}`,
    "--filter",
    `label=lorne.job.id=${jobId}`,
  ]);
  return out.split("\n").filter((line) => line !== "");
}

/** Force-removes every container labelled with this host id. */
export async function removeContainersOf(hostId: string): Promise<void> {
  const ids = await containersOf(hostId);
  if (ids.length > 0) await dockerOk(["rm", "-f", ...ids]);
}
