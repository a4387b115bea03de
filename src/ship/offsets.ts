/**
 * The shipper's durable offsets: for each file, by identity, how far its
 * lines have been acknowledged, with the fingerprint that proves the bytes
 * before that offset are still the ones shipped.
 *
 * One SQLite file (better-sqlite3), in WAL mode with synchronous=NORMAL: a
 * commit survives the process being killed (SIGKILL); a power loss can lose
 * only the newest commits, which means lines sent again, never lines lost.
 * The connection holds an exclusive lock for its lifetime, so a second
 * shipper on the same file is refused instead of racing the first. The
 * file carries an application id and a schema version, so a file of
 * another program is never written to.
 */
import Database from "better-sqlite3";
import { statSync } from "node:fs";
import { dirname } from "node:path";

import {
  ConflictError,
  errorMessage,
  LorneError,
  ValidationError,
} from "../errors.js";
import { runSqlite } from "../sqlite.js";
import type { Fingerprint } from "./identity.js";

/** Marks the file as lorne ship state: "LORN" (PRAGMA application_id). */
export const APPLICATION_ID = 0x4c4f524e;
/** Layout version of the tables below (PRAGMA user_version). */
export const SCHEMA_VERSION = 1;

const SCHEMA = `
  CREATE TABLE offsets (
    key TEXT PRIMARY KEY NOT NULL,
    path TEXT NOT NULL,
    byte_offset INTEGER NOT NULL,
    fingerprint_length INTEGER NOT NULL,
    fingerprint_hash TEXT NOT NULL,
    seen_ms INTEGER NOT NULL
  ) WITHOUT ROWID;
  PRAGMA application_id = ${APPLICATION_ID};
  PRAGMA user_version = ${SCHEMA_VERSION};
`;

const COLUMNS = `key, path, byte_offset, fingerprint_length, fingerprint_hash,
  seen_ms`;

/** Where one file's acknowledged lines end. */
export interface OffsetEntry {
  /** FileIdentity.key: "dev:ino". */
  key: string;
  /** The path the file was last read at. */
  path: string;
  /** Byte offset after the last acknowledged (or skipped) line. */
  offset: number;
  fingerprint: Fingerprint;
  /** When the file was last seen on disk (ms since the epoch). */
  seenMs: number;
}

interface Row {
  key: string;
  path: string;
  byte_offset: number;
  fingerprint_length: number;
  fingerprint_hash: string;
  seen_ms: number;
}

type Statements = ReturnType<typeof prepare>;

/** Durable offsets in one SQLite file; see module comment. */
export class OffsetStore {
  /** The state file's path. */
  readonly path: string;
  // TS-private rather than #private: tests reach it to make SQLite fail.
  private readonly db: Database.Database;
  readonly #statements: Statements;
  readonly #commit: (entries: readonly OffsetEntry[]) => void;
  readonly #touch: (keys: readonly string[], nowMs: number) => void;
  readonly #remove: (keys: readonly string[]) => void;

  private constructor(path: string, db: Database.Database) {
    this.path = path;
    this.db = db;
    const s = prepare(db);
    this.#statements = s;
    this.#commit = db.transaction((entries: readonly OffsetEntry[]) => {
      for (const e of entries) {
        s.upsert.run(
          e.key,
          e.path,
          e.offset,
          e.fingerprint.length,
          e.fingerprint.hash,
          e.seenMs,
        );
      }
    });
    this.#touch = db.transaction((keys: readonly string[], nowMs: number) => {
      for (const key of keys) s.touch.run(nowMs, key);
    });
    this.#remove = db.transaction((keys: readonly string[]) => {
      for (const key of keys) s.remove.run(key);
    });
  }

  /**
   * Opens (or creates) the state file at `path`; its directory must exist.
   * Throws ValidationError (field `state`) when the directory is missing or
   * the file is not lorne ship state, ConflictError when another process
   * holds it, LorneError (`unavailable`) for other SQLite failures.
   */
  static open(path: string): OffsetStore {
    checkPlace(path);
    let db: Database.Database;
    try {
      // timeout 0: a locked file fails at once rather than after a wait.
      db = new Database(path, { timeout: 0 });
    } catch (err) {
      throw openError(path, err);
    }
    try {
      db.pragma("locking_mode = EXCLUSIVE");
      const isNew = checkOwner(db, path);
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      // A write takes the exclusive lock now and holds it until close.
      db.exec(`BEGIN IMMEDIATE; ${isNew ? SCHEMA : ""} COMMIT`);
      return new OffsetStore(path, db);
    } catch (err) {
      db.close();
      throw openError(path, err);
    }
  }

  /**
   * Checks, without changing anything, that `path` could be opened: its
   * directory exists, and the file, if there is one, is lorne ship state
   * (one in use by a running shipper counts as such). For `--check`.
   */
  static check(path: string): void {
    checkPlace(path);
    if (!statSync(path, { throwIfNoEntry: false })) return;
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true });
      checkOwner(db, path);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") return;
      throw openError(path, err);
    } finally {
      db?.close();
    }
  }

  /** The entry for one file identity, if saved. */
  get(key: string): OffsetEntry | undefined {
    return this.#run("read offsets from", () => {
      const row = this.#statements.get.get(key) as Row | undefined;
      return row === undefined ? undefined : toEntry(row);
    });
  }

  /** Every saved entry, by key. */
  all(): OffsetEntry[] {
    return this.#run("read offsets from", () =>
      (this.#statements.all.all() as Row[]).map(toEntry),
    );
  }

  /**
   * Saves all entries in one transaction (upsert by key): all or none.
   * Called once per acknowledged batch.
   */
  commit(entries: readonly OffsetEntry[]): void {
    this.#run("save offsets to", () => {
      entries.forEach((entry, i) => checkEntry(entry, i, this.path));
      this.#commit(entries);
    });
  }

  /** Marks keys as still present (sets seenMs) without moving offsets. */
  touch(keys: readonly string[], nowMs: number): void {
    this.#run("save offsets to", () => this.#touch(keys, nowMs));
  }

  /** Forgets the entries of these keys; unknown keys are ignored. */
  remove(keys: readonly string[]): void {
    this.#run("save offsets to", () => this.#remove(keys));
  }

  /** Forgets entries with seenMs < nowMs - ttlMs; returns their keys, sorted. */
  expire(ttlMs: number, nowMs: number): string[] {
    return this.#run("save offsets to", () => {
      const rows = this.#statements.expire.all(nowMs - ttlMs) as Row[];
      return rows.map((row) => row.key).sort();
    });
  }

  /** Closes the file (checkpointing its WAL); later calls do nothing. */
  close(): void {
    if (!this.db.open) return;
    this.#run("close", () => this.db.close());
  }

  // Runs an operation, turning SQLite's errors into LorneErrors.
  #run<T>(action: string, operation: () => T): T {
    return runSqlite(this.db, this.path, action, operation, "internal");
  }
}

