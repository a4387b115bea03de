/**
 * Where removed jobs' directories go to be deleted: `<state>/removed/`.
 *
 * A job's directory is first renamed in here (one atomic step), then its
 * record leaves the state file, then the directory is deleted at leisure.
 * A crash at any point leaves either a record whose directory is gone
 * (every reader of output copes: the job has no captured output) or a
 * directory in here that no record names, which the next daemon deletes
 * at start. Nothing under `<state>/jobs/` is ever left without a record
 * by a removal, so that directory keeps meaning "a job the host knows or
 * a process an earlier daemon left running" (statedir.ts).
 */
import { mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { basename, join } from "node:path";

import { errorMessage, LorneError } from "../errors.js";

/** The directory's name inside the state dir. */
export const TRASH_DIR = "removed";

let moves = 0;

/**
 * Removes a job's directory `dir` around `forget`, which drops the job's
 * record: the directory goes to the trash, comes back if `forget` throws
 * (that error is rethrown), and is deleted once `forget` has returned.
 * The returned promise settles when the files are gone (it rejects when
 * they cannot be deleted; the next start retries). A missing directory
 * (a job that failed before it had one, or one a crash already moved) is
 * no error.
 */
export function removeJobDir(
  stateDir: string,
  dir: string,
  forget: () => void,
): Promise<void> {
  const trashed = moveToTrash(stateDir, dir);
  try {
    forget();
  } catch (err) {
    // If the directory cannot go back, the job is a record without a
    // directory, which every reader copes with.
    try {
      if (trashed !== null) renameSync(trashed, dir);
    } catch {
      // The error to report is forget's.
    }
    throw err;
  }
  if (trashed === null) return Promise.resolve();
  return rm(trashed, { recursive: true, force: true });
}

/**
 * Deletes everything in the trash (removals a crash interrupted);
 * returns how many entries there were.
 */
export function emptyTrash(stateDir: string): number {
  const trash = join(stateDir, TRASH_DIR);
  let names: string[];
  try {
    names = readdirSync(trash);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
  for (const name of names) {
    rmSync(join(trash, name), { recursive: true, force: true });
  }
  return names.length;
}

// Renames `dir` into the trash; returns the new path, or null when there
// was no directory.
function moveToTrash(stateDir: string, dir: string): string | null {
  const trash = join(stateDir, TRASH_DIR);
  // Unique even when one id is removed, re-created and removed again
  // before the first directory is gone.
  const target = join(trash, `${basename(dir)}.${process.pid}.${++moves}`);
  try {
    mkdirSync(trash, { recursive: true, mode: 0o750 });
    renameSync(dir, target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new LorneError(
      "internal",
      `Cannot remove "${dir}": ${errorMessage(err)}`,
      { cause: err },
    );
  }
  return target;
}
