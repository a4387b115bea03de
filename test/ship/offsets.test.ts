/**
 * The offsets store on real SQLite files: round trips, one transaction per
 * commit (a failing commit saves nothing), touch/remove/expire, durability
 * across SIGKILL of a child process, the exclusive lock, and refusals of
 * files that are not lorne ship state.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";

import Database from "better-sqlite3";

import {
  ConflictError,
  LorneError,
  ValidationError,
} from "../../src/errors.js";
import {
  APPLICATION_ID,
  OffsetStore,
  type OffsetEntry,
} from "../../src/ship/offsets.js";
import { ROOT, tempDir, waitFor } from "../helpers.js";

const FIXTURE = join(ROOT, "test/ship/fixtures/offsets-child.ts");
const dir = tempDir("lorne-offsets-");
after(() => dir.remove());
let count = 0;

/** A path for a new state file in the temp dir. */
function statePath(): string {
  return join(dir.path, `state-${++count}.db`);
}

function entry(n: number, overrides: Partial<OffsetEntry> = {}): OffsetEntry {
  return {
    key: `2049:${n}`,
    path: `/var/log/file-${n}.log`,
    offset: n * 100,
    fingerprint: { length: 1024, hash: `${n}`.padStart(64, "0") },
    seenMs: 1_700_000_000_000 + n,
    ...overrides,
  };
}

/** The store's connection, to check its settings or make SQLite fail. */
function sqlite(store: OffsetStore): Database.Database {
  return store["db"];
}

/** Whether `err` is `type` with exactly this message (and field). */
function is(
  type: new (...args: never[]) => LorneError,
  message: string,
  field?: string,
) {
  return (err: unknown) =>
    err instanceof type &&
    err.message === message &&
    (field === undefined || (err as ValidationError).field === field);
}

test("offsets: entries round trip and survive close and reopen", () => {
  const path = statePath();
  const store = OffsetStore.open(path);
  assert.deepEqual(store.all(), []);
  assert.equal(store.get("2049:1"), undefined);

  store.commit([entry(2), entry(1), entry(3)]);
  assert.deepEqual(store.get("2049:2"), entry(2));
  // An upsert replaces every field of its key.
  const moved = entry(2, {
    path: "/var/log/file-2.log.1",
    offset: 12_345_678_901,
    fingerprint: { length: 17, hash: "f".repeat(64) },
    seenMs: 5,
  });
  store.commit([moved]);
  assert.deepEqual(store.all(), [entry(1), moved, entry(3)]);
  store.close();
  store.close();

  const again = OffsetStore.open(path);
  assert.deepEqual(again.all(), [entry(1), moved, entry(3)]);
  again.close();
});

test("offsets: the store runs WAL, synchronous NORMAL and an exclusive lock", () => {
  const store = OffsetStore.open(statePath());
  const db = sqlite(store);
  const pragma = (name: string): unknown => db.pragma(name, { simple: true });
  assert.deepEqual(
    [
      pragma("journal_mode"),
      pragma("synchronous"),
      pragma("locking_mode"),
      pragma("application_id"),
      pragma("user_version"),
    ],
    ["wal", 1, "exclusive", APPLICATION_ID, 1],
  );
  store.close();
});

