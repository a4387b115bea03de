/**
 * The host daemon's durable state: job records, the event log's retained
 * events and sequence, and which job holds which port. The job table, the
 * event log and the port pool write here before they change what they
 * hold in memory, so a restarted daemon finds what the last one answered.
 *
 * One SQLite file (better-sqlite3), `<state>/host.db`, in WAL mode with
 * synchronous=FULL: a commit is on disk before the API answers. The state
 * dir's lock keeps a second daemon away, so the file is not locked
 * exclusively and `sqlite3 host.db .backup` works while the daemon runs.
 * The checks of a file found at the path (ours, readable, whole) live in
 * store-open.ts; a file that fails them is left exactly as it was.
 * `HostStore.memory()` runs the same code on an in-memory database.
 */
import { randomBytes } from "node:crypto";

import type Database from "better-sqlite3";

import { runSqlite } from "../sqlite.js";
import type { JobEvent, JobEventType } from "./events.js";
import type { JobRecord } from "./job.js";
import { openDatabase } from "./store-open.js";

/** The file name inside the state dir. */
export const STATE_FILE = "host.db";

/** Where the daemon keeps its state: a file, or memory (lost on exit). */
export type StateStoreKind = "file" | "memory";

interface JobRow {
  record: string;
}

interface EventRow {
  id: number;
  type: JobEventType;
  job_id: string;
  time: string;
  job: string;
}

interface PortRow {
  port: number;
  job_id: string;
}

type Statements = ReturnType<typeof prepare>;

/** Durable host state in one SQLite database; see the module comment. */
export class HostStore {
  /** The state file's path, or ":memory:". */
  readonly path: string;
  // TS-private rather than #private: tests reach it to make SQLite fail.
  private readonly db: Database.Database;
  readonly #s: Statements;

  private constructor(path: string, db: Database.Database) {
    this.path = path;
    this.db = db;
    this.#s = prepare(db);
  }

  /**
   * Opens (or creates) the state file at `path`; its directory must
   * exist. Throws ValidationError (field `state`) when the file is not
   * lorne host state or is damaged, LorneError (`unavailable`) when it
   * cannot be read; the file is never changed then.
   */
  static open(path: string): HostStore {
    return new HostStore(path, openDatabase(path));
  }

  /** A store that keeps everything in memory, for `--state-store memory`. */
  static memory(): HostStore {
    return new HostStore(":memory:", openDatabase(":memory:"));
  }

  /**
   * Runs `fn` in one transaction: every write in it is stored, or none.
   * Nested calls join the outer transaction.
   */
  transaction<T>(fn: () => T): T {
    return this.#run("save state to", () => this.db.transaction(fn)());
  }

