/**
 * The shim's own log. Every line goes to shim.log in the job's directory
 * and, as a LOG frame, to the daemon, so what matters to an operator
 * (dropped output, a fallback) shows in the daemon's log too.
 */
import type { Socket } from "node:net";

import {
  BufferedLogger,
  safeJson,
  type Data,
  type Logger,
} from "../../log/index.js";
import { encodeFrame, FRAME } from "./protocol.js";

/** Log lines kept for the first daemon to connect. */
const MAX_QUEUED_LOG_LINES = 100;

/**
 * The shim's log: every line goes to shim.log, and to the daemon too, so
 * what matters to an operator (dropped output, a fallback) shows in the
 * daemon's own log. Lines logged before a daemon connects wait for it.
 */
export class ShimLogger implements Logger {
  readonly file: BufferedLogger;
  readonly #queued: Buffer[] = [];
  #controls: ReadonlySet<Socket> = new Set();

  constructor(path: string) {
    this.file = new BufferedLogger({ path });
  }

  log(data: Data): void {
    this.file.log(data);
    // The daemon logs the job's start and exit itself.
    if (data.at === "start" || data.at === "exit") return;
    const { now: _now, app: _app, "job.id": _job, ...rest } = data;
    const frame = encodeFrame(FRAME.log, safeJson(rest));
    if (this.#controls.size === 0) {
      if (this.#queued.length < MAX_QUEUED_LOG_LINES) this.#queued.push(frame);
      return;
    }
    for (const control of this.#controls) control.write(frame);
  }

  /** Starts sending to these connections, queued lines first. */
  connect(controls: ReadonlySet<Socket>, first: Socket): void {
    this.#controls = controls;
    for (const frame of this.#queued.splice(0)) first.write(frame);
  }
}
