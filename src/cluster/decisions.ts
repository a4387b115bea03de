/**
 * What the leading scheduler writes in one round, decided from the cluster
 * view alone, apart from etcd so it can be tested on its own: a pending
 * job is placed on a live host (placement.ts picks which), or marked
 * stopped when it was stopped before it ran; a job whose host is gone is
 * lost, or back to pending, or placed elsewhere when it restarts on host
 * loss. Each decision is one guarded unit (txn.ts) for the scheduler to
 * commit.
 */
import type { ClusterKeys } from "./keys.js";
import { chooseHost, type Candidate } from "./placement.js";
import {
  isFinalState,
  type Assignment,
  type ClusterJob,
  type ClusterStatus,
} from "./records.js";
import type { TxnUnit } from "./txn.js";
import type { ClusterView, Entry } from "./view.js";

/** What a decision does to its job, as a round counts it. */
export type DecisionKind = "placed" | "lost" | "requeued" | "stopped";

/** One job's guarded write, and what it does. */
export interface Decision {
  kind: DecisionKind;
  unit: TxnUnit;
}

/** What the decisions rest on besides the view. */
export interface DecisionInputs {
  keys: ClusterKeys;
  /** The deciding scheduler, named in assignments. */
  schedulerId: string;
  /** The time to write into a record, as an ISO 8601 string. */
  now: () => string;
}

/** The decisions of one round, and the jobs no live host fits. */
export interface RoundDecisions {
  decisions: Decision[];
  /** Jobs left waiting for a host; every round lists them again. */
  unplaced: ClusterJob[];
}

/**
 * The decisions for every job of the view that needs one. Jobs go oldest
 * submission first (ties by id), and each placement counts towards its
 * host's active jobs, so that later jobs of the round spread out.
 */
export function decideRound(
  view: ClusterView,
  inputs: DecisionInputs,
): RoundDecisions {
  const round: Round = {
    view,
    inputs,
    candidates: liveCandidates(view),
    unplaced: [],
  };
  const decisions: Decision[] = [];
  const jobs = [...view.jobs.values()].sort(
    (a, b) =>
      a.value.submitted_at.localeCompare(b.value.submitted_at) ||
      a.value.id.localeCompare(b.value.id),
  );
  for (const job of jobs) {
    // A status nobody can read says nothing safe about where the job
    // runs: the job waits, reported, until the value is fixed.
    if (view.invalidStatuses.has(job.value.id)) continue;
    const status = view.statuses.get(job.value.id);
    const decision = decide(job, status, round);
    if (decision) decisions.push(decision);
  }
  return { decisions, unplaced: round.unplaced };
}

/** A blank status for a job, before any host has reported. */
export function emptyStatus(
  jobId: string,
  attempt: number,
  now: string,
): ClusterStatus {
  return {
    job_id: jobId,
    state: "pending",
    host_id: null,
    session: null,
    attempt,
    pid: null,
    ports: [],
    exit_status: null,
    signal: null,
    error: null,
    updated_at: now,
  };
}

/** A live host, with the lease its registration is bound to. */
type LiveCandidate = Candidate & { lease: string };

/** One round's inputs and what it has decided so far. */
interface Round {
  view: ClusterView;
  inputs: DecisionInputs;
  candidates: Map<string, LiveCandidate>;
  unplaced: ClusterJob[];
}

