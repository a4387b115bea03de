/**
 * The wait between attempts that lorne's retry loops share: the cluster
 * agent and scheduler pause before trying again, a ship sender backs off
 * after a failed batch until the shipper stops it, and the host client
 * waits to reconnect a followed stream until its caller gives up.
 */
import { setTimeout as delay } from "node:timers/promises";

/**
 * Resolves after `ms`, or as soon as `signal` aborts. An abort ends the
 * wait early and is not an error, so the caller looks at its own state
 * next; without a signal the wait always runs its full time.
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch (err) {
    if (!signal?.aborted) throw err;
  }
}
