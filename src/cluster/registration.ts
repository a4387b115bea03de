/**
 * A host's registration: `hosts/<id>` put under a lease that etcd3 keeps
 * alive, so the key goes when the host does. Each registration takes a
 * new lease, and its id names the session; when the current lease is
 * lost, the owner is told, and decides when to register again.
 */
import type { Etcd3, Lease } from "etcd3";

import { errorMessage } from "../errors.js";
import type { Host } from "../host/host.js";
import type { Context } from "../log/index.js";
import type { ClusterKeys } from "./keys.js";
import type { HostRegistration } from "./records.js";

export interface RegistrationOptions {
  client: Etcd3;
  keys: ClusterKeys;
  /** The value put under `hosts/<id>`. */
  record: HostRegistration;
  /** Lease TTL of the registration, in seconds. */
  leaseTtlS: number;
  /** Called when the current lease is lost, until revoked. */
  onLost: (err: Error) => void;
  log: Context;
}

/** See the module comment. */
export class Registration {
  readonly #options: RegistrationOptions;
  readonly #log: Context;
  #lease: Lease | null = null;
  #session: string | null = null;

  constructor(options: RegistrationOptions) {
    this.#options = options;
    this.#log = options.log;
  }

  /**
   * Registers the host under a new lease, which becomes the current one;
   * the session changes once the registration is written. When it fails,
   * the new lease is revoked (or, failing that, no longer kept alive)
   * before it rejects, and the loss of a lease that never became current
   * is reported by the rejection alone, never through `onLost`. One
   * registration at a time.
   */
  async register(): Promise<void> {
    const { client, keys, record, leaseTtlS } = this.#options;
    // The lease of an earlier registration is lost by now; should it not
    // be, its keepalive must not outlive it.
    this.#lease?.release();
    this.#lease = null;
    const lease = client.lease(leaseTtlS);
    lease.on("lost", (err) => this.#onLost(lease, err));
    let session: string;
    try {
      session = await lease.grant();
      await lease.put(keys.host(record.id)).value(JSON.stringify(record));
      // Lost while the put was on its way: etcd may drop the record soon.
      if (lease.revoked()) {
        throw new Error(`Cannot register: lease ${session} was lost`);
      }
    } catch (err) {
      await this.#end(lease, null);
      throw err;
    }
    this.#lease = lease;
    this.#session = session;
    this.#log.log({
      at: "registered",
      "lease.id": session,
      lease_ttl_s: leaseTtlS,
      url: record.url,
    });
  }

  /**
   * Revokes the current lease, so the registration and the keys bound to
   * it go at once; if that fails, they go when it expires. Never rejects.
   */
  async revoke(): Promise<void> {
    const lease = this.#lease;
    this.#lease = null;
    if (lease) await this.#end(lease, this.#session);
  }

  /** The lease id of the last registration written. */
  get session(): string | null {
    return this.#session;
  }

  #onLost(lease: Lease, err: Error): void {
    if (lease === this.#lease) this.#options.onLost(err);
  }

  // Revokes a lease, or at least stops keeping it alive. `session` is set
  // for a registered lease, null for one given up on while registering
  // (nothing to say unless its revoke fails).
  async #end(lease: Lease, session: string | null): Promise<void> {
    try {
      await lease.revoke();
      if (session !== null) {
        this.#log.log({ at: "deregistered", "lease.id": session });
      }
    } catch (err) {
      lease.release();
      this.#log.log({
        at: "revoke_error",
        err: errorMessage(err),
        resolution:
          session === null
            ? "the lease ends when it expires"
            : "the registration ends when its lease expires",
      });
    }
  }
}

/** What a host registers about itself; `advertise` is its API's host:port. */
export function hostRecord(
  host: Host,
  advertise: string,
  version: string,
): HostRegistration {
  return {
    id: host.id,
    url: `http://${advertise}`,
    attributes: host.attributes,
    backend: host.backendName,
    capacity: { ports: host.ports.range.max - host.ports.range.min + 1 },
    version,
    started_at: host.startedAt,
  };
}