function decide(
  job: Entry<ClusterJob>,
  status: Entry<ClusterStatus> | undefined,
  round: Round,
): Decision | null {
  const { keys } = round.inputs;
  const spec = job.value;
  const s = status?.value;
  if (s && isFinalState(s.state)) return null;
  const statusGuard = status
    ? { key: status.key, modRevision: status.modRevision }
    : { key: keys.status(spec.id), modRevision: null };

  if (s === undefined || s.state === "pending") {
    if (spec.desired === "stop") {
      return {
        kind: "stopped",
        unit: setStatus(statusGuard, spec.id, "stopped", s, null, round),
      };
    }
    // A job back to pending after a loss keeps the lost host's id.
    return place(
      spec,
      statusGuard,
      (s?.attempt ?? 0) + 1,
      round,
      s?.host_id ?? undefined,
    );
  }

  // assigned, starting or running: is its host still the one it was?
  const hostId = s.host_id ?? "";
  const host = round.view.hosts.get(hostId);
  if (host && host.lease === s.session) return null;
  const error = `host "${hostId}" was lost (its lease ended)`;
  const goneGuard = { hostId, session: s.session ?? "" };
  if (spec.restart === "on-host-loss" && spec.desired === "run") {
    // Elsewhere: the lost host may be back under a new lease, with the
    // job's id still in its job table.
    const placed = place(spec, statusGuard, s.attempt + 1, round, hostId);
    if (placed) {
      placed.unit.hostGone = goneGuard;
      placed.unit.ops.push({ delete: keys.assignment(hostId, spec.id) });
      return { unit: placed.unit, kind: "requeued" };
    }
    const unit = setStatus(statusGuard, spec.id, "pending", s, error, round);
    unit.hostGone = goneGuard;
    unit.ops.push({ delete: keys.assignment(hostId, spec.id) });
    return { unit, kind: "lost" };
  }
  const unit = setStatus(statusGuard, spec.id, "lost", s, error, round);
  unit.hostGone = goneGuard;
  unit.ops.push({ delete: keys.assignment(hostId, spec.id) });
  return { unit, kind: "lost" };
}

function place(
  job: ClusterJob,
  statusGuard: TxnUnit["status"],
  attempt: number,
  round: Round,
  excludeHostId?: string,
): Decision | null {
  const { keys, schedulerId } = round.inputs;
  const { candidates } = round;
  const chosen = chooseHost(
    job,
    [...candidates.values()].filter((c) => c.host.id !== excludeHostId),
  );
  if (!chosen) {
    round.unplaced.push(job);
    return null;
  }
  chosen.active++;
  const host = chosen.host;
  const session = candidates.get(host.id)?.lease ?? "";
  const now = round.inputs.now();
  const assignment: Assignment = {
    job_id: job.id,
    host_id: host.id,
    session,
    attempt,
    scheduler: schedulerId,
    assigned_at: now,
  };
  const status: ClusterStatus = {
    ...emptyStatus(job.id, attempt, now),
    state: "assigned",
    host_id: host.id,
    session,
  };
  return {
    kind: "placed",
    unit: {
      status: statusGuard,
      hostAlive: { hostId: host.id, lease: session },
      ops: [
        { put: keys.assignment(host.id, job.id), value: assignment },
        { put: keys.status(job.id), value: status },
      ],
    },
  };
}

function setStatus(
  statusGuard: TxnUnit["status"],
  jobId: string,
  state: ClusterStatus["state"],
  previous: ClusterStatus | undefined,
  error: string | null,
  round: Round,
): TxnUnit {
  const now = round.inputs.now();
  const status: ClusterStatus = {
    ...(previous ?? emptyStatus(jobId, 0, now)),
    state,
    error,
    updated_at: now,
  };
  if (state === "pending") {
    status.session = null;
    status.pid = null;
  }
  return {
    status: statusGuard,
    ops: [{ put: round.inputs.keys.status(jobId), value: status }],
  };
}

/** Live hosts with the count of active jobs each has. */
function liveCandidates(view: ClusterView): Map<string, LiveCandidate> {
  const out = new Map<string, LiveCandidate>();
  for (const [id, host] of view.hosts) {
    out.set(id, { host: host.value, active: 0, lease: host.lease });
  }
  for (const { value: s } of view.statuses.values()) {
    if (isFinalState(s.state) || s.host_id === null) continue;
    const candidate = out.get(s.host_id);
    if (candidate && candidate.lease === s.session) candidate.active++;
  }
  return out;
}
