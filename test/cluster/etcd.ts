/**
 * Real etcd servers for the cluster tests: one node, or a three-node
 * cluster, each member on free loopback ports with its data in a temp dir.
 * Suites that need etcd pass `etcdSkipReason()` as their `skip`: without an
 * `etcd` binary they skip with a message, unless LORNE_TEST_ETCD=1 (CI),
 * where they fail.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

import { tempDir, waitFor } from "../helpers.js";

const ETCD = "etcd";
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

/** One etcd process. */
export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  logPath: string;
  child: ChildProcess | null;
  /** SIGTERM, then SIGKILL after a bound; resolves once it has exited. */
  stop(): Promise<void>;
  /** Starts this member again on the same ports and data. */
  restart(): Promise<void>;
}

/** A running etcd: one member or three. */
export interface EtcdCluster {
  members: EtcdMember[];
  /** Every member's client URL. */
  endpoints: string[];
  /** Stops every member and removes the data. */
  close(): Promise<void>;
}

/**
 * Why the etcd tests cannot run here (no `etcd` binary), for `describe`'s
 * `skip`; false when they can. Under LORNE_TEST_ETCD=1 (CI) a missing etcd
 * throws instead, so the suite fails rather than skips.
 */
export function etcdSkipReason(): string | false {
  if (hasEtcd()) return false;
  const message =
    "etcd is not installed (Debian: apt-get install etcd-server, " +
    "or scripts/etcd-setup.sh)";
  if (process.env.LORNE_TEST_ETCD === "1") {
    throw new Error(`${message}; LORNE_TEST_ETCD=1 requires it`);
  }
  return message;
}

let found: boolean | undefined;

function hasEtcd(): boolean {
  found ??= spawnSync(ETCD, ["--version"], { timeout: 10_000 }).status === 0;
  return found;
}

/** Starts a one-member etcd and waits until it is healthy. */
export function startEtcd(): Promise<EtcdCluster> {
  return startCluster(1);
}

/** Starts a three-member etcd cluster and waits until all are healthy. */
export function startEtcdCluster(): Promise<EtcdCluster> {
  return startCluster(3);
}

async function startCluster(size: number): Promise<EtcdCluster> {
  const dir = tempDir("lorne-etcd-");
  const token = `lorne-test-${process.pid}-${Date.now()}`;
  const names = Array.from({ length: size }, (_, i) => `m${i}`);
  const ports = await freePorts(size * 2);
  const peers = names.map((name, i) => ({
    name,
    clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
    peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
  }));
  const initialCluster = peers.map((p) => `${p.name}=${p.peerUrl}`).join(",");
  const members = peers.map((peer) => {
    const dataDir = join(dir.path, peer.name);
    mkdirSync(dataDir);
    return newMember(peer, dataDir, initialCluster, token);
  });
  try {
    await Promise.all(members.map((m) => m.restart()));
  } catch (err) {
    await Promise.all(members.map((m) => m.stop()));
    dir.remove();
    throw err;
  }
  return {
    members,
    endpoints: members.map((m) => m.clientUrl),
    close: async () => {
      await Promise.all(members.map((m) => m.stop()));
      dir.remove();
    },
  };
}

function newMember(
  peer: { name: string; clientUrl: string; peerUrl: string },
  dataDir: string,
  initialCluster: string,
  token: string,
): EtcdMember {
  const logPath = `${dataDir}.log`;
  const member: EtcdMember = {
    ...peer,
    dataDir,
    logPath,
    child: null,
    stop: async () => {
      const child = member.child;
      member.child = null;
      if (!child || child.exitCode !== null || child.signalCode !== null) {
        return;
      }
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const kill = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(kill);
    },
    restart: async () => {
      const log = openSync(logPath, "a");
      const child = spawn(
        ETCD,
        [
          `--name=${peer.name}`,
          `--data-dir=${dataDir}`,
          `--listen-client-urls=${peer.clientUrl}`,
          `--advertise-client-urls=${peer.clientUrl}`,
          `--listen-peer-urls=${peer.peerUrl}`,
          `--initial-advertise-peer-urls=${peer.peerUrl}`,
          `--initial-cluster=${initialCluster}`,
          `--initial-cluster-token=${token}`,
          "--initial-cluster-state=new",
          "--logger=zap",
          "--log-level=warn",
        ],
        { stdio: ["ignore", log, log] },
      );
      closeSync(log);
      member.child = child;
      let exitCode: number | null | undefined;
      child.once("exit", (code) => (exitCode = code));
      await waitFor(
        async () => {
          if (exitCode !== undefined) {
            throw new Error(
              `etcd ${peer.name} exited ${exitCode}; see ${logPath}`,
            );
          }
          return healthy(peer.clientUrl);
        },
        `etcd ${peer.name} to be healthy`,
        START_TIMEOUT_MS,
      );
    },
  };
  return member;
}

async function healthy(clientUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/health`, {
      signal: AbortSignal.timeout(1_000),
    });
    const body = (await res.json()) as { health?: string };
    return body.health === "true";
  } catch {
    return false;
  }
}

/** Ports the kernel says are free now, each from its own listener. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    if (address === null || typeof address === "string") {
      throw new Error("Cannot find a free port: no address");
    }
    return address.port;
  });
  await Promise.all(
    servers.map((s) => new Promise((resolve) => s.close(resolve))),
  );
  return ports;
}