test("offsets: one commit saves many entries, or none of them", () => {
  const path = statePath();
  const store = OffsetStore.open(path);
  const many = Array.from({ length: 1000 }, (_, n) => entry(n));
  store.commit(many);
  assert.equal(store.all().length, 1000);
  assert.deepEqual(store.get("2049:999"), entry(999));

  // A bad entry at the end: the good ones before it are not saved.
  assert.throws(
    () => store.commit([entry(5000), entry(5001, { offset: -1 })]),
    is(
      ValidationError,
      `Cannot save offsets to "${path}": entries[1].offset must be a non-negative integer, got -1`,
      "entries[1].offset",
    ),
  );
  assert.throws(
    () => store.commit([entry(5000, { seenMs: Number.NaN })]),
    is(
      ValidationError,
      `Cannot save offsets to "${path}": entries[0].seenMs must be a non-negative integer, got NaN`,
      "entries[0].seenMs",
    ),
  );
  assert.equal(store.get("2049:5000"), undefined);

  // SQLite fails part way through (the file may not grow): the whole
  // batch is rolled back and the error says why, with the cause chained.
  const db = sqlite(store);
  const pages = db.pragma("page_count", { simple: true }) as number;
  db.pragma(`max_page_count = ${pages + 2}`);
  const big = Array.from({ length: 2000 }, (_, n) =>
    entry(10_000 + n, { path: `/var/log/${"long/".repeat(40)}${n}.log` }),
  );
  assert.throws(
    () => store.commit(big),
    (err) =>
      is(
        LorneError,
        `Cannot save offsets to "${path}": database or disk is full`,
      )(err) &&
      (err as LorneError).code === "unavailable" &&
      ((err as LorneError).cause as { code: string }).code === "SQLITE_FULL",
  );
  assert.equal(store.get("2049:10000"), undefined);
  assert.equal(store.all().length, 1000);

  db.pragma("max_page_count = 1073741823");
  store.commit(big);
  assert.equal(store.all().length, 3000);
  store.close();
});

test("offsets: touch, remove and expire", () => {
  const store = OffsetStore.open(statePath());
  store.commit([
    entry(1, { seenMs: 100 }),
    entry(2, { seenMs: 200 }),
    entry(3, { seenMs: 250 }),
    entry(4, { seenMs: 300 }),
  ]);

  store.touch(["2049:1", "2049:404"], 400);
  assert.deepEqual(store.get("2049:1"), entry(1, { seenMs: 400 }));
  assert.equal(store.get("2049:404"), undefined);

  // Older than 350 - 100 = 250; exactly 250 stays.
  assert.deepEqual(store.expire(100, 350), ["2049:2"]);
  assert.deepEqual(store.expire(0, 301), ["2049:3", "2049:4"]);
  assert.deepEqual(store.expire(0, 301), []);

  store.remove(["2049:1", "2049:404"]);
  assert.deepEqual(store.all(), []);
  store.close();
});

test("offsets: a closed store says so", () => {
  const path = statePath();
  const store = OffsetStore.open(path);
  store.close();
  const closed = (action: string) =>
    is(LorneError, `Cannot ${action} "${path}": the store is closed`);
  assert.throws(() => store.get("x"), closed("read offsets from"));
  assert.throws(() => store.commit([entry(1)]), closed("save offsets to"));
  assert.throws(() => store.expire(1, 2), closed("save offsets to"));
});

test("offsets: commits survive a SIGKILL of the process that made them", async () => {
  const path = statePath();
  const child = spawn(
    process.execPath,
    ["--import", "tsx", FIXTURE, path, "100"],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.once("exit", (_code, signal) => resolve(signal)),
  );
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  try {
    await waitFor(() => output.includes("committed 100"), "the commits");
    // The commits sit in the WAL, not yet checkpointed into the file.
    assert.ok(existsSync(`${path}-wal`));

    assert.throws(
      () => OffsetStore.open(path),
      is(
        ConflictError,
        `Cannot open state "${path}": in use by another lorne ship`,
      ),
    );
  } finally {
    child.kill("SIGKILL");
  }
  assert.equal(await exited, "SIGKILL");

  const store = OffsetStore.open(path);
  const want = Array.from({ length: 10 }, (_, j) => ({
    key: `1:${j}`,
    path: `/var/log/app-${j}.log`,
    offset: (90 + j) * 10,
    fingerprint: { length: 4, hash: `hash-${90 + j}` },
    seenMs: 1_000 + 90 + j,
  }));
  assert.deepEqual(store.all(), want);
  store.close();
});

test("offsets: a second opener in the same process is refused", () => {
  const path = statePath();
  const first = OffsetStore.open(path);
  first.commit([entry(1)]);
  assert.throws(
    () => OffsetStore.open(path),
    is(
      ConflictError,
      `Cannot open state "${path}": in use by another lorne ship`,
    ),
  );
  first.close();
  const second = OffsetStore.open(path);
  assert.deepEqual(second.all(), [entry(1)]);
  second.close();
});

