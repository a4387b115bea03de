/**
 * The host store on real SQLite files: records, events and port holdings
 * survive close and reopen; event numbers never repeat; files that are not
 * usable lorne host state are refused with the path and the reason and are
 * left byte for byte as they were; a failed write leaves the job table,
 * the event log and the port pool as they were.
 */
import assert from "node:assert/strict";
import {
  statSync,
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";

import Database from "better-sqlite3";

import { LorneError, ValidationError } from "../../src/errors.js";
import { EventLog, type JobEvent } from "../../src/host/events.js";
import type { JobRecord } from "../../src/host/job.js";
import { PortPool } from "../../src/host/ports.js";
import { JobTable } from "../../src/host/state.js";
import { HostStore } from "../../src/host/store.js";
import {
  HOST_APPLICATION_ID,
  HOST_SCHEMA_VERSION,
} from "../../src/host/store-open.js";
import { tempDir } from "../helpers.js";

const dir = tempDir("lorne-store-");
after(() => dir.remove());
let count = 0;

/** A path for a new state file in a directory of its own. */
function statePath(): string {
  const sub = join(dir.path, `s${++count}`);
  mkdirSync(sub);
  return join(sub, "host.db");
}

/** The store's connection, to check its settings or make SQLite fail. */
function sqlite(store: HostStore): Database.Database {
  return store["db"];
}

/** A job table, event log and port pool on one store, as the host has. */
function parts(store: HostStore, history = 100) {
  const events = new EventLog({ store, history });
  const jobs = new JobTable("h", events, store);
  const ports = new PortPool({
    range: { min: 100, max: 109 },
    probe: false,
    store,
  });
  return { events, jobs, ports };
}

const spec = { config: { cmd: ["sleep", "60"] } };

test("store: jobs, events and ports survive close and reopen", async () => {
  const path = statePath();
  const store = HostStore.open(path);
  const first = parts(store);
  first.jobs.add("a", spec, []);
  first.jobs.add("b", spec, []);
  const ports = await first.ports.allocateFor("b", 2);
  first.jobs.setPorts("b", ports);
  first.jobs.setRunning("b", 4242);
  first.jobs.setPid("b", 4343);
  first.jobs.setRunning("a", 11);
  first.jobs.setExited("a", { exitStatus: 0, signal: null }, false);
  const records = first.jobs.list();
  const events = first.events.since(0);
  store.close();
  store.close();

  const again = HostStore.open(path);
  const second = parts(again);
  assert.deepEqual(second.jobs.list(), records);
  assert.deepEqual(
    records.map((j) => [j.id, j.status, j.pid, j.ports]),
    [
      ["a", "done", 11, []],
      ["b", "running", 4343, [100, 101]],
    ],
  );
  assert.deepEqual(
    second.jobs.unfinished().map((j) => j.id),
    ["b"],
  );
  assert.deepEqual(second.events.since(0), events);
  assert.deepEqual(
    events.map((e) => [e.id, e.event, e.job_id]),
    [
      [1, "create", "a"],
      [2, "create", "b"],
      [3, "start", "b"],
      [4, "start", "a"],
      [5, "stop", "a"],
    ],
  );
  assert.equal(second.events.lastId, 5);
  assert.deepEqual([...second.ports.heldBy()], [["b", [100, 101]]]);
  assert.equal(second.ports.used, 2);
  // Held ports are not handed out again.
  assert.deepEqual(await second.ports.allocateFor("c", 1), [102]);
  second.ports.releaseJob("b");
  assert.deepEqual([...again.ports()], [[102, "c"]]);
  again.close();
});

test("store: runs WAL, synchronous FULL, and marks the file as lorne host state", () => {
  const store = HostStore.open(statePath());
  const pragma = (name: string): unknown =>
    sqlite(store).pragma(name, { simple: true });
  assert.deepEqual(
    [
      pragma("journal_mode"),
      pragma("synchronous"),
      pragma("application_id"),
      pragma("user_version"),
    ],
    ["wal", 2, HOST_APPLICATION_ID, HOST_SCHEMA_VERSION],
  );
  store.close();
});

test("store: event numbers go on after old events are dropped and after a reopen", () => {
  const path = statePath();
  const store = HostStore.open(path);
  const first = parts(store, 3);
  for (let i = 0; i < 5; i++) first.jobs.add(`j${i}`, spec, []);
  assert.deepEqual(
    first.events.since(0).map((e) => e.id),
    [3, 4, 5],
  );
  store.close();

  // A smaller history than the file keeps: only the newest are loaded.
  const again = HostStore.open(path);
  const second = parts(again, 2);
  assert.equal(second.events.oldestId, 4);
  const seen: number[] = [];
  second.events.subscribe((e) => seen.push(e.id), {}, 3);
  second.jobs.add("next", spec, []);
  assert.deepEqual(seen, [4, 5, 6]);
  again.close();

  // Dropping every kept event does not bring the numbers back to 1.
  const raw = new Database(path);
  raw.exec("DELETE FROM events");
  raw.close();
  const third = HostStore.open(path);
  assert.equal(parts(third).jobs.add("last", spec, []).id, "last");
  assert.deepEqual(
    third.events(10).map((e) => e.id),
    [7],
  );
  third.close();
});

test("store: an ended job of an earlier daemon may be replaced; others may not", () => {
  const path = statePath();
  const store = HostStore.open(path);
  const first = parts(store);
  first.jobs.add("web", spec, []);
  first.jobs.setFailed("web", "no");
  first.jobs.add("db", spec, []);
  assert.throws(() => first.jobs.add("web", spec, []), {
    message: 'Cannot create job "web": it exists already',
  });
  store.close();

  const again = HostStore.open(path);
  const second = parts(again);
  assert.throws(() => second.jobs.add("db", spec, []), {
    message: 'Cannot create job "db": it exists already',
  });
  second.jobs.add("web", spec, []);
  // The new record takes the old one's place, at the end of the order.
  assert.deepEqual(
    second.jobs.list().map((j) => [j.id, j.status]),
    [
      ["db", "starting"],
      ["web", "starting"],
    ],
  );
  assert.throws(() => second.jobs.add("web", spec, []), {
    message: 'Cannot create job "web": it exists already',
  });
  again.close();
  const third = HostStore.open(path);
  assert.deepEqual(
    third.jobs().map((j) => [j.id, j.status]),
    [
      ["db", "starting"],
      ["web", "starting"],
    ],
  );
  third.close();
});

test("store: a removed ended job is gone after a reopen and its id is free; an active one is refused", () => {
  const path = statePath();
  const store = HostStore.open(path);
  const first = parts(store);
  first.jobs.add("old", spec, []);
  first.jobs.setFailed("old", "no");
  first.jobs.add("live", spec, []);
  assert.throws(() => first.jobs.remove("live"), {
    code: "conflict",
    message: 'Cannot remove job "live": it is starting; stop it first',
  });
  assert.throws(() => first.jobs.remove("nope"), {
    code: "not_found",
    message: 'Job "nope" not found',
  });
  assert.equal(first.jobs.remove("old").status, "failed");
  assert.deepEqual(
    first.jobs.list().map((j) => j.id),
    ["live"],
  );
  // The id is free at once, in this daemon too.
  first.jobs.add("old", spec, []);
  first.jobs.setFailed("old", "again");
  first.jobs.remove("old");
  store.close();

  const again = HostStore.open(path);
  assert.deepEqual(
    again.jobs().map((j) => [j.id, j.status]),
    [["live", "starting"]],
  );
  again.close();
});

/** Makes a file at `path` that is not usable lorne host state. */
type Maker = (path: string) => void;

function validState(path: string): void {
  const store = HostStore.open(path);
  const { jobs } = parts(store);
  for (let i = 0; i < 200; i++) {
    jobs.add(`job-${i}`, { ...spec, metadata: { pad: "x".repeat(400) } }, []);
  }
  store.close();
}

function sqliteFile(path: string, sql: string): void {
  const db = new Database(path);
  db.exec(sql);
  db.close();
}

const REFUSED: [string, Maker, string][] = [
  [
    "an emptied state file",
    (path) => {
      validState(path);
      truncateSync(path, 0);
    },
    "it is empty (0 bytes); remove it to start with no state",
  ],
  [
    "garbage bytes",
    (path) => writeFileSync(path, Buffer.alloc(8192, 0x5a)),
    "it is not an SQLite database",
  ],
  [
    "a state file cut off half way",
    (path) => {
      validState(path);
      truncateSync(path, readFileSync(path).length / 2);
    },
    "it is damaged: database disk image is malformed",
  ],
  [
    "a state file cut off inside its header",
    (path) => {
      validState(path);
      truncateSync(path, 50);
    },
    "it is damaged: database disk image is malformed",
  ],
  [
    "another program's database",
    (path) => sqliteFile(path, "CREATE TABLE t (x); PRAGMA user_version = 1"),
    "it is an SQLite database of another program, not lorne host state",
  ],
  [
    "lorne ship's offsets file",
    (path) =>
      sqliteFile(
        path,
        "CREATE TABLE offsets (x); PRAGMA application_id = 1280266830",
      ),
    "it is an SQLite database of another program, not lorne host state",
  ],
  [
    "a newer lorne's state",
    (path) => {
      validState(path);
      sqliteFile(path, "PRAGMA user_version = 2");
    },
    "it is lorne host state of a newer lorne (schema version 2; this one reads 1)",
  ],
  [
    "state without its ports table",
    (path) => {
      validState(path);
      sqliteFile(path, "DROP TABLE ports");
    },
    "it is damaged lorne host state: table ports is missing",
  ],
];

for (const [name, make, why] of REFUSED) {
  test(`store: refuses ${name}, naming the path, and leaves it as it was`, () => {
    const path = statePath();
    make(path);
    const before = readFileSync(path);
    const files = readdirSync(join(path, ".."));
    assert.throws(
      () => HostStore.open(path),
      (err) =>
        err instanceof ValidationError &&
        err.field === "state" &&
        err.message === `Cannot open host state "${path}": ${why}`,
    );
    assert.deepEqual(readFileSync(path), before);
    assert.deepEqual(readdirSync(join(path, "..")), files);
  });
}

test("store: a new state file is the owner's only, and so are its WAL files", () => {
  const path = statePath();
  const store = HostStore.open(path);
  try {
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      assert.equal(statSync(file).mode & 0o777, 0o600, file);
    }
  } finally {
    store.close();
  }
});

