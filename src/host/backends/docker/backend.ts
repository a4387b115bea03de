/**
 * The docker backend: each job is a container named `lorne-<job id>`,
 * labelled with the host and job ids, run through the Engine API. Images
 * missing locally are pulled (shared, with a deadline); engine calls that
 * start jobs are bounded so many starts do not swamp the engine, and a
 * slow pull holds no slot. Every allocated port is published on the bind
 * address with the same number inside and out. `tini` (the engine's
 * `--init`) runs as PID 1 so signals reach the job's command.
 *
 * Containers outlive the daemon: after a crash the next daemon finds each
 * unfinished job's container by its labels and takes it over (`adopt`),
 * or records how it ended from the engine's own account.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";

import Docker from "dockerode";

import {
  errorMessage,
  UnavailableError,
  ValidationError,
} from "../../../errors.js";
import type { Context } from "../../../log/index.js";
import type {
  AdoptRequest,
  Adopted,
  Backend,
  BackendStatus,
  RunningJob,
  StartRequest,
} from "../../backend.js";
import type { JobConfig, JobRecord } from "../../job.js";
import { Semaphore } from "../../limit.js";
import { INDEX_FILE, JobOutput } from "../../output.js";
import { readExitFileOrNull } from "../../shim/exitfile.js";
import { ContainerJob } from "./container.js";
import {
  DEFAULT_DOCKER_SOCKET,
  DEFAULT_START_CONCURRENCY,
  HOST_LABEL,
  JOB_LABEL,
} from "./defaults.js";
import { EngineWatcher } from "./engine-events.js";
import { isRunning } from "./exit.js";
import { engineMessage, ImagePuller } from "./pull.js";
import { PendingRemovals } from "./removals.js";
import { addressOf, containerSpec, stopSignalOf } from "./spec.js";

export interface DockerBackendOptions {
  hostId: string;
  log: Context;
  socketPath?: string;
  /** Address published ports bind to; default 127.0.0.1. */
  bindIp?: string;
  pullTimeoutMs?: number;
  /** Keep containers after they exit (for debugging). */
  keepContainers?: boolean;
  startConcurrency?: number;
}

/** See the module comment. */
export class DockerBackend implements Backend {
  readonly name = "docker";
  readonly #docker: Docker;
  readonly #options: DockerBackendOptions;
  readonly #log: Context;
  readonly #puller: ImagePuller;
  readonly #starts: Semaphore;
  readonly #watcher: EngineWatcher;
  readonly #jobs = new Map<string, ContainerJob>();
  readonly #removals = new PendingRemovals();
  readonly #stopSignals = new Map<string, Promise<NodeJS.Signals>>();

