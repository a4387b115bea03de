/**
 * Leadership among the schedulers, through etcd's election: each one
 * campaigns, the lowest-revision key under `election/` leads, and keys are
 * bound to a lease, so a dead leader's key goes with its lease. Whenever
 * elected, a scheduler leads until it closes or its campaign fails (the
 * lease lost, etcd out of reach); after a failure it campaigns again.
 *
 * Being elected promises nothing about being the only leader (see
 * scheduler.ts): `lead` gets the election key for its writes to check.
 */
import type { Campaign, Etcd3 } from "etcd3";

import { errorMessage } from "../errors.js";
import type { Context } from "../log/index.js";
import { sleep } from "../sleep.js";
import type { ClusterKeys } from "./keys.js";

/** Wait before campaigning again after an error. */
const RETRY_MS = 500;

export interface LeadershipOptions {
  client: Etcd3;
  keys: ClusterKeys;
  /** The candidate's name in the election. */
  id: string;
  /** Lease of the election key, in seconds. */
  leaseTtlS: number;
  log: Context;
  /**
   * Leads, with the leader's election key, until `shouldStop` says so
   * (closing, or the campaign failed) or it finds itself deposed.
   */
  lead: (leaderKey: string, shouldStop: () => boolean) => Promise<void>;
  /** Called when `shouldStop` may have turned, to cut a wait short. */
  interrupt: () => void;
}

/** See the module comment. */
export class Leadership {
  readonly #options: LeadershipOptions;
  readonly #log: Context;
  #campaign: Campaign | null = null;
  #leading = false;
  #closing = false;
  #running: Promise<void> | null = null;
  #markClosing!: () => void;
  readonly #closingSignal = new Promise<void>(
    (resolve) => (this.#markClosing = resolve),
  );

  constructor(options: LeadershipOptions) {
    this.#options = options;
    this.#log = options.log;
  }

  /** Starts campaigning; leads whenever elected, until closed. */
  start(): void {
    this.#running ??= this.#campaignLoop();
  }

  /** Whether this candidate leads right now. */
  get leading(): boolean {
    return this.#leading;
  }

  /** Resigns (a follower is elected at once) and stops. Idempotent. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#markClosing();
    this.#options.interrupt();
    await this.#campaign?.resign().catch(() => undefined);
    await this.#running;
  }

  async #campaignLoop(): Promise<void> {
    const { client, keys } = this.#options;
    // etcd3 keeps candidates under <namespace>election/<name>/, which is
    // keys.election() + "scheduler/".
    const election = client
      .namespace(keys.prefix)
      .election("scheduler", this.#options.leaseTtlS);
    while (!this.#closing) {
      const campaign = election.campaign(this.#options.id);
      this.#campaign = campaign;
      let lost = false;
      const deposed = new Promise<void>((resolve) =>
        campaign.on("error", (err) => {
          if (this.#leading) {
            this.#log.log({ at: "deposed", err: errorMessage(err) });
          } else if (!this.#closing) {
            this.#log.log({ at: "campaign_error", err: errorMessage(err) });
          }
          lost = true;
          this.#options.interrupt();
          resolve();
        }),
      );
      try {
        await Promise.race([
          new Promise<void>((resolve) => campaign.on("elected", resolve)),
          deposed,
          this.#closingSignal,
        ]);
        if (!lost && !this.#closing) {
          const leaderKey = await campaign.getCampaignKey();
          this.#leading = true;
          this.#log.log({ at: "elected", "election.key": leaderKey });
          await this.#options.lead(leaderKey, () => this.#closing || lost);
        }
      } catch (err) {
        this.#log.log({ at: "error", err: errorMessage(err) });
      } finally {
        this.#leading = false;
        await campaign.resign().catch(() => undefined);
      }
      if (this.#closing) break;
      await sleep(RETRY_MS);
    }
    this.#log.log({ at: "resigned" });
  }
}
