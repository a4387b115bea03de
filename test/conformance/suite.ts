/**
 * The host conformance suite: every behaviour that must not depend on how
 * jobs run, written once and run against each backend by its own test file
 * (process.test.ts, docker.test.ts). Shared tests use only commands that
 * both the machine and the busybox test image have: sh, echo, sleep, env,
 * true, kill, trap, cat.
 */
import { describe } from "node:test";

import type { BackendUnderTest } from "./backend.js";
import { defineDaemonTests } from "./daemon.js";
import { defineJobTests } from "./jobs.js";

export type { BackendUnderTest } from "./backend.js";

/** Registers the whole suite for one backend. */
export function defineHostSuite(backend: BackendUnderTest): void {
  describe(`${backend.name} backend`, () => {
    describe("jobs", () => defineJobTests(backend));
    describe("daemon", () => defineDaemonTests(backend));
  });
}
