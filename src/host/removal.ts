/**
 * Removing an ended job, asked for or by retention (retention.ts): its
 * directory goes to the trash (trash.ts), its record leaves the store and
 * the table, and the runner forgets its output and ports. Logged as
 * `at=removed_ended` with how long the job had been ended.
 *
 * Nothing waits for readers: an attach or `logs?follow=1` reader holds
 * the output files open and reads on to their end (a deleted file stays
 * readable through an open descriptor), and `ended()` callers already
 * hold the final record. The id is free for a new job at once.
 */
import { join } from "node:path";

import { ConflictError, errorMessage } from "../errors.js";
import type { Context } from "../log/index.js";
import { isFinal, type JobRecord } from "./job.js";
import type { JobRunner } from "./runner.js";
import type { JobTable } from "./state.js";
import { removeJobDir } from "./trash.js";

/**
 * Why a job is removed: asked for (`DELETE /jobs/:id?remove=1`), past the
 * retention period, or beyond the count of ended jobs kept.
 */
export type RemoveReason = "request" | "retention" | "max";

export interface RemoveRequest {
  id: string;
  reason: RemoveReason;
  jobs: JobTable;
  runner: JobRunner;
  /** The state dir, whose trash takes the job's directory. */
  stateDir: string;
  /** `<state>/jobs`: one directory per job. */
  jobsDir: string;
  /** The host's log. */
  log: Context;
}

/** What removeEndedJob() did; `deleted` never rejects. */
export interface Removed {
  record: JobRecord;
  /** Settles once the directory is deleted (a failure is logged). */
  deleted: Promise<void>;
}

/**
 * Removes an ended job (see the module comment). ConflictError when the
 * job has not ended; NotFoundError when unknown.
 */
export function removeEndedJob(request: RemoveRequest): Removed {
  const { id, jobs, log } = request;
  const record = jobs.get(id);
  if (!isFinal(record.status) || request.runner.active(id)) {
    throw new ConflictError(
      `Cannot remove job "${id}": it is ${record.status}; stop it first`,
    );
  }
  const deleting = removeJobDir(
    request.stateDir,
    join(request.jobsDir, id),
    () => jobs.remove(id),
  );

  const endedAtMs = Date.parse(record.ended_at ?? record.created_at);
  log.log({
    at: "removed_ended",
    "job.id": id,
    status: record.status,
    ended_for: `${(Date.now() - endedAtMs) / 1000}s`,
    reason: request.reason,
  });
  request.runner.forget(id);
  const deleted = deleting.catch((err: unknown) => {
    log.log({
      at: "trash_error",
      "job.id": id,
      err: errorMessage(err),
      resolution: "deleted at the next start",
    });
  });
  return { record, deleted };
}
