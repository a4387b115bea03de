/**
 * The API's Unix socket listener. The socket file is the access control
 * (no token is asked there), so it is created with mode 0600: the umask is
 * narrowed around listen(2), which creates the file, so there is no moment
 * when another user could connect, and the mode is set again afterwards.
 * A socket file left by a daemon that died is replaced; one that still
 * answers is refused.
 */
import { chmodSync, lstatSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { connect } from "node:net";

import { ConflictError, errorMessage, ValidationError } from "../../errors.js";

/** Listens on `path`; see the module comment. Removes the file on close. */
export async function listenSocket(
  server: Server,
  path: string,
): Promise<void> {
  await removeStale(path);
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    throw new ValidationError(
      `Cannot listen on socket "${path}": ${errorMessage(err)}`,
      "socket",
      { cause: err },
    );
  } finally {
    process.umask(umask);
  }
  chmodSync(path, 0o600);
  // node:net unlinks the file itself when a Unix socket server closes.
}

async function removeStale(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) {
    throw new ValidationError(
      `Cannot listen on socket "${path}": a file that is not a socket is there`,
      "socket",
    );
  }
  if (await answers(path)) {
    throw new ConflictError(
      `Cannot listen on socket "${path}": another server is listening on it`,
    );
  }
  rmSync(path, { force: true });
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