  /** Every job record, in the order the jobs were created. */
  jobs(): JobRecord[] {
    return this.#run("read jobs from", () =>
      (this.#s.jobs.all() as JobRow[]).map(
        (row) => JSON.parse(row.record) as JobRecord,
      ),
    );
  }

  /** Saves a job's record; a new id goes last in the creation order. */
  saveJob(record: JobRecord): void {
    this.#run("save job state to", () => {
      this.#s.saveJob.run(record.id, record.status, JSON.stringify(record));
    });
  }

  /**
   * Saves a new job in place of an older one with the same id, which
   * loses its place in the creation order.
   */
  replaceJob(record: JobRecord): void {
    this.transaction(() => {
      this.#s.removeJob.run(record.id);
      this.saveJob(record);
    });
  }

  /** Forgets a job's record; an unknown id is ignored. */
  removeJob(id: string): void {
    this.#run("remove a job from", () => {
      this.#s.removeJob.run(id);
    });
  }

  /**
   * Stores an event and returns it with its sequence number: one more
   * than any number given before, also after older events were dropped.
   * Keeps only the newest `history` events.
   */
  addEvent(type: JobEventType, job: JobRecord, history: number): JobEvent {
    return this.#run("save an event to", () => {
      const time = new Date().toISOString();
      const info = this.#s.addEvent.run(
        type,
        job.id,
        time,
        JSON.stringify(job),
      );
      const id = Number(info.lastInsertRowid);
      this.#s.trimEvents.run(id - history);
      return { id, event: type, job_id: job.id, time, job };
    });
  }

  /** The newest `limit` events kept, oldest first. */
  events(limit: number): JobEvent[] {
    return this.#run("read events from", () =>
      (this.#s.events.all(limit) as EventRow[]).reverse().map(toEvent),
    );
  }

  /**
   * Which event log this is: made once, with the store (a new state file,
   * or each start with `--state-store memory`). Event numbers are only
   * comparable within one log; a client that resumes with another log's
   * number missed the start of this one.
   */
  eventLogId(): string {
    return this.#run("read the event log id from", () => {
      const row = this.#s.meta.get("event_log") as
        { value: string } | undefined;
      if (row) return row.value;
      const id = randomBytes(8).toString("hex");
      this.#s.setMeta.run("event_log", id);
      return id;
    });
  }

  /** The number of the newest event ever stored, 0 before the first. */
  lastEventId(): number {
    return this.#run("read events from", () => {
      const row = this.#s.lastEventId.get() as { seq: number } | undefined;
      return row?.seq ?? 0;
    });
  }

  /** Every port held, with the job holding it. */
  ports(): Map<number, string> {
    return this.#run("read ports from", () => {
      const rows = this.#s.ports.all() as PortRow[];
      return new Map(rows.map((row) => [row.port, row.job_id]));
    });
  }

  /** Records ports as held by a job, all or none. */
  holdPorts(jobId: string, ports: readonly number[]): void {
    this.transaction(() => {
      for (const port of ports) this.#s.holdPort.run(port, jobId);
    });
  }

  /** Forgets these ports' holders; unknown ports are ignored. */
  releasePorts(ports: readonly number[]): void {
    this.transaction(() => {
      for (const port of ports) this.#s.releasePort.run(port);
    });
  }

  /** Closes the database (checkpointing its WAL); later calls do nothing. */
  close(): void {
    if (!this.db.open) return;
    this.#run("close", () => this.db.close());
  }

  // Runs an operation, turning SQLite's errors into LorneErrors that name
  // the file, so the API answers 503 with the path and the reason.
  #run<T>(action: string, operation: () => T): T {
    return runSqlite(this.db, this.path, action, operation);
  }
}

function prepare(db: Database.Database) {
  return {
    jobs: db.prepare("SELECT record FROM jobs ORDER BY seq"),
    saveJob: db.prepare(
      `INSERT INTO jobs (id, status, record) VALUES (?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status,
         record = excluded.record`,
    ),
    removeJob: db.prepare("DELETE FROM jobs WHERE id = ?"),
    addEvent: db.prepare(
      "INSERT INTO events (type, job_id, time, job) VALUES (?, ?, ?, ?)",
    ),
    trimEvents: db.prepare("DELETE FROM events WHERE id <= ?"),
    events: db.prepare(
      "SELECT id, type, job_id, time, job FROM events ORDER BY id DESC LIMIT ?",
    ),
    lastEventId: db.prepare(
      "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
    ),
    ports: db.prepare("SELECT port, job_id FROM ports ORDER BY port"),
    meta: db.prepare("SELECT value FROM meta WHERE key = ?"),
    setMeta: db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)"),
    holdPort: db.prepare(
      `INSERT INTO ports (port, job_id) VALUES (?, ?)
       ON CONFLICT (port) DO UPDATE SET job_id = excluded.job_id`,
    ),
    releasePort: db.prepare("DELETE FROM ports WHERE port = ?"),
  };
}

function toEvent(row: EventRow): JobEvent {
  return {
    id: row.id,
    event: row.type,
    job_id: row.job_id,
    time: row.time,
    job: JSON.parse(row.job) as JobRecord,
  };
}
