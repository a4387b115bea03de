/**
 * One job's container, from attach to removal. The output stream is
 * attached before the container starts, so no byte is missed, and
 * demultiplexed into the job's output files. The exit is learned from
 * whichever comes first: the engine's wait call (retried while the engine
 * is away), a `die` event, or a reconcile after the event stream came
 * back. Once known, the rest of the output is drained, the files are
 * closed, the exit is written to the job's exit.json (durably: a daemon
 * that dies before recording it finds it there once the container is
 * gone), the container is removed (unless kept), and then the exit is
 * reported.
 *
 * Output the attach stream missed (the engine went away, or the daemon
 * crashed and a new one takes the container over with `resume()`) is read
 * again from the engine's log, skipping as many bytes of each stream as
 * the files already hold. The log is followed (not re-attached), so no
 * byte written between the replay and the live part is lost. Known limit:
 * the json-file log driver ends a job's last line with a newline even when
 * the job wrote none; if that line was captured live before the stream
 * was lost, the files get that one extra newline.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { PassThrough, Writable } from "node:stream";

import type Docker from "dockerode";

import { errorMessage } from "../../../errors.js";
import type { Context } from "../../../log/index.js";
import { streamStdin, type JobStdin, type TtySize } from "../../backend.js";
import type { JobOutput, OutputStream } from "../../output.js";
import type { ExitInfo } from "../../state.js";
import { writeExitFile } from "../../shim/exitfile.js";
import { exitFromCode, exitFromState, isRunning } from "./exit.js";
import type { PendingRemovals } from "./removals.js";

/** How long to wait for the output stream to end after the exit. */
const DRAIN_MS = 2_000;
const WAIT_RETRY_MS = 500;
const SIGKILL_EXIT = 128 + 9;
const VANISHED = "Container vanished: removed outside lorne";

export interface ContainerJobOptions {
  docker: Docker;
  container: Docker.Container;
  output: JobOutput;
  tty: boolean;
  stdin: boolean;
  keep: boolean;
  /** Where removals the engine refused wait to be tried again. */
  removals: PendingRemovals;
  log: Context;
}

/** See the module comment. */
export class ContainerJob {
  readonly id: string;
  readonly exited: Promise<ExitInfo>;
  /** The container's stdin, when it was created with one. */
  stdin: JobStdin | undefined;
  readonly #options: ContainerJobOptions;
  #resolveExit!: (exit: ExitInfo) => void;
  #streamEnded: Promise<void> = Promise.resolve();
  #streamLost = false;
  #finishing = false;
  #started = false;
  #exit: ExitInfo | null = null;

