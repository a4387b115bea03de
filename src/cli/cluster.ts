/**
 * `lorne cluster ...`: the cluster's client commands. They talk to etcd
 * only (`--etcd`, else LORNE_ETCD, else http://127.0.0.1:2379), never to a
 * host, so they work whichever hosts are up and need no host token.
 */
import type { Command } from "commander";

import type { ClusterClient, JobSummary } from "../cluster/client.js";
import { DEFAULT_PREFIX } from "../cluster/keys.js";
import { isFinalState, type RetentionRecord } from "../cluster/records.js";
import {
  DEFAULT_ETCD,
  DEFAULT_FINISHED_RETENTION_MS,
  parseEndpoints,
} from "../cluster/settings.js";
import { formatDuration } from "../duration.js";
import { jobArgv, MAX_TCP_PORTS } from "../host/job.js";
import { collect, parseCount, parseEnvPairs, parseMs } from "./options.js";
import { printTable } from "./table.js";

/** How long `run --wait` and `stop` wait by default. */
const DEFAULT_WAIT_MS = 30_000;

interface EtcdFlags {
  etcd?: string;
  etcdPrefix?: string;
}

interface RunFlags extends EtcdFlags {
  constraint: string[];
  env: string[];
  ports: string;
  id?: string;
  workdir?: string;
  image?: string;
  restart: string;
  service?: string;
  wait?: boolean;
  waitMs?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const cluster = program
    .command("cluster")
    .description("the cluster's hosts, jobs and services, through etcd");

  withEtcd(cluster.command("hosts"))
    .description("list live hosts and how many jobs each runs")
    .option("--json", "print JSON")
    .action(async (flags: EtcdFlags & { json?: boolean }) => {
      await withClient(flags, async (client) => {
        const hosts = await client.hosts();
        if (flags.json) return printJson(hosts);
        printTable(
          ["ID", "URL", "BACKEND", "JOBS", "ATTRIBUTES"],
          hosts.map(({ host, active }) => [
            host.id,
            host.url,
            host.backend,
            String(active),
            Object.entries(host.attributes)
              .map(([k, v]) => `${k}=${v}`)
              .join(",") || "-",
          ]),
        );
      });
    });

  withEtcd(cluster.command("run"))
    .description("submit a job to the cluster; prints its id")
    .argument("<cmd...>", "command and its arguments")
    .passThroughOptions()
    .option(
      "-c, --constraint <k=v>",
      "run only on hosts with this attribute (repeatable)",
      collect,
      [],
    )
    .option("-e, --env <k=v>", "environment variable (repeatable)", collect, [])
    .option("-p, --ports <n>", "TCP ports to allocate", "0")
    .option("--id <id>", "job id (default: generated)")
    .option("-w, --workdir <dir>", "working directory on the host (absolute)")
    .option("-i, --image <ref>", "container image (docker hosts)")
    .option(
      "--restart <policy>",
      "never, or on-host-loss: run it elsewhere if its host is lost",
      "never",
    )
    .option(
      "--service <name[:n]>",
      "register the job's port n (default 0) as service NAME while it runs",
    )
    .option(
      "--wait",
      "wait until the job runs (or fails), then print its state",
    )
    .option(
      "--wait-ms <ms>",
      `how long --wait waits (default: ${DEFAULT_WAIT_MS})`,
    )
    .option("--json", "print the submitted job as JSON")
    .action(async (cmd: string[], flags: RunFlags) => {
      const body = runBody(cmd, flags);
      const waitMs = waitFlag(flags.waitMs);
      await withClient(flags, async (client) => {
        const job = await client.submit(body);
        if (flags.json) printJson(job);
        else process.stdout.write(`${job.id}\n`);
        if (!flags.wait) return;
        const summary = await client.waitFor(
          job.id,
          (state) => state === "running" || isFinalState(state),
          waitMs,
        );
        process.stderr.write(`${job.id} ${describe(summary)}\n`);
        if (summary.state !== "running" && summary.state !== "done") {
          process.exitCode = 1;
        }
      });
    });

