/**
 * Test peers on 127.0.0.1 port 0: a scripted Lumberjack server whose acks
 * each test writes by hand (to act like Logstash, go-lumber or a broken
 * server), and a raw client that sends bytes and records what comes back.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

import {
  encodeFrame,
  FrameDecoder,
  type Frame,
  type Version,
} from "../../src/lumberjack/index.js";

/** One window of events as the scripted server read it. */
export interface PeerBatch {
  version: Version;
  window: number;
  seqs: number[];
  events: Frame[];
  /** Connection number, from 1. */
  connection: number;
  /** Writes an ack frame of the batch's version. */
  ack(seq: number): void;
  socket: Socket;
}

export interface ScriptedPeer {
  port: number;
  batches: PeerBatch[];
  /** Connections accepted so far. */
  connections: number;
  /** Resolves when connection `n` (from 1) has closed. */
  closedConnections: number;
  close(): Promise<void>;
}

/** A server that calls `onBatch` for each window it fully reads. */
export async function startPeer(
  onBatch: (batch: PeerBatch) => void,
  onConnection?: (socket: Socket) => void,
): Promise<ScriptedPeer> {
  const sockets = new Set<Socket>();
  const peer: ScriptedPeer = {
    port: 0,
    batches: [],
    connections: 0,
    closedConnections: 0,
    close: () => closeServer(server, sockets),
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    const connection = ++peer.connections;
    socket.on("close", () => {
      sockets.delete(socket);
      peer.closedConnections++;
    });
    socket.on("error", () => {});
    onConnection?.(socket);
    const decoder = new FrameDecoder();
    let window = 0;
    let events: Frame[] = [];
    socket.on("data", (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        if (frame.type === "window") {
          window = frame.size;
          events = [];
          continue;
        }
        if (frame.type !== "data" && frame.type !== "json") continue;
        events.push(frame);
        if (events.length < window) continue;
        const version = frame.version;
        const batch: PeerBatch = {
          version,
          window,
          seqs: events.map((e) => (e.type === "ack" ? 0 : seqOf(e))),
          events,
          connection,
          socket,
          ack: (seq) => {
            if (!socket.destroyed) {
              socket.write(encodeFrame({ type: "ack", version, seq }));
            }
          },
        };
        events = [];
        peer.batches.push(batch);
        onBatch(batch);
      }
    });
  });
  await new Promise<void>((resolve) =>
    server.listen({ host: "127.0.0.1", port: 0 }, resolve),
  );
  const address = server.address();
  peer.port = typeof address === "object" && address ? address.port : 0;
  return peer;
}

function seqOf(frame: Frame): number {
  return "seq" in frame ? frame.seq : 0;
}

/** A plain server (no protocol) for connect and write tests. */
export async function startRawServer(
  onConnection: (socket: Socket) => void,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve) =>
    server.listen({ host: "127.0.0.1", port: 0 }, resolve),
  );
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : 0,
    close: () => closeServer(server, sockets),
  };
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** What a raw client saw: the frames the server sent, and the close. */
export interface RawExchange {
  acks: Frame[];
  /** Bytes that did not decode as frames, if any. */
  garbage: boolean;
  /** Whether the server closed the connection before `timeoutMs`. */
  closed: boolean;
}

/**
 * Connects, writes `chunks` one by one, optionally half-closes, and
 * collects the frames the server sends until it closes the connection or
 * `timeoutMs` passes.
 */
export function exchange(
  port: number,
  chunks: Buffer[],
  options: { end?: boolean; timeoutMs?: number } = {},
): Promise<RawExchange> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    const decoder = new FrameDecoder();
    const result: RawExchange = { acks: [], garbage: false, closed: false };
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(result);
    }, options.timeoutMs ?? 2000);
    socket.on("data", (chunk: Buffer) => {
      try {
        result.acks.push(...decoder.push(chunk));
      } catch {
        result.garbage = true;
      }
    });
    socket.on("error", () => {});
    socket.on("end", () => socket.end());
    socket.on("close", () => {
      clearTimeout(timer);
      result.closed = true;
      resolve(result);
    });
    socket.once("connect", () => {
      for (const chunk of chunks) socket.write(chunk);
      if (options.end !== false) socket.end();
    });
  });
}
