/**
 * The leader's decisions for one round, from a view built by hand: what
 * each job gets written, with which guards. No etcd needed.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  decideRound,
  emptyStatus,
  type DecisionInputs,
} from "../../src/cluster/decisions.js";
import { ClusterKeys } from "../../src/cluster/keys.js";
import {
  validateSubmission,
  type ClusterStatus,
  type HostRegistration,
} from "../../src/cluster/records.js";
import type { ClusterView } from "../../src/cluster/view.js";

const NOW = "2026-01-02T03:04:05.000Z";
const keys = new ClusterKeys("/t/");
const inputs: DecisionInputs = { keys, schedulerId: "s1", now: () => NOW };

function host(id: string): HostRegistration {
  return {
    id,
    url: "http://127.0.0.1:1",
    attributes: { zone: "a" },
    backend: "process",
    capacity: { ports: 10 },
    version: "test",
    started_at: NOW,
  };
}

/** A view with hosts (id to lease), jobs and statuses. */
function view(
  hosts: Record<string, string>,
  jobs: { id: string; at: string; body?: Record<string, unknown> }[],
  statuses: (Partial<ClusterStatus> & { job_id: string })[] = [],
): ClusterView {
  const out: ClusterView = {
    hosts: new Map(),
    jobs: new Map(),
    statuses: new Map(),
    invalidStatuses: new Set(),
  };
  for (const [id, lease] of Object.entries(hosts)) {
    const value = host(id);
    out.hosts.set(id, { value, key: keys.host(id), modRevision: "1", lease });
  }
  for (const { id, at, body } of jobs) {
    const value = {
      ...validateSubmission({ config: { cmd: ["x"] }, ...body }, id),
      submitted_at: at,
    };
    out.jobs.set(id, { value, key: keys.job(id), modRevision: "2" });
  }
  for (const status of statuses) {
    const id = status.job_id;
    const value = { ...emptyStatus(id, 1, NOW), ...status };
    out.statuses.set(id, { value, key: keys.status(id), modRevision: "3" });
  }
  return out;
}

test("decisions: a new job goes to the live host with the fewest active jobs, guarded", () => {
  const v = view(
    { a: "10", b: "20" },
    [{ id: "j", at: NOW }],
    [{ job_id: "busy", state: "running", host_id: "a", session: "10" }],
  );
  const { decisions, unplaced } = decideRound(v, inputs);
  assert.deepEqual(unplaced, []);
  assert.deepEqual(decisions, [
    {
      kind: "placed",
      unit: {
        status: { key: "/t/status/j", modRevision: null },
        hostAlive: { hostId: "b", lease: "20" },
        ops: [
          {
            put: "/t/assignments/b/j",
            value: {
              job_id: "j",
              host_id: "b",
              session: "20",
              attempt: 1,
              scheduler: "s1",
              assigned_at: NOW,
            },
          },
          {
            put: "/t/status/j",
            value: {
              ...emptyStatus("j", 1, NOW),
              state: "assigned",
              host_id: "b",
              session: "20",
            },
          },
        ],
      },
    },
  ]);
});

test("decisions: earlier submissions pick first, and each placement counts", () => {
  const v = view({ a: "10", b: "20" }, [
    { id: "late", at: "2026-01-02T00:00:02.000Z" },
    { id: "early", at: "2026-01-02T00:00:01.000Z" },
    { id: "early2", at: "2026-01-02T00:00:01.000Z" },
  ]);
  const placed = decideRound(v, inputs).decisions.map(
    (d) => `${d.kind} ${d.unit.hostAlive?.hostId ?? ""}`,
  );
  assert.deepEqual(placed, ["placed a", "placed b", "placed a"]);
});

test("decisions: jobs no live host fits wait, listed; stopped, final and unreadable ones are not placed", () => {
  const v = view(
    { a: "10" },
    [
      { id: "nowhere", at: NOW, body: { constraints: { zone: "c" } } },
      { id: "done", at: NOW },
      { id: "broken", at: NOW },
      { id: "stopped", at: NOW },
    ],
    [{ job_id: "done", state: "done", host_id: "a", session: "10" }],
  );
  v.invalidStatuses.add("broken");
  const stopped = v.jobs.get("stopped");
  if (stopped) stopped.value.desired = "stop";
  const { decisions, unplaced } = decideRound(v, inputs);
  assert.deepEqual(
    unplaced.map((j) => j.id),
    ["nowhere"],
  );
  assert.deepEqual(decisions, [
    {
      kind: "stopped",
      unit: {
        status: { key: "/t/status/stopped", modRevision: null },
        ops: [
          {
            put: "/t/status/stopped",
            value: { ...emptyStatus("stopped", 0, NOW), state: "stopped" },
          },
        ],
      },
    },
  ]);
});

test("decisions: a job whose host lease ended is lost, or placed elsewhere, or pending again", () => {
  const running = { state: "running" as const, host_id: "a", session: "10" };
  const cases: {
    restart: string;
    hosts: Record<string, string>;
    want: string[];
  }[] = [
    { restart: "never", hosts: { a: "11", b: "20" }, want: ["lost", "lost"] },
    {
      restart: "on-host-loss",
      hosts: { a: "11", b: "20" },
      want: ["requeued", "assigned"],
    },
    { restart: "on-host-loss", hosts: { a: "11" }, want: ["lost", "pending"] },
  ];
  for (const { restart, hosts, want } of cases) {
    const v = view(
      hosts,
      [{ id: "j", at: NOW, body: { restart } }],
      [{ job_id: "j", pid: 7, ...running }],
    );
    const [decision, ...rest] = decideRound(v, inputs).decisions;
    assert.deepEqual(rest, [], restart);
    const unit = decision?.unit;
    const status = unit?.ops.find(
      (op) => "put" in op && op.put === "/t/status/j",
    );
    const written = (status as { value: ClusterStatus }).value;
    assert.deepEqual([decision?.kind, written.state], want, restart);
    assert.deepEqual(unit?.status, { key: "/t/status/j", modRevision: "3" });
    assert.deepEqual(unit?.hostGone, { hostId: "a", session: "10" });
    assert.ok(
      unit?.ops.some(
        (op) => "delete" in op && op.delete === "/t/assignments/a/j",
      ),
    );
    if (written.state === "assigned") {
      assert.equal(written.host_id, "b");
      assert.equal(written.attempt, 2);
    } else {
      assert.equal(written.error, 'host "a" was lost (its lease ended)');
      assert.equal(written.pid, written.state === "pending" ? null : 7);
    }
  }
});
