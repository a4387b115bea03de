/**
 * The docker backend: each job is a container named `lorne-<job id>`,
 * labelled with the host and job ids, run through the Engine API. Images
 * missing locally are pulled (shared, with a deadline); engine calls that
 * start jobs are bounded so many starts do not swamp the engine, and a
 * slow pull holds no slot. Every allocated port is published on the bind
 * address with the same number inside and out. `tini` (the engine's
 * `--init`) runs as PID 1 so signals reach the job's command.
 */
import { constants as osConstants } from "node:os";

import Docker from "dockerode";

import {
  errorMessage,
  UnavailableError,
  ValidationError,
} from "../../../errors.js";
import type { Context } from "../../../log/index.js";
import type {
  Backend,
  BackendStatus,
  RunningJob,
  StartRequest,
} from "../../backend.js";
import type { JobConfig } from "../../job.js";
import { Semaphore } from "../../limit.js";
import { ContainerJob } from "./container.js";
import {
  DEFAULT_DOCKER_SOCKET,
  DEFAULT_START_CONCURRENCY,
  HOST_LABEL,
  JOB_LABEL,
} from "./defaults.js";
import { EngineWatcher } from "./engine-events.js";
import { engineMessage, ImagePuller } from "./pull.js";

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

    this.#jobs.set(container.id, handle);
    void handle.exited.then(() => this.#jobs.delete(container.id));
    // A container that died before it was tracked is caught here.
    void handle.reconcile();
    const info = container.inspect().catch(() => null);
    return {
      pid: null,
      pidLater: info.then((i) => (i && i.State.Pid > 0 ? i.State.Pid : null)),
      address: info.then(
        (i) =>
          Object.values(i?.NetworkSettings.Networks ?? {}).find(
            (n) => n.IPAddress,
          )?.IPAddress ?? null,
      ),
      exited: handle.exited,
      signal: (signal) => handle.signal(signal),
      stdin: handle.stdin,
      resize: job.config.tty ? (size) => handle.resize(size) : undefined,
      stopSignal: await this.#stopSignal(image),
    };
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
   * Containers labelled with this host id. At start no job record explains
   * any of them (state is in memory), so with `force` they are removed;
   * otherwise they are reported.
   */
  async cleanup(force: boolean): Promise<void> {
    const containers = await this.#docker.listContainers({
      all: true,
      filters: JSON.stringify({
        label: [`${HOST_LABEL}=${this.#options.hostId}`],
      }),
    });
    if (containers.length === 0) return;
    const ids = containers.map((c) => c.Id.slice(0, 12)).join(",");
    if (!force) {
      this.#log.log({
        at: "leftover_jobs",
        count: containers.length,
        "container.ids": ids,
        resolution: "left alone; restart with --force to remove them",
      });
      return;
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
  }

  /** Stops watching the engine's events. */
  close(): Promise<void> {
    this.#watcher.close();
    return Promise.resolve();
  }
}

function containerSpec(
  request: StartRequest,
  options: DockerBackendOptions,
): Docker.ContainerCreateOptions {
  const { job, env } = request;
  const config = job.config;
  const bindIp = options.bindIp ?? "127.0.0.1";
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const port of job.ports) {
    exposed[`${port}/tcp`] = {};
    bindings[`${port}/tcp`] = [{ HostIp: bindIp, HostPort: String(port) }];
  }
  const spec: Docker.ContainerCreateOptions = {
    name: `lorne-${job.id}`,
    Image: config.image,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: { [HOST_LABEL]: options.hostId, [JOB_LABEL]: job.id },
    Tty: config.tty ?? false,
    OpenStdin: config.stdin ?? false,
    StdinOnce: config.stdin ?? false,
    AttachStdin: config.stdin ?? false,
    AttachStdout: true,
    AttachStderr: true,
    ExposedPorts: exposed,
    HostConfig: {
      Init: true,
      PortBindings: bindings,
      ...(config.memory_bytes !== undefined
        ? { Memory: config.memory_bytes, MemorySwap: config.memory_bytes }
        : {}),
    },
  };
  if (config.cmd.length > 0) spec.Cmd = config.cmd;
  if (config.entrypoint !== undefined) spec.Entrypoint = config.entrypoint;
  if (config.working_dir !== undefined) spec.WorkingDir = config.working_dir;
  return spec;
}

// An image's stop signal is a name ("SIGQUIT", "QUIT") or a number ("3").
function stopSignalOf(value: string | undefined): NodeJS.Signals {
  if (!value) return "SIGTERM";
  const byNumber = /^\d+$/.test(value)
    ? Object.entries(osConstants.signals).find(([, n]) => n === Number(value))
    : undefined;
  const upper = byNumber ? byNumber[0] : value.toUpperCase();
  const name = upper.startsWith("SIG") ? upper : `SIG${upper}`;
  return name in osConstants.signals ? (name as NodeJS.Signals) : "SIGTERM";
}