test("store: refuses a directory at its path", () => {
  const path = statePath();
  mkdirSync(path);
  writeFileSync(join(path, "keep"), "x");
  assert.throws(() => HostStore.open(path), {
    message: `Cannot open host state "${path}": it is a directory`,
  });
  assert.deepEqual(readdirSync(path), ["keep"]);
});

test(
  "store: refuses a file it may not read, naming the path",
  // root reads every file whatever its mode.
  { skip: process.getuid?.() === 0 && "runs as root" },
  () => {
    const path = statePath();
    validState(path);
    chmodSync(path, 0o000);
    assert.throws(
      () => HostStore.open(path),
      (err) =>
        err instanceof LorneError &&
        err.code === "unavailable" &&
        err.message.startsWith(`Cannot open host state "${path}": EACCES`),
    );
  },
);

test("store: a copy made with the file in use opens with everything in it", () => {
  const path = statePath();
  const store = HostStore.open(path);
  parts(store).jobs.add("kept", spec, []);
  const copy = join(dir.path, `backup-${count}.db`);
  // What `sqlite3 host.db ".backup copy"` does, while the daemon runs.
  const reader = new Database(path, { readonly: true });
  return reader.backup(copy).then(() => {
    reader.close();
    store.close();
    const restored = HostStore.open(copy);
    assert.deepEqual(
      restored.jobs().map((j) => j.id),
      ["kept"],
    );
    restored.close();
  });
});

