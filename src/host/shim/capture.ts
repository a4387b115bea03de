/**
 * How `lorne shim` reads its job's stdout and stderr. Each stream is
 * a connected pair of Unix stream sockets, which is what Node's own `pipe`
 * stdio is as well: the job gets one end, the shim reads the other. The
 * difference is the read side: the shim's end reads straight into one
 * buffer that every job shares (`onread`), so a read takes up to 512 KiB
 * instead of Node's 64 KiB and allocates nothing. Bigger reads mean fewer
 * system calls, fewer output writes and index records per MB, and no
 * garbage for the collector to chase.
 *
 * Sharing the buffer is safe because reads run one at a time on the event
 * loop and each chunk is handed to `onChunk`, which must be done with it
 * before returning (JobOutput writes it to disk synchronously).
 *
 * A pair is made by listening on a socket in a fresh directory that only
 * this user can enter (mkdtemp makes it 0700), connecting, and accepting;
 * the directory is removed at once. One set of pairs is made ahead, so
 * starting a job does not wait for it. When that fails (no writable temp
 * dir, a path too long), the backend falls back to Node's pipes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import type { OutputStream } from "../output.js";
import { MAX_SOCKET_PATH_BYTES } from "./spec.js";

/** Size of the read buffer all jobs share. */
const READ_BUFFER_BYTES = 512 * 1024;
/** Longest the local connect and accept may take. */
const SETUP_TIMEOUT_MS = 5000;

let sharedBuffer: Buffer | undefined;

/** The two ends of one stream's socket pair. */
export interface CapturePair {
  /** Given to the job as its stdout or stderr; close it once spawned. */
  jobEnd: Socket;
  /** Read by the shim; emits `close` once the job's end is closed. */
  reader: Socket;
}

export type Captures = Record<OutputStream, CapturePair>;

// Where a set's readers send their chunks; set when a job takes the set.
type Sink = (stream: OutputStream, chunk: Buffer) => void;

interface CaptureSet {
  captures: Captures;
  route: { sink: Sink | null };
}

/**
 * Makes socket pairs for jobs; see the module comment. One set is kept
 * ready, so a job's start does not wait for the sockets to be made.
 */
export class CaptureSockets {
  #spare: Promise<CaptureSet> | null = null;
  #closed = false;

  /**
   * Hands out a socket pair per output stream, whose readers hand every
   * chunk to `onChunk` (valid only during the call). Rejects when the
   * pairs cannot be made; nothing is left open then.
   */
  async open(onChunk: Sink): Promise<Captures> {
    const spare = this.#spare;
    this.#spare = null;
    const set = (await spare?.catch(() => null)) ?? (await makeSet());
    set.route.sink = onChunk;
    if (this.#spare === null && !this.#closed) {
      // Made once the caller has started its job, not before.
      this.#spare = new Promise<CaptureSet>((resolve, reject) =>
        setImmediate(() => void makeSet().then(resolve, reject)),
      );
      this.#spare.catch(() => undefined); // the next open makes its own
    }
    return set.captures;
  }

  /** Starts making a set ahead of the first `open()`. */
  prepare(): void {
    if (this.#spare !== null || this.#closed) return;
    this.#spare = makeSet();
    this.#spare.catch(() => undefined); // open() makes its own
  }

  /** Closes the set kept ready. Idempotent. */
  close(): void {
    this.#closed = true;
    void this.#spare?.then(
      ({ captures }) => destroy(captures),
      () => null,
    );
    this.#spare = null;
  }
}

// The directory lives only while the set is made, so at most the one
// being made is left behind should the shim be killed.
async function makeSet(): Promise<CaptureSet> {
  const dir = mkdtempSync(join(tmpdir(), "lorne-capture-"));
  try {
    const route: CaptureSet["route"] = { sink: null };
    const made = await Promise.allSettled(
      (["stdout", "stderr"] as const).map((stream) =>
        makePair(join(dir, stream), (chunk) => route.sink?.(stream, chunk)),
      ),
    );
    const [stdout, stderr] = made;
    if (stdout?.status === "fulfilled" && stderr?.status === "fulfilled") {
      return {
        captures: { stdout: stdout.value, stderr: stderr.value },
        route,
      };
    }
    for (const result of made) {
      if (result.status === "fulfilled") destroyPair(result.value);
    }
    throw made.find((r) => r.status === "rejected")?.reason;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function makePair(
  path: string,
  onChunk: (chunk: Buffer) => void,
): Promise<CapturePair> {
  // Node would cut a longer path short, to a name outside the directory.
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new Error(`Cannot listen on "${path}": the path is too long`);
  }
  const server = createServer({ pauseOnConnect: true });
  try {
    await listen(server, path);
    return await accept(server, path, onChunk);
  } finally {
    server.close();
  }
}

function destroy(captures: Captures): void {
  destroyPair(captures.stdout);
  destroyPair(captures.stderr);
}

function destroyPair(pair: CapturePair): void {
  pair.jobEnd.destroy();
  pair.reader.destroy();
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

// Connects a reader and takes the connection the server accepts for it:
// the only one, as nobody else may enter the directory.
function accept(
  server: Server,
  path: string,
  onChunk: (chunk: Buffer) => void,
): Promise<CapturePair> {
  sharedBuffer ??= Buffer.allocUnsafe(READ_BUFFER_BYTES);
  const reader = connect({
    path,
    onread: {
      buffer: sharedBuffer,
      callback: (bytes: number, buffer: Uint8Array) => {
        onChunk(Buffer.from(buffer.buffer, buffer.byteOffset, bytes));
        return true;
      },
    },
  });
  // A read error ends the stream like end-of-file: the job's output ends.
  reader.on("error", () => undefined);
  return new Promise<CapturePair>((resolve, reject) => {
    let jobEnd: Socket | null = null;
    let connected = false;
    const settle = () => {
      if (!connected || jobEnd === null) return;
      cleanup();
      resolve({ jobEnd, reader });
    };
    const onConnection = (socket: Socket) => {
      socket.on("error", () => undefined);
      jobEnd = socket;
      settle();
    };
    const onConnect = () => {
      connected = true;
      settle();
    };
    const fail = (err: Error) => {
      cleanup();
      reader.destroy();
      jobEnd?.destroy();
      reject(err);
    };
    const timer = setTimeout(
      () => fail(new Error("Cannot connect the output socket: timed out")),
      SETUP_TIMEOUT_MS,
    );
    const cleanup = () => {
      clearTimeout(timer);
      server.off("connection", onConnection);
      reader.off("connect", onConnect);
      reader.off("error", fail);
    };
    server.once("connection", onConnection);
    reader.once("connect", onConnect);
    reader.once("error", fail);
  });
}
