/**
 * A loopback TCP proxy with a gate, to make an image pull as slow as a test
 * needs: connections are accepted at once, but no byte passes either way
 * until `release()`. Once released, bytes flow untouched.
 */
import { connect, createServer, type Socket } from "node:net";

export interface GatedProxy {
  port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Opens the gate: held and future connections go through. */
  release(): void;
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

/** Starts a proxy from 127.0.0.1:<free port> to 127.0.0.1:`targetPort`. */
export async function startGatedProxy(targetPort: number): Promise<GatedProxy> {
  let open = false;
  let connections = 0;
  const held: Socket[] = [];
  const sockets = new Set<Socket>();

  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };

  const forward = (client: Socket) => {
    const upstream = connect(targetPort, "127.0.0.1");
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.once("close", () => upstream.destroy());
    upstream.once("close", () => client.destroy());
    client.resume();
  };

  const server = createServer({ pauseOnConnect: true }, (client) => {
    connections++;
    track(client);
    if (open) forward(client);
    else held.push(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  if (typeof address !== "object" || address === null) {
    throw new Error("Cannot read the proxy's address");
  }

  return {
    port: address.port,
    get connections() {
      return connections;
    },
    release() {
      open = true;
      for (const client of held.splice(0)) {
        if (!client.destroyed) forward(client);
      }
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
