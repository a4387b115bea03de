/**
 * A host's membership in a cluster, as the daemon starts and stops it: the
 * etcd client, the agent that registers the host and runs its
 * assignments, and, with `scheduler`, a scheduler campaigning in the same
 * process. Loaded only when the daemon is given `--etcd`.
 */
import type { Etcd3 } from "etcd3";

import type { Host } from "../host/host.js";
import type { Context } from "../log/index.js";
import { ClusterAgent } from "./agent.js";
import { checkEtcd, openEtcd } from "./etcd.js";
import { ClusterKeys, DEFAULT_PREFIX } from "./keys.js";
import { Scheduler } from "./scheduler.js";
import { DEFAULT_LEASE_TTL_S, type ClusterSettings } from "./settings.js";

export interface MemberOptions {
  settings: ClusterSettings;
  host: Host;
  /** The API's URL, for the default advertised address. */
  url: string;
  version: string;
  log: Context;
}

/** See the module comment. */
export class ClusterMember {
  readonly #client: Etcd3;
  readonly #agent: ClusterAgent;
  readonly #scheduler: Scheduler | null;

  private constructor(
    client: Etcd3,
    agent: ClusterAgent,
    scheduler: Scheduler | null,
  ) {
    this.#client = client;
    this.#agent = agent;
    this.#scheduler = scheduler;
  }

  /** Checks etcd, registers the host, starts the scheduler if asked. */
  static async start(options: MemberOptions): Promise<ClusterMember> {
    const { settings, host, log } = options;
    const keys = new ClusterKeys(settings.prefix ?? DEFAULT_PREFIX);
    const leaseTtlS = settings.leaseTtlS ?? DEFAULT_LEASE_TTL_S;
    const client = openEtcd({ endpoints: settings.endpoints });
    try {
      await checkEtcd(client, settings.endpoints);
      const agent = await ClusterAgent.start({
        client,
        keys,
        host,
        advertise: settings.advertise ?? new URL(options.url).host,
        leaseTtlS,
        version: options.version,
        log,
      });
      let scheduler: Scheduler | null = null;
      if (settings.scheduler) {
        scheduler = new Scheduler({
          client,
          keys,
          id: host.id,
          leaseTtlS,
          log,
          retention: {
            finishedRetentionMs: settings.finishedRetentionMs,
            finishedMax: settings.finishedMax,
          },
        });
        scheduler.start();
      }
      return new ClusterMember(client, agent, scheduler);
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** Resigns the scheduler and stops taking or reporting jobs. */
  async pause(): Promise<void> {
    await this.#scheduler?.close();
    await this.#agent.pause();
  }

  /** Revokes the host's lease and closes the client. Idempotent. */
  async close(): Promise<void> {
    await this.pause();
    await this.#agent.close();
    this.#client.close();
  }
}
