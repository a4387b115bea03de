/**
 * Opening the host's state file, and refusing one that is not fit to use:
 * not SQLite, another program's database, a newer lorne's, damaged (a
 * table missing, pages cut off), unreadable, or a directory. Every check
 * only reads, and a refused file is closed untouched: the operator decides
 * what to do with it, the daemon never deletes or "repairs" it.
 */
import Database from "better-sqlite3";
import { accessSync, closeSync, constants, openSync, statSync } from "node:fs";
import { dirname } from "node:path";

import { errorMessage, LorneError, ValidationError } from "../errors.js";

/** Marks the file as lorne host state: "LORH" (PRAGMA application_id). */
export const HOST_APPLICATION_ID = 0x4c4f5248;
/** Layout version of the tables below (PRAGMA user_version). */
export const HOST_SCHEMA_VERSION = 1;

const TABLES = ["jobs", "events", "ports"] as const;

// AUTOINCREMENT: job order and event numbers never reuse a value, even
// after rows are deleted (sqlite_sequence remembers the highest).
const SCHEMA = `
  CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    record TEXT NOT NULL
  );
  CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    job_id TEXT NOT NULL,
    time TEXT NOT NULL,
    job TEXT NOT NULL
  );
  CREATE TABLE ports (
    port INTEGER PRIMARY KEY NOT NULL,
    job_id TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX ports_by_job ON ports (job_id);
  PRAGMA application_id = ${HOST_APPLICATION_ID};
  PRAGMA user_version = ${HOST_SCHEMA_VERSION};
`;

// Settings of the state itself, e.g. which event log this is.
const META_TABLE = `
  CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
  ) WITHOUT ROWID
`;

/**
 * Opens `path` (or ":memory:") as lorne host state, creating the tables in
 * a new file. Throws ValidationError (field `state`) for a file that is
 * not usable lorne host state, LorneError (`unavailable`) when the file
 * cannot be opened or read.
 */
export function openDatabase(path: string): Database.Database {
  const inMemory = path === ":memory:";
  if (!inMemory) checkPlace(path);
  let db: Database.Database;
  try {
    db = new Database(path, { timeout: 5_000 });
  } catch (err) {
    throw openError(path, err);
  }
  try {
    const isNew = checkOwner(db, path);
    if (!isNew) checkIntact(db, path);
    if (!inMemory) db.pragma("journal_mode = WAL");
    // FULL: in WAL mode each commit syncs the log, so a record the API
    // has answered with survives a power loss, not only a crash.
    db.pragma("synchronous = FULL");
    if (isNew) db.exec(`BEGIN IMMEDIATE; ${SCHEMA} COMMIT`);
    // Added after schema version 1, without a new version: older files
    // get it here, and an older lorne reading a newer file ignores it.
    db.exec(META_TABLE);
    return db;
  } catch (err) {
    db.close();
    throw openError(path, err);
  }
}

// The directory must exist (lockStateDir made it), the path must not be a
// directory, and a file there must be readable and writable.
function checkPlace(path: string): void {
  const dir = dirname(path);
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw refused(path, `directory "${dir}" does not exist`);
  }
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat === undefined) {
    // Owner-only: job commands, env and metadata are in it. SQLite gives
    // its WAL and shared-memory files the same mode.
    closeSync(openSync(path, "wx", 0o600));
    return;
  }
  if (stat.isDirectory()) throw refused(path, "it is a directory");
  if (!stat.isFile()) throw refused(path, "it is not a regular file");
  // SQLite would take an empty file as a new database and forget every
  // job: a file emptied by accident must not pass for a fresh start.
  if (stat.size === 0) {
    throw refused(
      path,
      "it is empty (0 bytes); remove it to start with no state",
    );
  }
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
  } catch (err) {
    throw new LorneError(
      "unavailable",
      `Cannot open host state "${path}": ${errorMessage(err)}`,
      { cause: err },
    );
  }
}

// Whether the database is new and empty; throws if it is not ours.
function checkOwner(db: Database.Database, path: string): boolean {
  const appId = db.pragma("application_id", { simple: true }) as number;
  const version = db.pragma("user_version", { simple: true }) as number;
  const names = (
    db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all() as {
      name: string;
    }[]
  ).map((row) => row.name);
  if (appId === 0 && version === 0 && names.length === 0) return true;

  if (appId !== HOST_APPLICATION_ID) {
    throw refused(
      path,
      "it is an SQLite database of another program, not lorne host state",
    );
  }
  if (version > HOST_SCHEMA_VERSION) {
    throw refused(
      path,
      `it is lorne host state of a newer lorne (schema version ${version}; ` +
        `this one reads ${HOST_SCHEMA_VERSION})`,
    );
  }
  if (version !== HOST_SCHEMA_VERSION) {
    throw refused(
      path,
      `it is lorne host state with an unknown schema version ${version}`,
    );
  }
  const missing = TABLES.filter((table) => !names.includes(table));
  if (missing.length > 0) {
    throw refused(
      path,
      `it is damaged lorne host state: table ${missing.join(", ")} is missing`,
    );
  }
  return false;
}

// The whole file is readable and consistent (a cut-off copy is not).
function checkIntact(db: Database.Database, path: string): void {
  const rows = db.pragma("quick_check(5)") as { quick_check: string }[];
  const problems = rows.map((row) => row.quick_check);
  if (problems.length === 1 && problems[0] === "ok") return;
  throw refused(path, `it is damaged lorne host state: ${problems.join("; ")}`);
}

function refused(path: string, why: string): ValidationError {
  return new ValidationError(
    `Cannot open host state "${path}": ${why}`,
    "state",
  );
}

function openError(path: string, err: unknown): LorneError {
  if (err instanceof LorneError) return err;
  const code = (err as { code?: unknown }).code;
  if (code === "SQLITE_NOTADB") {
    return new ValidationError(
      `Cannot open host state "${path}": it is not an SQLite database`,
      "state",
      { cause: err },
    );
  }
  if (code === "SQLITE_CORRUPT") {
    return new ValidationError(
      `Cannot open host state "${path}": it is damaged: ${errorMessage(err)}`,
      "state",
      { cause: err },
    );
  }
  return new LorneError(
    "unavailable",
    `Cannot open host state "${path}": ${errorMessage(err)}`,
    { cause: err },
  );
}
