/**
 * `lorne scheduler`: a cluster scheduler in the foreground, with no host.
 * It campaigns in etcd's election and places jobs while it leads. SIGTERM,
 * SIGINT and SIGHUP resign (a follower takes over at once) and exit 0; a
 * second SIGTERM or SIGINT exits at once.
 */
import { hostname } from "node:os";

import type { Command } from "commander";

import { DEFAULT_PREFIX, validatePrefix } from "../cluster/keys.js";
import {
  DEFAULT_FINISHED_MAX,
  DEFAULT_LEASE_TTL_S,
  parseFinishedMax,
  parseFinishedRetention,
  parseLeaseTtl,
} from "../cluster/settings.js";
import { validateJobId } from "../host/job.js";
import { BufferedLogger, Context } from "../log/index.js";
import { etcdEndpoints, withEtcd } from "./cluster.js";
import { exitOnSignals, exitOnStartError } from "./signals.js";

interface SchedulerFlags {
  etcd?: string;
  etcdPrefix?: string;
  id?: string;
  leaseTtlS?: string;
  finishedRetention?: string;
  finishedMax?: string;
}

export function register(program: Command): void {
  withEtcd(program.command("scheduler"))
    .description("run a cluster scheduler in the foreground (docs/cluster.md)")
    .option("--id <id>", "scheduler id (default: scheduler-<hostname>-<pid>)")
    .option(
      "--lease-ttl-s <s>",
      `election lease TTL in seconds (default: ${DEFAULT_LEASE_TTL_S})`,
    )
    .option(
      "--finished-retention <duration>",
      "remove jobs finished longer ago than this, e.g. 24h, 7d; 0 keeps " +
        "them forever (default: 24h)",
    )
    .option(
      "--finished-max <n>",
      `keep at most this many finished jobs, the newest (default: ${DEFAULT_FINISHED_MAX})`,
    )
    .action(async (flags: SchedulerFlags) => {
      await runScheduler(flags);
    });
}

async function runScheduler(flags: SchedulerFlags): Promise<void> {
  const endpoints = etcdEndpoints(flags);
  const id = validateJobId(
    flags.id ?? `scheduler-${hostname()}-${process.pid}`,
    "id",
    "scheduler id",
  );
  const prefix = validatePrefix(
    flags.etcdPrefix ?? DEFAULT_PREFIX,
    "--etcd-prefix",
  );
  const leaseTtlS =
    flags.leaseTtlS === undefined
      ? DEFAULT_LEASE_TTL_S
      : parseLeaseTtl(flags.leaseTtlS);
  const retention = {
    finishedRetentionMs:
      flags.finishedRetention === undefined
        ? undefined
        : parseFinishedRetention(flags.finishedRetention),
    finishedMax:
      flags.finishedMax === undefined
        ? undefined
        : parseFinishedMax(flags.finishedMax),
  };

  // A daemon must not stop while its log output is not being read.
  const logger = new BufferedLogger({ fd: 1, blockMs: 0 });
  const log = new Context({ data: { app: "lorne" }, logger });
  // Loaded here so other commands do not load gRPC.
  const { checkEtcd, openEtcd } = await import("../cluster/etcd.js");
  const { ClusterKeys } = await import("../cluster/keys.js");
  const { Scheduler } = await import("../cluster/scheduler.js");
  const client = openEtcd({ endpoints });
  try {
    await checkEtcd(client, endpoints);
  } catch (err) {
    client.close();
    exitOnStartError("scheduler", log.child({ fn: "main" }), logger, err);
  }
  const scheduler = new Scheduler({
    client,
    keys: new ClusterKeys(prefix),
    id,
    leaseTtlS,
    log,
    retention,
  });
  log.log({
    fn: "main",
    at: "start",
    "scheduler.id": id,
    etcd: endpoints.join(","),
  });
  scheduler.start();

  exitOnSignals({
    log: log.child({ fn: "main" }),
    logger,
    close: async () => {
      await scheduler.close();
      client.close();
    },
  });
}
