/**
 * Writes the statuses of a host's cluster jobs to `status/<job>`, with a
 * running job's service instance under `services/<name>/<job>` (bound to
 * the host's lease). Each write holds only while the job's assignment is
 * the one it was placed with, so a host never reports over a placement
 * the scheduler has since made elsewhere.
 *
 * One write at a time per job; a newer record replaces one still waiting.
 * A failed write is tried again with backoff: a final status given up on
 * would leave the job shown running in etcd for good.
 */
import type { Etcd3 } from "etcd3";

import { Backoff } from "../backoff.js";
import { errorMessage } from "../errors.js";
import type { JobRecord } from "../host/job.js";
import type { Context } from "../log/index.js";
import { sleep } from "../sleep.js";
import type { AssignedJob } from "./assignments.js";
import type { ClusterKeys } from "./keys.js";
import {
  isFinalState,
  type ClusterStatus,
  type ServiceInstance,
  type ServiceSpec,
} from "./records.js";

/** First and longest wait between attempts at a status write. */
const RETRY_MS = 500;
const MAX_RETRY_MS = 2_000;

export interface StatusWriterOptions {
  client: Etcd3;
  keys: ClusterKeys;
  hostId: string;
  /** host:port where others reach this host's API; services use its host. */
  advertise: string;
  /**
   * The cluster jobs this host runs, shared with the agent: only their
   * statuses are written. A job leaves it once its final status is
   * written or its assignment is found gone.
   */
  jobs: Map<string, AssignedJob>;
  /** The lease id of the current registration, written into each status. */
  session: () => string | null;
  /** Called for a job whose assignment went: it is not this host's now. */
  onGone: (jobId: string) => void;
  log: Context;
}

/** See the module comment. */
export class StatusWriter {
  readonly #options: StatusWriterOptions;
  readonly #log: Context;
  readonly #pending = new Map<string, JobRecord>();
  readonly #writing = new Map<string, Promise<void>>();
  #paused = false;

  constructor(options: StatusWriterOptions) {
    this.#options = options;
    this.#log = options.log;
  }

  /** Writes a job's record as its status, after any write in progress. */
  report(jobId: string, record: JobRecord): void {
    this.#pending.set(jobId, record);
    if (this.#writing.has(jobId)) return;
    const loop = (async () => {
      for (;;) {
        const next = this.#pending.get(jobId);
        if (!next) break;
        this.#pending.delete(jobId);
        await this.#write(jobId, next);
      }
      this.#writing.delete(jobId);
    })();
    this.#writing.set(jobId, loop);
  }

  /** Stops writing: a write gives up before its next attempt. */
  pause(): void {
    this.#paused = true;
  }

  /** Resolves once the writes in progress have ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#writing.values()]);
  }

  /** Drops the records still waiting (the jobs are no longer this host's). */
  clear(): void {
    this.#pending.clear();
  }

  // Tried until it is written, the job is no longer this host's (its
  // assignment or the lease went), a newer record replaces it, or the
  // writer pauses.
  async #write(jobId: string, record: JobRecord): Promise<void> {
    const { client, keys, jobs } = this.#options;
    const backoff = new Backoff(RETRY_MS, MAX_RETRY_MS);
    for (let attempt = 1; ; attempt++) {
      const assigned = jobs.get(jobId);
      if (this.#paused || !assigned) return;
      const session = this.#options.session();
      const status = toStatus(record, assigned.attempt, session);
      const ops = [
        client.put(keys.status(jobId)).value(JSON.stringify(status)),
      ];
      const service = assigned.service;
      if (service && status.state === "running") {
        const instance = this.#instance(service, jobId, record);
        if (instance) {
          ops.push(
            client
              .put(keys.service(service.name, jobId))
              .value(JSON.stringify(instance))
              .lease(session ?? "0"),
          );
        }
      }
      const removeService =
        service && isFinalState(status.state)
          ? [client.delete().key(keys.service(service.name, jobId))]
          : [];
      try {
        const res = await client
          .if(assigned.assignmentKey, "Create", "==", assigned.createRevision)
          .then(...ops, ...removeService)
          .commit();
        if (!res.succeeded) {
          // The scheduler took the job away; it is not ours to report.
          jobs.delete(jobId);
          this.#log.log({ at: "assignment_gone", "job.id": jobId });
          this.#options.onGone(jobId);
        } else if (isFinalState(status.state)) {
          jobs.delete(jobId);
        }
        return;
      } catch (err) {
        this.#log.log({
          at: "status_error",
          "job.id": jobId,
          attempt,
          err: errorMessage(err),
        });
        if (this.#pending.has(jobId)) return; // the newer one goes next
        await sleep(backoff.next());
      }
    }
  }

  #instance(
    service: ServiceSpec,
    jobId: string,
    record: JobRecord,
  ): ServiceInstance | null {
    const port = record.ports[service.port_index];
    if (port === undefined) {
      this.#log.log({
        at: "service_error",
        "job.id": jobId,
        err: `Job has no port ${service.port_index} for service "${service.name}"`,
      });
      return null;
    }
    const advertiseHost = this.#options.advertise.replace(/:\d+$/, "");
    return {
      name: service.name,
      job_id: jobId,
      host_id: this.#options.hostId,
      address: `${advertiseHost}:${port}`,
    };
  }
}

/** The status a host writes for one of its jobs. */
function toStatus(
  record: JobRecord,
  attempt: number,
  session: string | null,
): ClusterStatus {
  return {
    job_id: record.id,
    state: record.status,
    host_id: record.host_id,
    session,
    attempt,
    pid: record.pid,
    ports: record.ports,
    exit_status: record.exit_status,
    signal: record.signal,
    error: record.error,
    updated_at: new Date().toISOString(),
  };
}