test("store: a write that fails leaves jobs, events and ports as they were", async () => {
  const path = statePath();
  const store = HostStore.open(path);
  const { jobs, events, ports } = parts(store);
  jobs.add("a", spec, []);
  const seen: JobEvent[] = [];
  events.subscribe((e) => seen.push(e));
  const before: JobRecord[] = jobs.list();

  // The file may not grow: any write that needs a new page fails.
  const db = sqlite(store);
  const pages = db.pragma("page_count", { simple: true }) as number;
  db.pragma(`max_page_count = ${pages}`);
  const big = { ...spec, metadata: { pad: "x".repeat(60_000) } };
  const full = (err: unknown) =>
    err instanceof LorneError &&
    err.code === "unavailable" &&
    err.message ===
      `Cannot save job state to "${path}": database or disk is full` &&
    (err.cause as { code?: string }).code === "SQLITE_FULL";
  assert.throws(() => jobs.add("b", big, []), full);

  // Now every write fails, as on a file that turned read-only.
  db.pragma("query_only = ON");
  assert.throws(
    () => jobs.setRunning("a", 1),
    (err) =>
      err instanceof LorneError &&
      err.message ===
        `Cannot save job state to "${path}": attempt to write a readonly database`,
  );
  await assert.rejects(
    ports.allocateFor("a", 2),
    (err) => err instanceof LorneError && err.code === "unavailable",
  );
  assert.deepEqual(jobs.list(), before);
  assert.equal(events.lastId, 1);
  assert.equal(seen.length, 0);
  assert.equal(ports.used, 0);

  // Once writes work again, so do the same changes.
  db.pragma("query_only = OFF");
  db.pragma("max_page_count = 1073741823");
  jobs.setRunning("a", 1);
  jobs.add("b", big, []);
  // Round robin: the failed allocation's ports come round again later.
  assert.deepEqual(await ports.allocateFor("a", 2), [102, 103]);
  assert.deepEqual(
    [...store.ports()],
    [
      [102, "a"],
      [103, "a"],
    ],
  );
  assert.deepEqual(
    seen.map((e) => [e.id, e.event, e.job_id]),
    [
      [2, "start", "a"],
      [3, "create", "b"],
    ],
  );
  store.close();
});