  withEtcd(cluster.command("ps"))
    .description("list cluster jobs (not ended ones unless --all)")
    .option("-a, --all", "include jobs that have ended")
    .option("--json", "print JSON")
    .action(async (flags: EtcdFlags & { all?: boolean; json?: boolean }) => {
      await withClient(flags, async (client) => {
        const jobs = (await client.jobs()).filter(
          (j) => flags.all || !isFinalState(j.state),
        );
        if (flags.json) return printJson(jobs);
        printTable(
          ["ID", "STATE", "HOST", "ATTEMPT", "PORTS", "COMMAND"],
          jobs.map((j) => [
            j.job.id,
            stateText(j),
            j.status?.host_id ?? "-",
            String(j.status?.attempt ?? 0),
            j.status?.ports.join(",") || "-",
            jobArgv(j.job.spec.config).join(" "),
          ]),
        );
        if (flags.all) {
          const record = await client.retention();
          const leader = record === null ? await client.leader() : null;
          process.stderr.write(`${retentionNote(record, leader)}\n`);
        }
      });
    });

  withEtcd(cluster.command("stop"))
    .description("stop a cluster job and wait until it has ended")
    .argument("<id>")
    .option(
      "--wait-ms <ms>",
      `how long to wait for the end (default: ${DEFAULT_WAIT_MS}; 0: do not wait)`,
    )
    .action(async (id: string, flags: EtcdFlags & { waitMs?: string }) => {
      const waitMs = waitFlag(flags.waitMs);
      await withClient(flags, async (client) => {
        await client.stop(id);
        const summary = await client.waitFor(id, isFinalState, waitMs);
        process.stdout.write(`${id} ${describe(summary)}\n`);
        if (waitMs > 0 && !isFinalState(summary.state)) process.exitCode = 1;
      });
    });

  withEtcd(cluster.command("events"))
    .description(
      "print changes to hosts, jobs, assignments, statuses and services as they happen",
    )
    .option("--json", "print JSON lines")
    .action(async (flags: EtcdFlags & { json?: boolean }) => {
      const { format } = await import("../log/format.js");
      const client = await openClient(flags);
      const stop = await client.watch((change) => {
        const line = flags.json
          ? JSON.stringify(change)
          : format(changeFields(change));
        process.stdout.write(`${line}\n`);
      });
      // Runs until interrupted.
      await new Promise<void>((resolve) => {
        const end = () => resolve();
        process.once("SIGINT", end);
        process.once("SIGTERM", end);
      });
      await stop();
      client.close();
    });

  withEtcd(cluster.command("services"))
    .description("list live instances of a service, or of every service")
    .argument("[name]")
    .option("--json", "print JSON")
    .action(
      async (
        name: string | undefined,
        flags: EtcdFlags & { json?: boolean },
      ) => {
        await withClient(flags, async (client) => {
          const instances = await client.services(name);
          if (flags.json) return printJson(instances);
          printTable(
            ["NAME", "JOB", "HOST", "ADDRESS"],
            instances.map((i) => [i.name, i.job_id, i.host_id, i.address]),
          );
        });
      },
    );
}

/** Adds the etcd options every cluster command takes. */
export function withEtcd(cmd: Command): Command {
  return cmd
    .option(
      "--etcd <url,...>",
      `etcd endpoints (default: $LORNE_ETCD or ${DEFAULT_ETCD})`,
    )
    .option(
      "--etcd-prefix <path>",
      `etcd key prefix (default: ${DEFAULT_PREFIX})`,
    );
}

/** The endpoints `--etcd` or LORNE_ETCD name. */
export function etcdEndpoints(flags: EtcdFlags): string[] {
  if (flags.etcd !== undefined) return parseEndpoints(flags.etcd);
  const env = process.env.LORNE_ETCD;
  return parseEndpoints(env ?? DEFAULT_ETCD, env ? "LORNE_ETCD" : "--etcd");
}

async function openClient(flags: EtcdFlags): Promise<ClusterClient> {
  const endpoints = etcdEndpoints(flags);
  // Loaded here so `lorne --help` does not load gRPC.
  const { ClusterClient } = await import("../cluster/client.js");
  return ClusterClient.open({
    endpoints,
    prefix: flags.etcdPrefix,
    onInvalid: (key, err) =>
      process.stderr.write(`lorne cluster: skipped ${key}: ${err.message}\n`),
  });
}

