import assert from "node:assert/strict";
import { test } from "node:test";

import { EventLog, type JobEvent } from "../../src/host/events.js";
import type { JobRecord } from "../../src/host/job.js";

function job(id: string): JobRecord {
  return {
    id,
    host_id: "h",
    status: "running",
    config: { cmd: ["true"] },
    metadata: {},
    pid: 1,
    ports: [],
    exit_status: null,
    signal: null,
    oom_killed: false,
    error: null,
    created_at: "",
    started_at: null,
    ended_at: null,
  };
}

test("events: numbers events from 1 and delivers them in order", () => {
  const log = new EventLog();
  const seen: JobEvent[] = [];
  log.subscribe((e) => seen.push(e));
  log.emit("create", job("a"));
  log.emit("start", job("a"));
  assert.deepEqual(
    seen.map((e) => [e.id, e.event, e.job_id]),
    [
      [1, "create", "a"],
      [2, "start", "a"],
    ],
  );
});

test("events: filters by job and resumes after an id without a gap", () => {
  const log = new EventLog();
  log.emit("create", job("a"));
  log.emit("create", job("b"));
  log.emit("start", job("a"));
  const seen: number[] = [];
  const stop = log.subscribe((e) => seen.push(e.id), { jobId: "a" }, 1);
  log.emit("stop", job("a"));
  log.emit("stop", job("b"));
  stop();
  log.emit("create", job("a"));
  assert.deepEqual(seen, [3, 4]);
});

test("events: keeps a bounded history", () => {
  const log = new EventLog({ history: 3 });
  for (let i = 0; i < 5; i++) log.emit("create", job(`j${i}`));
  assert.deepEqual(
    log.since(0).map((e) => e.id),
    [3, 4, 5],
  );
  assert.equal(log.oldestId, 3);
});

test("events: an event is a snapshot, not a live reference", () => {
  const log = new EventLog();
  const record = job("a");
  const event = log.emit("start", record);
  record.status = "done";
  assert.equal(event.job.status, "running");
});
