/**
 * Cluster test fixtures: lorne hosts joined to a test etcd (each with its
 * own id, port range and state dir), standalone schedulers, and a client.
 * Short leases (2 s) keep failure tests quick.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

import { ClusterClient } from "../../src/cluster/client.js";
import { LORNE, ROOT, startDaemon, type DaemonProcess } from "../helpers.js";

/** Lease TTL of hosts and schedulers in the tests, in seconds. */
export const TEST_LEASE_TTL_S = 2;

export interface HostSpec {
  id: string;
  attributes?: Record<string, string>;
  scheduler?: boolean;
  /** First port of the host's 10-port range. */
  portBase: number;
  /** Lease TTL; default TEST_LEASE_TTL_S. */
  leaseTtlS?: number;
}

/** Starts one lorne host in the cluster and waits until it registered. */
export async function startClusterHost(
  endpoints: string[],
  spec: HostSpec,
): Promise<DaemonProcess> {
  const args = [
    "--etcd",
    endpoints.join(","),
    "--lease-ttl-s",
    String(spec.leaseTtlS ?? TEST_LEASE_TTL_S),
    "--ports",
    `${spec.portBase}-${spec.portBase + 9}`,
    "--grace-ms",
    "1000",
  ];
  for (const [k, v] of Object.entries(spec.attributes ?? {})) {
    args.push("--attribute", `${k}=${v}`);
  }
  if (spec.scheduler) args.push("--scheduler");
  const daemon = await startDaemon(args, { id: spec.id });
  await waitForLine(daemon, /at=registered/, `host ${spec.id} to register`);
  return daemon;
}

/** A standalone `lorne scheduler`; resolves once it has started. */
export interface SchedulerProcess {
  id: string;
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

export async function startScheduler(
  endpoints: string[],
  id: string,
): Promise<SchedulerProcess> {
  const child = spawn(
    process.execPath,
    [
      LORNE,
      "scheduler",
      "--etcd",
      endpoints.join(","),
      "--id",
      id,
      "--lease-ttl-s",
      String(TEST_LEASE_TTL_S),
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  createInterface({ input: child.stdout }).on("line", (l) => lines.push(l));
  child.stderr.on("data", (d: Buffer) => lines.push(d.toString()));
  const scheduler = { id, child, lines, exited };
  await waitForLine(scheduler, /at=start/, `scheduler ${id} to start`);
  return scheduler;
}

/** Waits until a process has printed a line matching `pattern`. */
export async function waitForLine(
  proc: { lines: string[]; exited: Promise<number | null> },
  pattern: RegExp,
  what: string,
  timeoutMs = 15_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void proc.exited.then(() => (exited = true));
  for (;;) {
    const line = proc.lines.find((l) => pattern.test(l));
    if (line !== undefined) return line;
    if (exited || Date.now() > deadline) {
      throw new Error(
        `Timed out waiting for ${what}; output:\n${proc.lines.join("\n")}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A client of the test etcd; malformed values are collected. */
export async function openClient(
  endpoints: string[],
): Promise<{ client: ClusterClient; invalid: string[] }> {
  const invalid: string[] = [];
  const client = await ClusterClient.open({
    endpoints,
    onInvalid: (key) => invalid.push(key),
  });
  return { client, invalid };
}

/**
 * Kills (SIGKILL) the jobs a host left behind after being killed itself:
 * their pids are in the state dir's pid files.
 */
export function killLeftovers(stateDir: string): void {
  const jobsDir = join(stateDir, "jobs");
  let ids: string[];
  try {
    ids = readdirSync(jobsDir);
  } catch {
    return;
  }
  for (const id of ids) {
    let pid: number;
    try {
      pid = Number(readFileSync(join(jobsDir, id, "pid"), "utf8"));
    } catch {
      continue;
    }
    try {
      // The job leads its own process group.
      process.kill(-pid, "SIGKILL");
    } catch {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
  }
}

/** Stops a process by its pid: SIGTERM, SIGKILL after a bound. */
export async function stopProcess(
  proc: { child: ChildProcess; exited: Promise<number | null> },
  timeoutMs = 10_000,
): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill("SIGTERM");
  const kill = setTimeout(() => proc.child.kill("SIGKILL"), timeoutMs);
  await proc.exited;
  clearTimeout(kill);
}
