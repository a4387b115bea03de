/**
 * The daemon's state directory: a lock so two daemons never share one, and
 * the pid files that let a new daemon find jobs an earlier one left
 * running (`--force` stops them).
 *
 *   <state>/host.pid          the running daemon's pid
 *   <state>/jobs/<id>/pid     a running job's pid (its process group id)
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";

import { ConflictError, errorMessage, ValidationError } from "../errors.js";

/** A job's pid file in its directory, written by its shim and the host. */
export const JOB_PID_FILE = "pid";

export interface LeftoverJob {
  id: string;
  pid: number;
  /** The host id the job was started under. */
  hostId: string;
}

// Makes each missing level of `dir` in turn, failing on the first that
// cannot be made. (Node 20's recursive mkdirSync loops for ever on some
// paths, e.g. under /proc.)
function makeDirs(dir: string, mode: number): void {
  const missing: string[] = [];
  for (let at = resolve(dir); !existsSync(at); at = dirname(at)) {
    missing.push(at);
    if (dirname(at) === at) break;
  }
  for (const path of missing.reverse()) {
    try {
      mkdirSync(path, { mode });
    } catch (err) {
      // Made meanwhile by somebody else: as good.
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}

/** Creates the directory if needed and takes the lock; see module comment. */
export function lockStateDir(dir: string): () => void {
  try {
    makeDirs(join(dir, "jobs"), 0o750);
  } catch (err) {
    throw new ValidationError(
      `Cannot use state dir "${dir}": ${errorMessage(err)}`,
      "state",
      { cause: err },
    );
  }
  const lock = join(dir, "host.pid");
  const holder = readPid(lock);
  // A pid reused by another program after a crash is not a lock holder.
  if (holder !== null && holder !== process.pid && isLorne(holder)) {
    throw new ConflictError(
      `Cannot use state dir "${dir}": lorne host pid ${holder} is using it`,
    );
  }
  writeFileSync(lock, `${process.pid}\n`);
  return () => {
    if (readPid(lock) === process.pid) rmSync(lock, { force: true });
  };
}

/**
 * Jobs whose pid file is still there and whose process still runs with
 * that job id in its environment (so a reused pid is never taken for one
 * of ours), whichever host id the earlier daemon had. Pid files of
 * processes that are gone are removed.
 */
export function findLeftoverJobs(dir: string): LeftoverJob[] {
  const jobsDir = join(dir, "jobs");
  if (!existsSync(jobsDir)) return [];
  const found: LeftoverJob[] = [];
  for (const id of readdirSync(jobsDir)) {
    const pidFile = join(jobsDir, id, JOB_PID_FILE);
    const pid = readPid(pidFile);
    if (pid === null) continue;
    const hostId = jobHostId(pid, id);
    if (hostId !== null) found.push({ id, pid, hostId });
    else rmSync(pidFile, { force: true });
  }
  return found;
}

/**
 * Stops leftover jobs: SIGTERM to each process group, SIGKILL to those
 * still alive after `graceMs`. Removes their pid files.
 */
export async function stopLeftoverJobs(
  dir: string,
  jobs: LeftoverJob[],
  graceMs: number,
): Promise<void> {
  for (const job of jobs) signalGroup(job.pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (jobs.some((j) => isAlive(j.pid)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (const job of jobs) {
    if (isAlive(job.pid)) signalGroup(job.pid, "SIGKILL");
    removeJobPid(join(dir, "jobs", job.id));
  }
}

/**
 * Writes a running job's pid into its directory `jobDir`, so a later
 * daemon started with `--force` finds the job if this one crashes. A
 * null pid (a backend that has none) writes nothing.
 */
export function writeJobPid(jobDir: string, pid: number | null): void {
  if (pid === null) return;
  writeFileSync(join(jobDir, JOB_PID_FILE), `${pid}\n`);
}

/** Removes a job's pid file once the job has ended. */
export function removeJobPid(jobDir: string): void {
  rmSync(join(jobDir, JOB_PID_FILE), { force: true });
}

/**
 * The host id of the live lorne job with this id at this pid (read from
 * its environment, so a reused pid is never taken for the job), else null.
 */
export function jobHostId(pid: number, jobId: string): string | null {
  if (!isAlive(pid)) return null;
  try {
    const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    if (!environ.includes(`LORNE_JOB_ID=${jobId}`)) return null;
    const host = environ.find((v) => v.startsWith("LORNE_HOST_ID="));
    return host === undefined ? null : host.slice("LORNE_HOST_ID=".length);
  } catch {
    return null;
  }
}

function isLorne(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("lorne");
  } catch {
    return false;
  }
}

/** The pid a pid file holds; null when it is missing or not a pid. */
export function readPid(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

// Alive and not a zombie waiting to be reaped.
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return true;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Gone already.
  }
}