test("store: a job's start time is the backend's when it gives one, and its end is never before it", () => {
  const { jobs } = parts(HostStore.memory());
  jobs.add("early", spec, []);
  // The shim spawned the job before the host heard of it.
  const spawned = "2026-01-01T00:00:00.100Z";
  assert.equal(jobs.setRunning("early", 1, spawned).started_at, spawned);
  const ended = jobs.setExited(
    "early",
    { exitStatus: 0, signal: null, endedAt: "2026-01-01T00:00:00.150Z" },
    false,
  );
  assert.equal(ended.ended_at, "2026-01-01T00:00:00.150Z");

  // An end stamped by a clock a little behind the start's.
  jobs.add("skewed", spec, []);
  const started = jobs.setRunning("skewed", 2).started_at as string;
  const before = new Date(Date.parse(started) - 7).toISOString();
  const record = jobs.setExited(
    "skewed",
    { exitStatus: 0, signal: null, endedAt: before },
    false,
  );
  assert.equal(record.ended_at, started);
});

test("store: the event log id stays with the file, is new for a new one, and comes to a file made before it", () => {
  const path = statePath();
  const first = HostStore.open(path);
  const id = first.eventLogId();
  assert.match(id, /^[0-9a-f]{16}$/);
  assert.equal(first.eventLogId(), id);
  first.close();
  const again = HostStore.open(path);
  assert.equal(again.eventLogId(), id, "the same after a reopen");
  // A file of an earlier lorne has no meta table: it gets one, and an id.
  sqlite(again).exec("DROP TABLE meta");
  again.close();
  const older = HostStore.open(path);
  assert.match(older.eventLogId(), /^[0-9a-f]{16}$/);
  assert.notEqual(older.eventLogId(), id);
  older.close();
  assert.notEqual(
    HostStore.memory().eventLogId(),
    HostStore.memory().eventLogId(),
    "each memory store is a log of its own",
  );
});