test("offsets: refuses files that are not lorne ship state", () => {
  const text = statePath();
  const content = "this is a log file, not a database\n".repeat(100);
  writeFileSync(text, content);
  assert.throws(
    () => OffsetStore.open(text),
    is(
      ValidationError,
      `Cannot open state "${text}": it is not an SQLite database`,
      "state",
    ),
  );
  assert.equal(readFileSync(text, "utf8"), content);

  const foreign = statePath();
  const other = new Database(foreign);
  other.exec("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)");
  other.close();
  const before = readFileSync(foreign);
  assert.throws(
    () => OffsetStore.open(foreign),
    is(
      ValidationError,
      `Cannot open state "${foreign}": it is an SQLite database of another program, not lorne ship state`,
      "state",
    ),
  );
  assert.deepEqual(readFileSync(foreign), before);

  const versions: [number, string][] = [
    [
      2,
      "lorne ship state of a newer lorne (schema version 2; this one reads 1)",
    ],
    [0, "lorne ship state with an unknown schema version 0"],
  ];
  for (const [version, what] of versions) {
    const path = statePath();
    OffsetStore.open(path).close();
    const db = new Database(path);
    db.pragma(`user_version = ${version}`);
    db.close();
    assert.throws(
      () => OffsetStore.open(path),
      is(
        ValidationError,
        `Cannot open state "${path}": it is ${what}`,
        "state",
      ),
    );
  }

  // An empty file is a new database.
  const empty = statePath();
  writeFileSync(empty, "");
  const store = OffsetStore.open(empty);
  store.commit([entry(1)]);
  store.close();
});

test("offsets: a missing directory or a directory path is named", () => {
  const missing = join(dir.path, "no-such-dir", "state.db");
  assert.throws(
    () => OffsetStore.open(missing),
    is(
      ValidationError,
      `Cannot open state "${missing}": directory "${join(dir.path, "no-such-dir")}" does not exist`,
      "state",
    ),
  );
  assert.equal(existsSync(join(dir.path, "no-such-dir")), false);

  const isDir = join(dir.path, "a-directory");
  mkdirSync(isDir);
  assert.throws(
    () => OffsetStore.open(isDir),
    is(
      ValidationError,
      `Cannot open state "${isDir}": it is a directory`,
      "state",
    ),
  );
});

test("offsets: lorne ship state without its table is refused, unchanged", () => {
  const path = statePath();
  const db = new Database(path);
  db.pragma(`application_id = ${APPLICATION_ID}`);
  db.pragma("user_version = 1");
  db.exec("CREATE TABLE other (x)");
  db.close();
  const before = readFileSync(path);
  const looks = [
    (p: string) => OffsetStore.open(p),
    (p: string) => OffsetStore.check(p),
  ];
  for (const look of looks) {
    assert.throws(
      () => look(path),
      is(
        ValidationError,
        `Cannot open state "${path}": it is lorne ship state without its offsets table (damaged)`,
        "state",
      ),
    );
  }
  assert.deepEqual(readFileSync(path), before);
});

test("offsets: check() looks without changing anything", () => {
  const fresh = statePath();
  OffsetStore.check(fresh); // absent: it would be created
  assert.equal(existsSync(fresh), false);

  const ours = statePath();
  const store = OffsetStore.open(ours);
  store.commit([entry(1)]);
  OffsetStore.check(ours); // in use by a running shipper: still fine
  store.close();
  const before = readFileSync(ours);
  OffsetStore.check(ours);
  assert.deepEqual(readFileSync(ours), before);

  const text = statePath();
  writeFileSync(text, "not a database\n".repeat(100));
  assert.throws(
    () => OffsetStore.check(text),
    is(
      ValidationError,
      `Cannot open state "${text}": it is not an SQLite database`,
      "state",
    ),
  );
  const missing = join(dir.path, "nowhere", "state.db");
  assert.throws(
    () => OffsetStore.check(missing),
    is(
      ValidationError,
      `Cannot open state "${missing}": directory "${join(dir.path, "nowhere")}" does not exist`,
      "state",
    ),
  );
});
