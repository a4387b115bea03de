/**
 * Opening an etcd client the way every cluster part needs it: endpoints
 * checked up front, a deadline on every unary call so an unreachable etcd
 * fails a command instead of hanging it, and one error that names the
 * endpoints tried. Watches and lease keep-alives are streams and carry no
 * deadline.
 */
import { Etcd3, type IOptions } from "etcd3";

import { errorMessage, UnavailableError } from "../errors.js";

/** Deadline of one etcd request (a get, a put, a transaction). */
export const DEFAULT_CALL_TIMEOUT_MS = 5_000;

export interface EtcdOptions {
  endpoints: string[];
  /** Default DEFAULT_CALL_TIMEOUT_MS. */
  callTimeoutMs?: number;
}

/** Opens a client; nothing is sent until the first call. */
export function openEtcd(options: EtcdOptions): Etcd3 {
  const timeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const settings: IOptions = {
    hosts: options.endpoints,
    dialTimeout: timeoutMs,
    // gRPC's default reconnect backoff grows to minutes; an etcd member
    // that comes back should be used again within a lease TTL.
    grpcOptions: {
      "grpc.initial_reconnect_backoff_ms": 200,
      "grpc.max_reconnect_backoff_ms": 1_000,
    },
    defaultCallOptions: (context) =>
      context.isStream ? {} : { deadline: Date.now() + timeoutMs },
  };
  return new Etcd3(settings);
}

/**
 * Asks etcd for its status, so that a daemon or a command finds out at
 * once, with a clear message, that etcd cannot be reached.
 */
export async function checkEtcd(
  client: Etcd3,
  endpoints: string[],
): Promise<void> {
  try {
    await client.maintenance.status({});
  } catch (err) {
    throw unreachable(endpoints, err);
  }
}

/** The error every cluster part reports when etcd does not answer. */
export function unreachable(endpoints: string[], err: unknown): Error {
  return new UnavailableError(
    `Cannot reach etcd at ${endpoints.join(",")}: ${oneLine(err)}`,
    { cause: err },
  );
}

// gRPC messages carry a status code prefix and, at times, several lines.
// grpc-js wraps the socket error in a longer sentence; keep the cause.
function oneLine(err: unknown): string {
  const text = errorMessage(err).replace(/^\d+ [A-Z_]+: /, "");
  const last =
    /Last error: (?:Error: )?(.*?)\.?(?: Resolution note:.*)?$/s.exec(text);
  return (last?.[1] ?? text).split("\n")[0] || "no answer";
}
