/**
 * The placement rule, apart from etcd so it can be tested on its own:
 * keep the hosts whose attributes match every constraint and that have
 * enough ports, then take the one with the fewest active jobs (ties go to
 * the smallest host id, so the choice is the same on every scheduler).
 */
import type { ClusterJob, HostRegistration } from "./records.js";

/** A live host as the scheduler sees it. */
export interface Candidate {
  host: HostRegistration;
  /** Jobs placed on it that have not ended, counting this round's. */
  active: number;
}

/**
 * The host to run `job` on, or null when none fits. Does not change the
 * counts; the caller adds one to the chosen host's `active`.
 */
export function chooseHost(
  job: ClusterJob,
  candidates: Iterable<Candidate>,
): Candidate | null {
  let best: Candidate | null = null;
  const portsWanted = job.spec.config.tcp_ports ?? 0;
  for (const candidate of candidates) {
    if (!matches(candidate.host.attributes, job.constraints)) continue;
    if (candidate.host.capacity.ports < portsWanted) continue;
    if (
      best === null ||
      candidate.active < best.active ||
      (candidate.active === best.active && candidate.host.id < best.host.id)
    ) {
      best = candidate;
    }
  }
  return best;
}

/** Whether attributes hold every `k=v` of the constraints. */
export function matches(
  attributes: Record<string, string>,
  constraints: Record<string, string>,
): boolean {
  return Object.entries(constraints).every(
    ([key, value]) =>
      Object.hasOwn(attributes, key) && attributes[key] === value,
  );
}