  constructor(options: DockerBackendOptions) {
    this.#options = options;
    this.#log = options.log.child({ backend: "docker" });
    this.#docker = new Docker({
      socketPath: options.socketPath ?? DEFAULT_DOCKER_SOCKET,
    });
    this.#puller = new ImagePuller(this.#docker, options.pullTimeoutMs);
    this.#starts = new Semaphore(
      options.startConcurrency ?? DEFAULT_START_CONCURRENCY,
    );
    this.#watcher = new EngineWatcher({
      docker: this.#docker,
      hostId: options.hostId,
      log: this.#log,
      onEvent: (event) => void this.#jobs.get(event.id)?.reconcile(),
      onReconnect: () => {
        for (const job of this.#jobs.values()) void job.reconcile();
        this.#removals.retryNow();
      },
    });
  }

  /**
   * Checks the engine answers and starts watching its events. Rejects with
   * a clear error when the engine cannot be reached.
   */
  async open(): Promise<void> {
    const socket = this.#options.socketPath ?? DEFAULT_DOCKER_SOCKET;
    try {
      await this.#docker.ping();
    } catch (err) {
      throw new UnavailableError(
        `Cannot reach the Docker engine at ${socket}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    await this.#watcher.start();
  }

  validate(config: JobConfig): void {
    if (config.image === undefined) {
      throw new ValidationError(
        "Missing config.image: the docker backend needs an image",
        "config.image",
      );
    }
  }

  status(): BackendStatus {
    if (this.#watcher.connected) return { ok: true };
    return {
      ok: false,
      error: `Docker engine unreachable: ${this.#watcher.lastError ?? "connecting"}`,
    };
  }

  async start(request: StartRequest): Promise<RunningJob> {
    const { job, log } = request;
    const image = job.config.image as string;
    const container = await this.#create(request);
    const handle = new ContainerJob({
      docker: this.#docker,
      container,
      output: request.output,
      tty: job.config.tty ?? false,
      stdin: job.config.stdin ?? false,
      keep: this.#options.keepContainers ?? false,
      removals: this.#removals,
      log,
    });
    try {
      await this.#starts.run(async () => {
        await handle.attach();
        await handle.start();
      });
      if (request.ttySize && job.config.tty) handle.resize(request.ttySize);
    } catch (err) {
      await handle.discard();
      throw new Error(`Cannot start container: ${engineMessage(err)}`);
    }

    this.#track(handle);
    // A container that died before it was tracked is caught here.
    void handle.reconcile();
    const info = container.inspect().catch(() => null);
    return {
      pid: null,
      pidLater: info.then((i) => (i && i.State.Pid > 0 ? i.State.Pid : null)),
      address: info.then(addressOf),
      exited: handle.exited,
      signal: (signal) => handle.signal(signal),
      stdin: handle.stdin,
      resize: job.config.tty ? (size) => handle.resize(size) : undefined,
      stopSignal: await this.#stopSignal(image),
    };
  }

  /**
   * Finds the job's container by its labels. Running: its output goes on
   * in the same files from where they end, and stop, signals and the exit
   * work as for a new job (its stdin does not: the engine closed it when
   * the earlier daemon's attach went away). Ended: its real exit code, OOM
   * flag and end time, the rest of its output, then it is removed (unless
   * kept). Created but never started, or gone: ended, with the reason.
   */
  async adopt({ job, dir, log }: AdoptRequest): Promise<Adopted> {
    const unknown = (error: string, output: JobOutput | null): Adopted => {
      output?.end();
      return { exit: { exitStatus: null, signal: null, error }, output };
    };
    let output: JobOutput;
    try {
      output = openOutput(dir, log);
    } catch (err) {
      // The job cannot run on without its files; nothing may run unseen.
      await this.#removeJobContainers(job.id, log);
      return unknown(
        `Cannot resume the job's output: ${errorMessage(err)}`,
        null,
      );
    }

    // No container: removed after its exit was written down (the earlier
    // daemon died before recording it), or never made, or removed by hand.
    const gone = (): Adopted => {
      const recorded = readExitFileOrNull(dir);
      if (recorded === null) return unknown(goneReason(job), output);
      output.end();
      return { exit: recorded, output };
    };
    let info: Docker.ContainerInspectInfo;
    try {
      const found = await this.#containersOf(job.id);
      // At most one, by its name; a running one is the one to take over.
      const pick = found.find((c) => c.State === "running") ?? found[0];
      if (pick === undefined) return gone();
      info = await this.#docker.getContainer(pick.Id).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return gone();
      return unknown(
        `The job's exit status is unknown: cannot find its container (${engineMessage(err)})`,
        output,
      );
    }
    const container = this.#docker.getContainer(info.Id);
    if (info.State.Status === "created") {
      // The earlier daemon died between the create and the start.
      await container.remove({ force: true }).catch(() => undefined);
      return unknown(
        "The daemon stopped before the job's container had started",
        output,
      );
    }

    const handle = new ContainerJob({
      docker: this.#docker,
      container,
      output,
      tty: job.config.tty ?? false,
      stdin: false,
      keep: this.#options.keepContainers ?? false,
      removals: this.#removals,
      log,
    });
    await handle.resume();
    if (handle.exit) return { exit: handle.exit, output };
    this.#track(handle);
    log.log({
      at: "container_adopted",
      "container.id": info.Id.slice(0, 12),
      running: isRunning(info.State),
    });
    return {
      running: {
        pid: info.State.Pid > 0 ? info.State.Pid : null,
        address: Promise.resolve(addressOf(info)),
        exited: handle.exited,
        signal: (signal) => handle.signal(signal),
        resize: job.config.tty ? (size) => handle.resize(size) : undefined,
        stopSignal: stopSignalOf(
          (info.Config as { StopSignal?: string }).StopSignal,
        ),
      },
      output,
    };
  }

  // Follows a container's engine events until its job has ended.
  #track(handle: ContainerJob): void {
    this.#jobs.set(handle.id, handle);
    void handle.exited.then(() => this.#jobs.delete(handle.id));
  }

  // This host's containers of one job, whatever their state.
  #containersOf(jobId: string): Promise<Docker.ContainerInfo[]> {
    return this.#docker.listContainers({
      all: true,
      filters: JSON.stringify({
        label: [
          `${HOST_LABEL}=${this.#options.hostId}`,
          `${JOB_LABEL}=${jobId}`,
        ],
      }),
    });
  }

  async #removeJobContainers(jobId: string, log: Context): Promise<void> {
    try {
      for (const c of await this.#containersOf(jobId)) {
        await this.#docker.getContainer(c.Id).remove({ force: true });
      }
    } catch (err) {
      log.log({ at: "remove", err: engineMessage(err) });
    }
  }

  // Creates the container, pulling the image first when it is missing.
  async #create(request: StartRequest): Promise<Docker.Container> {
    const image = request.job.config.image as string;
    const create = () =>
      this.#starts.run(() =>
        this.#docker.createContainer(containerSpec(request, this.#options)),
      );
    try {
      return await create();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) {
        throw new Error(`Cannot create container: ${engineMessage(err)}`);
      }
    }
    request.log.log({ at: "image_missing", image });
    await this.#puller.pull(image, request.log);
    try {
      return await create();
    } catch (err) {
      throw new Error(`Cannot create container: ${engineMessage(err)}`);
    }
  }

  // The image's stop signal, looked up once per image.
  #stopSignal(image: string): Promise<NodeJS.Signals> {
    let signal = this.#stopSignals.get(image);
    if (!signal) {
      signal = this.#docker
        .getImage(image)
        .inspect()
        .then(
          (info) =>
            stopSignalOf((info.Config as { StopSignal?: string }).StopSignal),
          () => {
            this.#stopSignals.delete(image); // ask again next time
            return "SIGTERM" as const;
          },
        );
      this.#stopSignals.set(image, signal);
    }
    return signal;
  }

  /**
   * Containers labelled with this host id that no job explains: with
   * `force` they are removed, otherwise reported, and their job ids are
   * returned (a new job with one of them would clash with its name). Call
   * after recovery: `explains(jobId, running)` says whether a job record
   * accounts for a container (an adopted job's running one, an ended job's
   * kept one).
   */
  async cleanup(
    force: boolean,
    explains: (jobId: string, running: boolean) => boolean,
  ): Promise<string[]> {
    const all = await this.#docker.listContainers({
      all: true,
      filters: JSON.stringify({
        label: [`${HOST_LABEL}=${this.#options.hostId}`],
      }),
    });
    const containers = all.filter(
      (c) => !explains(c.Labels[JOB_LABEL] ?? "", c.State === "running"),
    );
    if (containers.length === 0) return [];
    const ids = containers.map((c) => c.Id.slice(0, 12)).join(",");
    if (!force) {
      this.#log.log({
        at: "leftover_jobs",
        count: containers.length,
        "container.ids": ids,
        resolution: "left alone; restart with --force to remove them",
      });
      return containers.flatMap((c) => c.Labels[JOB_LABEL] ?? []);
    }
    for (const c of containers) {
      this.#log.log({
        at: "remove_leftover",
        "container.id": c.Id.slice(0, 12),
      });
      await this.#docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch((err: unknown) => {
          this.#log.log({ at: "remove_leftover", err: engineMessage(err) });
        });
    }
    return [];
  }

  /** Stops watching the engine's events. */
  close(): Promise<void> {
    this.#watcher.close();
    this.#removals.close();
    return Promise.resolve();
  }
}

// The job's files as an earlier daemon left them, a torn last chunk cut
// off; a job whose start never got as far as its files gets new ones.
function openOutput(dir: string, log: Context): JobOutput {
  const onError = (err: unknown) =>
    log.log({
      at: "output_error",
      err: errorMessage(err),
      resolution: "dropping output",
    });
  if (!existsSync(join(dir, INDEX_FILE))) return new JobOutput(dir, onError);
  return JobOutput.resume(dir, onError);
}

// Why a job has no container: never created, or removed behind our back.
function goneReason(job: JobRecord): string {
  return job.status === "starting"
    ? "The daemon stopped before the job's container was created"
    : "The job's exit status is unknown: its container is gone " +
        "(removed while no daemon watched)";
}
