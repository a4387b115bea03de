/**
 * The process backend: each job is a process on this machine, owned by a
 * `lorne shim` of its own (shim/main.ts) that writes its output files and
 * records its exit, so the job outlives the daemon. The daemon holds a
 * control connection to each shim (shim/client.ts); after a restart it
 * connects again, or reads how the job ended while it was away.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { errorMessage, ValidationError } from "../../errors.js";
import type {
  Adopted,
  AdoptRequest,
  Backend,
  BackendStatus,
  RunningJob,
  StartRequest,
} from "../backend.js";
import { jobArgv, type JobConfig } from "../job.js";
import { Semaphore } from "../limit.js";
import type { ExitInfo } from "../state.js";
import { JOB_PID_FILE, readPid } from "../statedir.js";
import { JobOutput } from "../output.js";
import { connectShim, killJobGroup, removeShimFiles } from "../shim/client.js";
import { readExitFile, readExitFileOrNull } from "../shim/exitfile.js";
import { ShimLauncher } from "../shim/launcher.js";
import {
  checkSocketPathFits,
  shimSocketDir,
  shimSocketPath,
} from "../shim/spec.js";

/**
 * Shims started at once. Each is a Node process that takes tens of
 * milliseconds of CPU to start: a burst of hundreds of starts would
 * otherwise leave the daemon (and everything else on the machine) with no
 * CPU for anything else while they all boot. The rest wait their turn.
 */
const CONCURRENT_SHIM_STARTS = 8;

const DEFAULT_PATH =
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface ProcessBackendOptions {
  /** The daemon's state dir: where the shims' sockets live. */
  stateDir: string;
  /** PATH given to jobs that set none; default: the daemon's own PATH. */
  jobPath?: string;
  /** Keep a shim started ahead (default true; tests turn it off). */
  spareShim?: boolean;
  /**
   * Opens the control connection to a job's shim; default connectShim.
   * Tests stand a failing connection in here.
   */
  connect?: typeof connectShim;
}

/** See the module comment. */
export class ProcessBackend implements Backend {
  readonly name = "process";
  readonly externalOutput = true;
  readonly #stateDir: string;
  readonly #connect: typeof connectShim;
  readonly #jobPath: string;
  readonly #launcher: ShimLauncher;
  readonly #starts = new Semaphore(CONCURRENT_SHIM_STARTS);

  constructor(options: ProcessBackendOptions) {
    checkSocketPathFits(options.stateDir);
    mkdirSync(shimSocketDir(options.stateDir), {
      recursive: true,
      mode: 0o700,
    });
    this.#stateDir = options.stateDir;
    this.#jobPath = options.jobPath ?? process.env.PATH ?? DEFAULT_PATH;
    this.#launcher = new ShimLauncher({ spare: options.spareShim });
    this.#connect = options.connect ?? connectShim;
  }

  validate(config: JobConfig): void {
    if (jobArgv(config).length === 0) {
      throw new ValidationError(
        "Invalid config.cmd: the process backend needs a command to run",
        "config.cmd",
      );
    }
    // An option only a container can honour is refused, not ignored.
    for (const field of ["image", "memory_bytes"] as const) {
      if (config[field] !== undefined) {
        throw new ValidationError(
          `Invalid config.${field}: not supported by the process backend`,
          `config.${field}`,
        );
      }
    }
  }

  status(): BackendStatus {
    return { ok: true };
  }

  async start(request: StartRequest): Promise<RunningJob> {
    const { job, output } = request;
    const socket = shimSocketPath(this.#stateDir, job.id);
    const reply = await this.#starts.run(() =>
      this.#launcher.launch({
        jobId: job.id,
        dir: output.dir,
        socket,
        argv: request.argv,
        env: { PATH: this.#jobPath, ...request.env },
        cwd: job.config.working_dir,
        tty: job.config.tty === true,
        stdin: job.config.stdin === true,
        ttySize: request.ttySize,
      }),
    );
    if (!reply.ok) throw new Error(reply.error);
    const { startedAt } = reply;
    try {
      const running = await this.#connect({
        jobId: job.id,
        hostId: job.host_id,
        socket,
        dir: output.dir,
        output,
        stdin: job.config.stdin === true,
        log: request.log,
      });
      return { ...running, startedAt };
    } catch (err) {
      // The shim started the job but its control connection failed. A
      // job that ended at once, while this daemon or the shim was held up
      // for longer than the shim waits for a daemon (seen on a loaded
      // machine), has its exit in its file: that is how it ended.
      const exit = readExitFileOrNull(output.dir);
      if (exit) {
        request.log.log({ at: "shim_gone_after_exit", err: errorMessage(err) });
        output.advanceTo(exit.position, exit.droppedBytes);
        output.end();
        return { ...endedAtStart(reply.pid, exit), startedAt };
      }
      // Otherwise nothing may run on unseen.
      killJobGroup(reply.pid, job.id, job.host_id);
      throw err;
    }
  }

  async adopt({ job, dir, log }: AdoptRequest): Promise<Adopted> {
    const output = JobOutput.view(dir);
    const ended = endedWhileAway(dir, output);
    if (ended) return ended;
    const socket = shimSocketPath(this.#stateDir, job.id);
    try {
      const running = await connectShim({
        jobId: job.id,
        hostId: job.host_id,
        socket,
        dir,
        output,
        stdin: job.config.stdin === true,
        log,
      });
      return { running, output };
    } catch (err) {
      // The shim may have finished between the look and the connect.
      const late = endedWhileAway(dir, output);
      if (late) return late;
      const pid = job.pid ?? readPid(join(dir, JOB_PID_FILE));
      if (pid !== null) killJobGroup(pid, job.id, job.host_id);
      removeShimFiles(socket, dir);
      output.end();
      return {
        exit: {
          exitStatus: null,
          signal: null,
          error: `The job's exit status is unknown: its shim is gone (${errorMessage(err)})`,
        },
        output,
      };
    }
  }

  close(): Promise<void> {
    this.#launcher.close();
    return Promise.resolve();
  }
}

// A job whose exit was known before the daemon could talk to its shim.
function endedAtStart(pid: number, exit: ExitInfo): RunningJob {
  return {
    pid,
    exited: Promise.resolve(exit),
    signal: () => undefined,
  };
}

// How a job ended while no daemon was connected, from its exit file.
function endedWhileAway(dir: string, output: JobOutput): Adopted | null {
  let exit;
  try {
    exit = readExitFile(dir);
  } catch (err) {
    output.end();
    return {
      exit: { exitStatus: null, signal: null, error: errorMessage(err) },
      output,
    };
  }
  if (!exit) return null;
  output.advanceTo(exit.position, exit.droppedBytes);
  output.end();
  return { exit, output };
}
