/**
 * Sends a job's output to one attacher as data frames. The cursor reads
 * the output files straight into frame buffers behind a 2-byte header, so
 * each frame goes out as one WebSocket message without being copied, and
 * the buffers are used again once the socket has taken them. At most
 * FRAMES_IN_FLIGHT frames wait on the socket: an attacher that reads
 * slowly holds that much memory and no more, and the job never waits for
 * it (the rest stays on disk until the attacher catches up).
 *
 * Frames start small and double (up to MAX_FRAME_BYTES) while output is
 * waiting on disk, so a fast stream goes out in few large messages; after
 * IDLE_MS without output the buffers are let go.
 */
import type { WebSocket } from "ws";

import type { OutputCursor } from "./cursor.js";
import { DATA_HEADER_BYTES, writeDataHeader } from "./protocol.js";

const MIN_FRAME_BYTES = 64 * 1024;
const MAX_FRAME_BYTES = 256 * 1024;
/** Frames handed to the socket and not yet written out. */
const FRAMES_IN_FLIGHT = 4;
/** A wait for output this long lets the frame buffers go. */
const IDLE_MS = 1000;

/** See the module comment. */
export class FrameSender {
  readonly #ws: WebSocket;
  readonly #free: Buffer[] = [];
  #allocated = 0;
  #frameBytes = MIN_FRAME_BYTES;
  #stopped = false;
  #wake: (() => void) | null = null;

  constructor(ws: WebSocket) {
    this.#ws = ws;
  }

  /** Sends the cursor's output until it ends or `stop()` is called. */
  async send(cursor: OutputCursor): Promise<void> {
    try {
      await this.#sendAll(cursor);
    } finally {
      cursor.close();
    }
  }

  /** Ends `send()` at its next step. Idempotent. */
  stop(): void {
    this.#stopped = true;
    this.#notify();
  }

  async #sendAll(cursor: OutputCursor): Promise<void> {
    for (;;) {
      const waitStarted = performance.now();
      if (!(await cursor.wait()) || this.#stopped) return;
      if (performance.now() - waitStarted >= IDLE_MS) this.#letGo();

      const frame = await this.#take();
      if (!frame) return;
      const got = cursor.read(frame, DATA_HEADER_BYTES);
      if (!got) {
        this.#give(frame);
        continue;
      }
      // A full frame means more is waiting: use bigger ones from now on.
      if (got.bytes === frame.length - DATA_HEADER_BYTES) this.#grow();
      writeDataHeader(frame, got.stream);
      const message = frame.subarray(0, DATA_HEADER_BYTES + got.bytes);
      this.#ws.send(message, { binary: true }, () => this.#give(frame));
      // Let the event loop read the job's pipe before the next frame: a
      // fast attacher must not keep the job waiting on a full pipe.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  // A free buffer of the current size, a new one, or null once stopped.
  async #take(): Promise<Buffer | null> {
    for (;;) {
      if (this.#stopped) return null;
      const frame = this.#free.pop();
      if (frame && frame.length === this.#frameBytes) return frame;
      if (frame) this.#allocated--; // outgrown: let it go
      if (this.#allocated < FRAMES_IN_FLIGHT) {
        this.#allocated++;
        return Buffer.allocUnsafe(this.#frameBytes);
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  #give(frame: Buffer): void {
    this.#free.push(frame);
    this.#notify();
  }

  #grow(): void {
    this.#frameBytes = Math.min(this.#frameBytes * 2, MAX_FRAME_BYTES);
  }

  #letGo(): void {
    this.#allocated -= this.#free.length;
    this.#free.length = 0;
    this.#frameBytes = MIN_FRAME_BYTES;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}