function prepare(db: Database.Database) {
  return {
    get: db.prepare(`SELECT ${COLUMNS} FROM offsets WHERE key = ?`),
    all: db.prepare(`SELECT ${COLUMNS} FROM offsets ORDER BY key`),
    upsert: db.prepare(
      `INSERT INTO offsets (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET path = excluded.path,
         byte_offset = excluded.byte_offset,
         fingerprint_length = excluded.fingerprint_length,
         fingerprint_hash = excluded.fingerprint_hash,
         seen_ms = excluded.seen_ms`,
    ),
    touch: db.prepare("UPDATE offsets SET seen_ms = ? WHERE key = ?"),
    remove: db.prepare("DELETE FROM offsets WHERE key = ?"),
    expire: db.prepare("DELETE FROM offsets WHERE seen_ms < ? RETURNING key"),
  };
}

// The directory must exist (the state's place is the operator's choice,
// not created on a typo), and the path must not be a directory.
function checkPlace(path: string): void {
  const dir = dirname(path);
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new ValidationError(
      `Cannot open state "${path}": directory "${dir}" does not exist`,
      "state",
    );
  }
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
    throw new ValidationError(
      `Cannot open state "${path}": it is a directory`,
      "state",
    );
  }
}

// Whether the file is a new, empty database; throws if it is not ours.
function checkOwner(db: Database.Database, path: string): boolean {
  const appId = db.pragma("application_id", { simple: true }) as number;
  const version = db.pragma("user_version", { simple: true }) as number;
  const { count } = db
    .prepare("SELECT count(*) AS count FROM sqlite_schema")
    .get() as { count: number };
  if (appId === 0 && version === 0 && count === 0) return true;

  let what: string | undefined;
  if (appId !== APPLICATION_ID) {
    what = "an SQLite database of another program, not lorne ship state";
  } else if (version > SCHEMA_VERSION) {
    what =
      `lorne ship state of a newer lorne (schema version ${version}; ` +
      `this one reads ${SCHEMA_VERSION})`;
  } else if (version !== SCHEMA_VERSION) {
    what = `lorne ship state with an unknown schema version ${version}`;
  } else if (
    db
      .prepare(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'offsets'",
      )
      .get() === undefined
  ) {
    what = "lorne ship state without its offsets table (damaged)";
  }
  if (what === undefined) return false;
  throw new ValidationError(
    `Cannot open state "${path}": it is ${what}`,
    "state",
  );
}

function openError(path: string, err: unknown): LorneError {
  if (err instanceof LorneError) return err;
  const code = (err as { code?: unknown }).code;
  if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") {
    return new ConflictError(
      `Cannot open state "${path}": in use by another lorne ship`,
      { cause: err },
    );
  }
  if (code === "SQLITE_NOTADB") {
    return new ValidationError(
      `Cannot open state "${path}": it is not an SQLite database`,
      "state",
      { cause: err },
    );
  }
  return new LorneError(
    "unavailable",
    `Cannot open state "${path}": ${errorMessage(err)}`,
    { cause: err },
  );
}

function checkEntry(entry: OffsetEntry, index: number, path: string): void {
  const bad = (field: string, value: unknown): ValidationError => {
    const name = `entries[${index}].${field}`;
    return new ValidationError(
      `Cannot save offsets to "${path}": ${name} must be a non-negative ` +
        `integer, got ${String(value)}`,
      name,
    );
  };
  if (!isCount(entry.offset)) throw bad("offset", entry.offset);
  if (!isCount(entry.fingerprint.length)) {
    throw bad("fingerprint.length", entry.fingerprint.length);
  }
  if (!isCount(entry.seenMs)) throw bad("seenMs", entry.seenMs);
}

function isCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

function toEntry(row: Row): OffsetEntry {
  return {
    key: row.key,
    path: row.path,
    offset: row.byte_offset,
    fingerprint: {
      length: row.fingerprint_length,
      hash: row.fingerprint_hash,
    },
    seenMs: row.seen_ms,
  };
}