  constructor(options: ContainerJobOptions) {
    this.#options = options;
    this.id = options.container.id;
    this.exited = new Promise((resolve) => (this.#resolveExit = resolve));
  }

  /** How the job ended, once the exit has been reported. */
  get exit(): ExitInfo | null {
    return this.#exit;
  }

  /** Attaches the output stream; call before starting the container. */
  async attach(): Promise<void> {
    const { container, stdin } = this.#options;
    // With stdin the connection is hijacked: one duplex for both ways.
    const stream = await container.attach({
      stream: true,
      stdout: true,
      stderr: true,
      stdin,
      hijack: stdin,
    });
    // Half-closing the hijacked connection (stdin's end) closes the
    // container's stdin: the container is created with StdinOnce.
    if (stdin) this.stdin = streamStdin(stream);
    this.#read(stream, { stdout: 0, stderr: 0 });
  }

  // Demultiplexes `stream` into the job's output, first dropping `skip`
  // bytes per stream (bytes already captured, when the engine replays).
  #read(
    stream: NodeJS.ReadableStream,
    skip: Record<OutputStream, number>,
  ): void {
    const { docker, output, tty } = this.#options;
    const sink = (name: OutputStream) =>
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          const drop = Math.min(skip[name], chunk.length);
          skip[name] -= drop;
          output.write(name, drop > 0 ? chunk.subarray(drop) : chunk);
          done();
        },
      });
    if (tty) stream.pipe(sink("stdout"));
    else docker.modem.demuxStream(stream, sink("stdout"), sink("stderr"));
    this.#streamEnded = new Promise((resolve) => {
      const ended = () => {
        void this.#checkStream().then(resolve);
      };
      stream.once("end", ended);
      stream.once("close", ended);
      stream.once("error", ended);
    });
  }

  // The output stream ended: fine if the container has stopped, otherwise
  // (the engine went away) output may be missing until it is fetched again.
  async #checkStream(): Promise<void> {
    try {
      const info = await this.#options.container.inspect();
      this.#streamLost = isRunning(info.State);
    } catch {
      this.#streamLost = true;
    }
    if (this.#streamLost) {
      this.#options.log.log({
        at: "output_stream_lost",
        resolution: "refetch",
      });
    }
  }

  // Gets what the engine holds beyond what was captured: live again while
  // the container runs, or the rest of its log once it has exited.
  async #recoverOutput(follow: boolean): Promise<void> {
    if (!this.#streamLost) return;
    this.#streamLost = false;
    const { container, output } = this.#options;
    const skip = {
      stdout: output.bytes("stdout"),
      stderr: output.bytes("stderr"),
    };
    try {
      const stream = follow
        ? await container.logs({ follow: true, stdout: true, stderr: true })
        : await container.logs({
            follow: false,
            stdout: true,
            stderr: true,
          });
      if (Buffer.isBuffer(stream)) {
        const source = new PassThrough();
        this.#read(source, skip);
        source.end(stream);
      } else {
        this.#read(stream, skip);
      }
      this.#options.log.log({ at: "output_recovered", follow });
    } catch (err) {
      this.#streamLost = true;
      this.#options.log.log({ at: "output_recover", err: errorMessage(err) });
    }
  }

  /** Starts the container and begins watching for its exit. */
  async start(): Promise<void> {
    await this.#options.container.start();
    this.#started = true;
    void this.#watchWait();
  }

  /**
   * Takes over a container an earlier daemon started (after its crash):
   * running, its output goes on from where the files end and its exit is
   * watched as for a new job; ended, the rest of its output is collected,
   * it is removed (unless kept) and `exit` is set before this resolves.
   * The engine closed its stdin when the earlier daemon's attach went away.
   */
  async resume(): Promise<void> {
    this.#started = true;
    this.#streamLost = true;
    await this.reconcile();
    if (!this.#finishing) void this.#watchWait();
  }

  /** Changes a TTY container's terminal size; errors are only logged. */
  resize(size: TtySize): void {
    this.#options.container
      .resize({ h: size.rows, w: size.cols })
      .catch((err: unknown) => {
        this.#options.log.log({ at: "resize", err: errorMessage(err) });
      });
  }

  /** Sends a signal; errors (already gone, engine away) are only logged. */
  signal(signal: NodeJS.Signals): void {
    this.#options.container.kill({ signal }).catch((err: unknown) => {
      this.#options.log.log({ at: "signal", signal, err: errorMessage(err) });
    });
  }

  /**
   * Inspects the container and finishes the job if it is no longer
   * running. Safe to call any number of times, from any trigger.
   */
  async reconcile(): Promise<void> {
    if (this.#finishing || !this.#started) return;
    try {
      const info = await this.#options.container.inspect();
      if (!isRunning(info.State)) await this.#finish(exitFromState(info.State));
      else await this.#recoverOutput(true);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) {
        await this.#finish({
          exitStatus: null,
          signal: null,
          error: VANISHED,
        });
      }
      // Otherwise the engine is away; the watcher will reconcile again.
    }
  }

  /** Removes a container that never started (its start failed). */
  async discard(): Promise<void> {
    this.#options.output.end();
    await this.#remove();
  }

  // The wait call is the fastest way to learn the exit; if the engine goes
  // away mid-wait it is retried, and events or a reconcile may win instead.
  async #watchWait(): Promise<void> {
    while (!this.#finishing) {
      try {
        const result = (await this.#options.container.wait()) as {
          StatusCode?: number;
        };
        await this.#reconcileWith(result.StatusCode ?? null);
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, WAIT_RETRY_MS));
      }
    }
  }

  // The wait result lacks the OOM flag; an OOM kill is a SIGKILL (137), so
  // only then inspect for it, falling back to the code alone on failure.
  async #reconcileWith(code: number | null): Promise<void> {
    if (this.#finishing) return;
    if (code !== SIGKILL_EXIT) return this.#finish(exitFromCode(code));
    try {
      const info = await this.#options.container.inspect();
      await this.#finish(exitFromState(info.State));
    } catch (err) {
      const gone = (err as { statusCode?: number }).statusCode === 404;
      await this.#finish(
        gone ? { ...exitFromCode(code), error: VANISHED } : exitFromCode(code),
      );
    }
  }

  async #finish(exit: ExitInfo): Promise<void> {
    if (this.#finishing) return;
    this.#finishing = true;
    await this.#recoverOutput(false);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#streamEnded,
      new Promise((resolve) => (timer = setTimeout(resolve, DRAIN_MS))),
    ]);
    clearTimeout(timer);
    const failure =
      exit.exitStatus === 127 ? initFailure(this.#options.output) : null;
    this.#options.output.end();
    this.#exit = failure ? { ...exit, error: failure } : exit;
    // Removed before the exit is reported: whoever learns the job ended
    // finds no container left behind. The container held the only other
    // record of the exit, so it is written down first.
    if (!this.#options.keep) this.#recordExit(this.#exit);
    await this.#remove();
    this.#resolveExit(this.#exit);
  }

  #recordExit(exit: ExitInfo): void {
    const { output, log } = this.#options;
    try {
      writeExitFile(output.dir, {
        ...exit,
        oomKilled: exit.oomKilled === true,
        endedAt: exit.endedAt ?? new Date().toISOString(),
        position: output.position(),
        droppedBytes: output.droppedBytes,
      });
    } catch (err) {
      log.log({
        at: "exit_file_error",
        err: errorMessage(err),
        resolution: "a crash before the exit is recorded loses it",
      });
    }
  }

  async #remove(): Promise<void> {
    if (this.#options.keep) return;
    const { removals, container, log } = this.#options;
    await removals.remove(container, log);
  }
}

/**
 * The init's own message when it could not run the command (it then exits
 * 127): `[FATAL tini (7)] exec /x failed: No such file or directory`.
 */
function initFailure(output: JobOutput): string | null {
  let head = "";
  try {
    const fd = openSync(output.path("stderr"), "r");
    try {
      const buffer = Buffer.alloc(512);
      head = buffer
        .subarray(0, readSync(fd, buffer, 0, 512, 0))
        .toString("utf8");
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
  const match = /^\[FATAL tini \(\d+\)\] (exec .* failed: [^\n]*)/.exec(head);
  return match ? `Cannot start command: ${match[1]}` : null;
}
