/**
 * What the conformance suite needs to know about a backend: how to start
 * the daemon with it, how to build a job for it, which environment it adds,
 * how to tell that a job left nothing running, and a boot manifest to run.
 * Each backend's test file fills one in and hands it to defineHostSuite.
 */
import assert from "node:assert/strict";

import type { JobConfig, JobRecord } from "../../src/host/job.js";

/** A boot manifest fixture and what booting it must show. */
export interface ManifestFixture {
  /** Passed to `--manifest`. Services `web` (one port) and `worker`. */
  path: string;
  /** Extra environment for the daemon (templates see it as `.Env`). */
  env?: Record<string, string>;
  /** What `GET /` on web's first port at 127.0.0.1 answers. */
  page: (hostId: string) => RegExp[];
  /** Matches the worker's output once it has reached web. */
  workerReachedWeb: RegExp;
  /** Lines `lorne ps` prints for web and worker. */
  ps: RegExp[];
}

export interface BackendUnderTest {
  /** As `GET /host` reports it. */
  name: string;
  /** Host id for the suite's daemons. */
  hostId: string;
  /** Whether a restarted daemon takes over the jobs still running. */
  adopts: boolean;
  /**
   * Whether a job taken over after a restart keeps its stdin: a shim holds
   * it, while the engine closes a container's stdin once the daemon that
   * attached it is gone.
   */
  keepsStdin: boolean;
  /** Whether a running job always has a pid (docker: it may not). */
  reportsPid: boolean;
  /**
   * Whether the order between stdout and stderr writes survives into the
   * combined output (a container runtime reads the two from separate
   * pipes, so docker may swap them).
   */
  ordersStreams: boolean;
  /**
   * How a command missing from the job's filesystem shows: the process
   * backend cannot start it (`failed`); a container's init starts, fails
   * to exec it and exits 127 (`crashed`, with the init's message).
   */
  missingCommand: "failed" | "exit127";
  /** Arguments every daemon of the suite gets (`--backend ...`). */
  daemonArgs: string[];
  /** The suite's job ports come from FIRST-(FIRST+99); FIRST+500 is spare. */
  firstPort: number;
  /** A job's config for this backend: cmd plus whatever it needs. */
  job: (cmd: string[], extra?: Omit<JobConfig, "cmd">) => JobConfig;
  /** A manifest service for this backend (adds what `job` adds). */
  service: (service: Record<string, unknown>) => Record<string, unknown>;
  /**
   * The variables the backend adds to every job's environment besides the
   * host's (PORT*, EXTERNAL_IP, LORNE_*) and config.env: exact values, or
   * patterns for values that vary.
   */
  baseEnv: Record<string, string | RegExp>;
  /**
   * True once the job's command has ended, whatever it left behind (an
   * exited container stays until a daemon removes it).
   */
  hasEnded: (job: JobRecord, hostId: string) => Promise<boolean>;
  /** True once nothing of the job runs or remains (process, container). */
  isGone: (job: JobRecord, hostId: string) => Promise<boolean>;
  /** Forcibly removes what a job left; for cleanup after a failed test. */
  destroy: (job: JobRecord, hostId: string) => Promise<void>;
  manifest: ManifestFixture;
}

/**
 * Checks a job's environment against the expected one: the same names, and
 * each value equal to the expected string or matching its pattern.
 */
export function assertEnv(
  actual: Record<string, string>,
  expected: Record<string, string | RegExp>,
): void {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
  for (const [name, want] of Object.entries(expected)) {
    if (typeof want === "string") assert.equal(actual[name], want, name);
    else assert.match(actual[name] ?? "", want, name);
  }
}

/** Parses `env` output (NAME=value lines) into an object. */
export function parseEnv(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .trim()
      .split("\n")
      .map((line) => {
        const eq = line.indexOf("=");
        return [line.slice(0, eq), line.slice(eq + 1)] as const;
      }),
  );
}
