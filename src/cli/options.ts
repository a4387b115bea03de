/**
 * Parsers for command-line values shared by the commands. Each throws a
 * ValidationError naming the flag.
 */
import { isIP } from "node:net";

import { durationMs, formatDuration } from "../duration.js";
import { errorMessage, ValidationError } from "../errors.js";
import { parseWhole } from "../numbers.js";
import { MAX_MS } from "../timers.js";
import { DEFAULT_HOST_URL, type HostEndpoint } from "../host/client.js";
import { readTokenFile } from "../host/token.js";

/**
 * Token files the CLI looks for when given none: `npm start`'s state dir
 * (relative to the working directory), then the daemon's default one.
 */
export const DEFAULT_TOKEN_FILES = [
  ".lorne-state/token",
  "/var/lib/lorne/token",
];

/** Commander reducer for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/**
 * `ip:port`, `[v6]:port`, `localhost:port` or `:port` (loopback). Names
 * other than localhost are refused rather than looked up.
 */
export function parseListen(
  text: string,
  source = "--listen",
): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? (match?.[2] || "127.0.0.1");
  if (!match || port > 65535 || (host !== "localhost" && isIP(host) === 0)) {
    throw new ValidationError(
      `Invalid ${source} "${text}": expected ip:port, e.g. 127.0.0.1:1113`,
      "listen",
    );
  }
  return { host, port };
}

export { MAX_MS };

/** A whole number of milliseconds from 0 to MAX_MS. */
export function parseMs(text: string, flag: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) > MAX_MS) {
    throw new ValidationError(
      `Invalid ${flag} "${text}": expected a whole number of milliseconds ` +
        `from 0 to ${MAX_MS}`,
      flag.replace(/^-+/, ""),
    );
  }
  return Number(text);
}

/**
 * A duration such as `500ms`, `60s`, `5m`, `1h30m` or `7d` (a bare `0` too),
 * in milliseconds up to `maxMs` (default MAX_MS, the longest timer; a
 * setting that is no timer, such as a retention period, may allow more).
 */
export function parseDuration(
  text: string,
  flag: string,
  maxMs = MAX_MS,
): number {
  const ms = durationMs(text);
  if (!(ms <= maxMs)) {
    throw new ValidationError(
      `Invalid ${flag} "${text}": expected a duration such as 500ms, 60s, ` +
        `1h30m or 7d, at most ${formatDuration(maxMs)}`,
      flag.replace(/^-+/, "").replace(/^config /, ""),
    );
  }
  return ms;
}

/** A count from min (default 0) to max. */
export function parseCount(
  text: string,
  flag: string,
  max: number,
  min = 0,
): number {
  const field = flag.replace(/^-+/, "").replace(/^config /, "");
  return parseWhole(text, flag, field, { min, max });
}

/** `K=V` pairs into a map; K must be non-empty. */
export function parseEnvPairs(
  pairs: string[],
  flag: string,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) {
      throw new ValidationError(
        `Invalid ${flag} "${pair}": expected KEY=VALUE`,
        flag.replace(/^-+/, ""),
      );
    }
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

/** The host API URL: --host, then LORNE_HOST, then the default. */
export function hostUrl(flag: string | undefined): string {
  const source = flag !== undefined ? "--host" : "LORNE_HOST";
  const text = flag ?? process.env.LORNE_HOST ?? DEFAULT_HOST_URL;
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text)
    ? text
    : `http://${text}`;
  let url: URL | undefined;
  try {
    url = new URL(withScheme);
  } catch {
    url = undefined;
  }
  if (!url || url.protocol !== "http:" || url.hostname === "") {
    throw new ValidationError(
      `Invalid ${source} "${text}": expected an http URL such as http://127.0.0.1:1113`,
      "host",
    );
  }
  return url.origin;
}

/** How a client command reaches the host; see hostEndpoint. */
export interface EndpointFlags {
  host?: string;
  socket?: string;
  tokenFile?: string;
}

/**
 * Where the host is and the token to send. A Unix socket (`--socket`,
 * else LORNE_SOCKET unless `--host` is given) needs no token. Over TCP the token comes from
 * LORNE_TOKEN, else the file `--token-file` or LORNE_TOKEN_FILE names,
 * else the first of DEFAULT_TOKEN_FILES that exists. A named file that
 * cannot be read is an error; finding none is not (a host run with
 * --no-auth needs none), and a 401 then says where the CLI looked.
 */
export function hostEndpoint(flags: EndpointFlags): HostEndpoint {
  // A --host flag outranks LORNE_SOCKET, as flags outrank the environment.
  const socketPath =
    flags.socket ??
    (flags.host === undefined ? nonEmpty(process.env.LORNE_SOCKET) : undefined);
  if (socketPath !== undefined) {
    return { url: "http://localhost", socketPath };
  }
  const url = hostUrl(flags.host);
  const token = nonEmpty(process.env.LORNE_TOKEN);
  if (token !== undefined) {
    return { url, token, tokenSource: "from LORNE_TOKEN" };
  }
  const named = flags.tokenFile ?? nonEmpty(process.env.LORNE_TOKEN_FILE);
  if (named !== undefined) {
    const source =
      flags.tokenFile !== undefined ? "--token-file" : "LORNE_TOKEN_FILE";
    return {
      url,
      token: readToken(named, source),
      tokenSource: `from "${named}"`,
    };
  }
  const notes: string[] = [];
  for (const path of DEFAULT_TOKEN_FILES) {
    try {
      return { url, token: readTokenFile(path), tokenSource: `from "${path}"` };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      notes.push(code === "ENOENT" ? `no ${path}` : errorMessage(err));
    }
  }
  return {
    url,
    tokenSource:
      `none found (${notes.join("; ")}); set LORNE_TOKEN or --token-file ` +
      "to the host's <state>/token, or use --socket",
  };
}

function readToken(path: string, source: string): string {
  try {
    return readTokenFile(path);
  } catch (err) {
    throw new ValidationError(
      `Cannot read token file "${path}" (${source}): ${errorMessage(err)}`,
      "token-file",
      { cause: err },
    );
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
