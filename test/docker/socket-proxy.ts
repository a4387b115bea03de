/**
 * A unix-socket proxy in front of the Docker engine's socket, to take the
 * engine away from a lorne host without touching dockerd: `cut()` destroys
 * every connection passing through (the host's event stream, its wait
 * calls, its attach streams), `refuse()` closes each new connection as soon
 * as it is accepted, `admit()` lets them through again. Bytes that pass
 * are not looked at.
 */
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";

import { tempDir } from "../helpers.js";

/** The engine's socket the docker CLI talks to as well. */
export const ENGINE_SOCKET = engineSocket();

export interface SocketProxy {
  /** The proxy's socket path, for `lorne host --docker-socket`. */
  path: string;
  /** Connections accepted and forwarded so far. */
  readonly forwarded: number;
  /** Connections closed at once because the proxy was refusing. */
  readonly refused: number;
  /** Destroys every connection open now, both sides. */
  cut(): void;
  /** From now on, closes each new connection as soon as it is accepted. */
  refuse(): void;
  /** From now on, forwards new connections again. */
  admit(): void;
  /** Closes the listener and every connection, and removes the socket. */
  close(): Promise<void>;
}

/** Starts a proxy from a fresh temp socket to `target`. */
export async function startSocketProxy(
  target: string = ENGINE_SOCKET,
): Promise<SocketProxy> {
  const dir = tempDir("lorne-sock-");
  const path = join(dir.path, "engine.sock");
  const sockets = new Set<Socket>();
  let refusing = false;
  let forwarded = 0;
  let refused = 0;

  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };

  const server = createServer((client) => {
    if (refusing) {
      refused++;
      client.destroy();
      return;
    }
    forwarded++;
    track(client);
    const upstream = connect(target);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.once("close", () => upstream.destroy());
    upstream.once("close", () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, resolve);
  });

  return {
    path,
    get forwarded() {
      return forwarded;
    },
    get refused() {
      return refused;
    },
    cut() {
      for (const socket of sockets) socket.destroy();
    },
    refuse() {
      refusing = true;
    },
    admit() {
      refusing = false;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      dir.remove();
    },
  };
}

// The docker CLI's own choice: a unix DOCKER_HOST, else the default path.
function engineSocket(): string {
  const host = process.env.DOCKER_HOST ?? "";
  return host.startsWith("unix://")
    ? host.slice("unix://".length)
    : "/var/run/docker.sock";
}
