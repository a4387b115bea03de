/**
 * Recovery after a crash: every job an earlier daemon left unfinished is
 * decided once, before the API serves. A job still running is taken over
 * (its output, stop, attach and exit work again, its ports stay held), a
 * job that ended meanwhile is recorded with how it ended, and a job that
 * never got going is failed with the reason.
 */
import { join } from "node:path";

import type { Context } from "../log/index.js";
import type { Backend } from "./backend.js";
import type { JobRecord } from "./job.js";
import type { JobRunner } from "./runner.js";
import { removeJobPid } from "./statedir.js";
import type { ExitInfo, JobTable } from "./state.js";

export interface RecoverOptions {
  jobs: JobTable;
  backend: Backend;
  /** Takes over the jobs still running and keeps the others' output. */
  runner: JobRunner;
  /** `<state>/jobs`: one directory per job. */
  jobsDir: string;
  /** The host's log; lines about one job carry `job.id`. */
  log: Context;
}

/**
 * Decides every unfinished job (see the module comment). Resolves with
 * the ids of the jobs taken over.
 */
export async function recoverJobs(options: RecoverOptions): Promise<string[]> {
  const { jobs, backend, runner, jobsDir } = options;
  const adopted: string[] = [];
  for (const job of jobs.unfinished()) {
    const log = options.log.child({ "job.id": job.id });
    const dir = join(jobsDir, job.id);
    const found = await backend.adopt?.({ job, dir, log });
    if (found && "running" in found) {
      runner.adopt(job, found.running, found.output, log);
      adopted.push(job.id);
      continue;
    }
    if (found?.output) runner.keepOutput(job.id, found.output);
    endUnwatched(jobs, job, found?.exit ?? null, backend.name, log);
    removeJobPid(dir);
  }
  return adopted;
}

// Records the end of a job no daemon saw end: how, when the backend
// knows; else why not.
function endUnwatched(
  jobs: JobTable,
  job: JobRecord,
  exit: ExitInfo | null,
  backendName: string,
  log: Context,
): void {
  const known =
    exit !== null && (exit.exitStatus !== null || exit.signal !== null);
  if (job.status === "starting" && !known) {
    const reason =
      exit?.error ?? "The daemon stopped before the job had started";
    jobs.setFailed(job.id, reason);
    log.log({ at: "failed", err: reason });
    return;
  }
  if (job.status === "starting") {
    jobs.setRunning(job.id, job.pid, exit?.startedAt);
  }
  const ended = jobs.setExited(
    job.id,
    exit ?? {
      exitStatus: null,
      signal: null,
      error:
        `The job's exit status is unknown: the ${backendName} ` +
        "backend cannot take over jobs after a restart",
    },
    false,
  );
  log.log({
    at: "ended_while_down",
    status: ended.status,
    exit_status: ended.exit_status,
    signal: ended.signal,
    ...(ended.error === null ? {} : { err: ended.error }),
  });
}
