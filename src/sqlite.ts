/**
 * One way to run an SQLite operation for lorne's stores (the host's state
 * file, the shipper's offsets): SQLite's errors become LorneErrors that
 * name the file and what was being done, so callers report "Cannot save
 * state to "<path>": database or disk is full" instead of a bare code.
 */
import type Database from "better-sqlite3";

import { errorMessage, LorneError, type ErrorCode } from "./errors.js";

/**
 * Runs `operation` on `db`. A closed database is a LorneError with
 * `closedCode`; a failing operation is `unavailable`, its cause chained.
 */
export function runSqlite<T>(
  db: Database.Database,
  path: string,
  action: string,
  operation: () => T,
  closedCode: ErrorCode = "unavailable",
): T {
  if (!db.open) {
    throw new LorneError(
      closedCode,
      `Cannot ${action} "${path}": the store is closed`,
    );
  }
  try {
    return operation();
  } catch (err) {
    if (err instanceof LorneError) throw err;
    throw new LorneError(
      "unavailable",
      `Cannot ${action} "${path}": ${errorMessage(err)}`,
      { cause: err },
    );
  }
}