async function withClient(
  flags: EtcdFlags,
  fn: (client: ClusterClient) => Promise<void>,
): Promise<void> {
  const client = await openClient(flags);
  try {
    await fn(client);
  } finally {
    client.close();
  }
}

function waitFlag(text: string | undefined): number {
  return text === undefined ? DEFAULT_WAIT_MS : parseMs(text, "--wait-ms");
}

function runBody(cmd: string[], flags: RunFlags): Record<string, unknown> {
  const config: Record<string, unknown> = {
    cmd,
    env: parseEnvPairs(flags.env, "--env"),
    tcp_ports: parseCount(flags.ports, "--ports", MAX_TCP_PORTS),
  };
  if (flags.workdir) config.working_dir = flags.workdir;
  if (flags.image) config.image = flags.image;
  if (flags.service !== undefined) {
    const [name, index = "0"] = flags.service.split(":");
    config.service = {
      name,
      port_index: parseCount(index, "--service port", MAX_TCP_PORTS - 1),
    };
  }
  const body: Record<string, unknown> = {
    config,
    constraints: parseEnvPairs(flags.constraint, "--constraint"),
    restart: flags.restart,
  };
  if (flags.id !== undefined) body.id = flags.id;
  return body;
}

function stateText(j: JobSummary): string {
  const s = j.status;
  if (s && isFinalState(j.state) && s.exit_status !== null) {
    return `${j.state} (${s.exit_status})`;
  }
  if (j.job.desired === "stop" && !isFinalState(j.state)) {
    return `${j.state}, stopping`;
  }
  return j.state;
}

/** What `ps --all` says about how long finished jobs stay listed. */
export function retentionNote(
  record: RetentionRecord | null,
  leader: string | null = null,
): string {
  if (record === null && leader !== null) {
    // A leader whose record was skipped as malformed, or not yet written.
    return (
      `Finished jobs: scheduler "${leader}" leads, but how long it keeps ` +
      "them cannot be read"
    );
  }
  if (record === null) {
    return (
      "Finished jobs: no scheduler leads, so none is removed until one " +
      `does (by default ${formatDuration(DEFAULT_FINISHED_RETENTION_MS)} ` +
      "after it ended)"
    );
  }
  const by = `scheduler "${record.scheduler}"`;
  if (record.finished_retention_ms === 0) {
    return `Finished jobs are kept forever (${by}: --finished-retention 0)`;
  }
  return (
    "Finished jobs are removed " +
    `${formatDuration(record.finished_retention_ms)} after they end, and ` +
    `the oldest first beyond ${record.finished_max} (${by})`
  );
}

function describe(j: JobSummary): string {
  const parts: string[] = [stateText(j)];
  if (j.status?.host_id) parts.push(`on ${j.status.host_id}`);
  if (j.status?.error) parts.push(`error: ${j.status.error}`);
  return parts.join(" ");
}

function changeFields(change: {
  revision: string;
  type: string;
  kind: string;
  parts: string[];
  value: unknown;
}): Record<string, string | number | null> {
  const v = (change.value ?? {}) as Record<string, unknown>;
  const text = (x: unknown) =>
    typeof x === "string" || typeof x === "number" ? x : null;
  const fields: Record<string, string | number | null> = {
    rev: change.revision,
    event: `${change.kind}.${change.type}`,
  };
  switch (change.kind) {
    case "hosts":
      fields["host.id"] = change.parts[0] ?? null;
      fields.url = text(v.url);
      break;
    case "jobs":
      fields["job.id"] = change.parts[0] ?? null;
      fields.desired = text(v.desired);
      break;
    case "assignments":
      fields["host.id"] = change.parts[0] ?? null;
      fields["job.id"] = change.parts[1] ?? null;
      fields.attempt = text(v.attempt);
      break;
    case "status":
      fields["job.id"] = change.parts[0] ?? null;
      fields.state = text(v.state);
      fields["host.id"] = text(v.host_id);
      fields.exit_status = text(v.exit_status);
      fields.error = text(v.error);
      break;
    case "services":
      fields.service = change.parts[0] ?? null;
      fields["job.id"] = change.parts[1] ?? null;
      fields.address = text(v.address);
      break;
  }
  return fields;
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
