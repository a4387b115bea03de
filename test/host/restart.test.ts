/**
 * A daemon in this process (Daemon.start) restarted on the same state dir
 * lists the jobs of the one before, serves its kept events to a client
 * resuming with Last-Event-ID, and numbers new events after them. A state
 * file that refuses a write makes the API answer 503 naming the file, and
 * nothing of the refused job shows; a job's exit it refuses is retried
 * until the file takes it.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";

import type Database from "better-sqlite3";

import { ApiServer } from "../../src/host/api/server.js";
import { ProcessBackend } from "../../src/host/backends/process.js";
import { HostClient } from "../../src/host/client.js";
import { Daemon, type DaemonOptions } from "../../src/host/daemon.js";
import type { JobEvent } from "../../src/host/events.js";
import { Host } from "../../src/host/host.js";
import { PortPool } from "../../src/host/ports.js";
import { HostStore } from "../../src/host/store.js";
import { Context, MemoryLogger } from "../../src/log/index.js";
import { tempDir, waitFor } from "../helpers.js";

const dir = tempDir("lorne-restart-");
after(() => dir.remove());

function options(stateDir: string, logger: MemoryLogger): DaemonOptions {
  return {
    id: "restart-host",
    stateDir,
    listenHost: "127.0.0.1",
    listenPort: 0,
    portRange: { min: 64300, max: 64309 },
    graceMs: 2_000,
    log: new Context({ logger }),
  };
}

/** Events from `after` on, until one matches `last`. */
async function eventsUntil(
  client: HostClient,
  after: number,
  last: (event: JobEvent) => boolean,
): Promise<JobEvent[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 10_000);
  const seen: JobEvent[] = [];
  try {
    for await (const event of client.events({ after, signal: abort.signal })) {
      seen.push(event);
      if (last(event)) break;
    }
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return seen;
}

test("restart: jobs, events and their numbers carry over to the next daemon", async () => {
  const stateDir = join(dir.path, "state");
  const logger = new MemoryLogger();
  const first = await Daemon.start(options(stateDir, logger));
  let client = new HostClient(first);
  let second: Daemon | undefined;
  try {
    const quick = await client.createJob({
      id: "quick",
      config: { cmd: ["true"] },
    });
    assert.equal(quick.status, "running");
    await waitFor(
      async () => (await client.getJob("quick")).status === "done",
      "quick to end",
    );
    const sleeper = await client.createJob({
      id: "sleeper",
      metadata: { team: "web" },
      config: { cmd: ["sleep", "60"], tcp_ports: 2 },
    });
    assert.deepEqual(sleeper.ports, [64300, 64301]);
    await client.stopJob("sleeper");
    const jobs = await client.listJobs();
    const events = first.host.events.since(0);
    assert.deepEqual(
      events.map((e) => [e.id, e.event, e.job_id]),
      [
        [1, "create", "quick"],
        [2, "start", "quick"],
        [3, "stop", "quick"],
        [4, "create", "sleeper"],
        [5, "start", "sleeper"],
        [6, "stop", "sleeper"],
      ],
    );
    await first.close();

    second = await Daemon.start(options(stateDir, logger));
    client = new HostClient(second);
    assert.deepEqual(await client.listJobs(), jobs);
    assert.deepEqual(await client.getJob("sleeper"), jobs[1]);
    assert.equal((await client.host()).ports.used, 0);
    assert.deepEqual(
      logger.lines().filter((line) => line.includes("at=state_loaded")),
      [
        "host.id=restart-host fn=daemon at=state_loaded jobs=0 unfinished=0 last_event_id=0",
        "host.id=restart-host fn=daemon at=state_loaded jobs=2 unfinished=0 last_event_id=6",
      ],
    );

    // A client that saw event 2 before the restart resumes after it.
    const next = client.createJob({ id: "next", config: { cmd: ["true"] } });
    const resumed = await eventsUntil(
      client,
      2,
      (e) => e.job_id === "next" && e.event === "create",
    );
    await next;
    assert.deepEqual(resumed.slice(0, 4), events.slice(2));
    assert.deepEqual(
      resumed.slice(4).map((e) => [e.id, e.event, e.job_id]),
      [[7, "create", "next"]],
    );
  } finally {
    await first.close();
    await second?.close();
  }
});

test("restart: a state file that refuses a write makes the API answer 503 and keeps nothing", async () => {
  const stateDir = join(dir.path, "refuse");
  mkdirSync(stateDir);
  const path = join(stateDir, "host.db");
  const store = HostStore.open(path);
  const host = new Host({
    id: "h",
    stateDir,
    backend: new ProcessBackend({ stateDir }),
    ports: new PortPool({ range: { min: 64310, max: 64319 }, store }),
    log: new Context({ logger: new MemoryLogger() }),
    store,
  });
  const api = new ApiServer({
    host,
    log: new Context({ logger: new MemoryLogger() }),
    version: "test",
    token: null,
  });
  const address = await api.listen(0, "127.0.0.1");
  const url = `http://127.0.0.1:${address.port}`;
  try {
    const db = (store as unknown as { db: Database.Database }).db;
    db.pragma("query_only = ON");
    const res = await fetch(`${url}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        config: { cmd: ["sleep", "60"], tcp_ports: 1 },
      }),
    });
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), {
      code: "unavailable",
      message: `Cannot save job state to "${path}": attempt to write a readonly database`,
    });
    const client = new HostClient(url);
    assert.deepEqual(await client.listJobs(), []);
    assert.equal((await client.host()).ports.used, 0);
    assert.equal(host.events.lastId, 0);

    db.pragma("query_only = OFF");
    const job = await client.createJob({ config: { cmd: ["sleep", "60"] } });
    assert.equal(job.status, "running");
    assert.equal(host.events.lastId, 2);
  } finally {
    await host.close();
    await api.close();
    store.close();
  }
});

test("restart: an exit the state file refuses is retried until it is stored", async () => {
  const stateDir = join(dir.path, "retry");
  mkdirSync(stateDir);
  const store = HostStore.open(join(stateDir, "host.db"));
  const logger = new MemoryLogger();
  const host = new Host({
    id: "h",
    stateDir,
    backend: new ProcessBackend({ stateDir }),
    ports: new PortPool({ range: { min: 64330, max: 64339 }, store }),
    log: new Context({ logger }),
    store,
  });
  try {
    const job = await host.create({
      config: { cmd: ["sleep", "60"], tcp_ports: 1 },
    });
    const db = (store as unknown as { db: Database.Database }).db;
    db.pragma("query_only = ON");
    const stopped = host.stop(job.id);
    await waitFor(
      () => logger.lines().some((line) => line.includes("at=state_error")),
      "the refused exit to be logged",
    );
    assert.equal(host.get(job.id).status, "running");
    assert.equal(host.ports.used, 1);

    db.pragma("query_only = OFF");
    const ended = await stopped;
    assert.equal(ended.status, "stopped");
    assert.deepEqual(
      store.jobs().map((j) => j.status),
      ["stopped"],
    );
    assert.equal(host.ports.used, 0);
  } finally {
    await host.close();
    store.close();
  }
});
