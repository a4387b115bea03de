/**
 * Parsers for command-line values shared by the commands. Each throws a
 * ValidationError naming the flag.
 */
import { ValidationError } from "../errors.js";
import { DEFAULT_HOST_URL } from "../host/client.js";

/** Commander reducer for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `host:port`, `[v6]:port` or `:port` (loopback). */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535) {
    throw new ValidationError(
      `Invalid --listen "${text}": expected host:port, e.g. 127.0.0.1:1113`,
      "listen",
    );
  }
  return { host: match[1] ?? (match[2] || "127.0.0.1"), port };
}

/** A non-negative whole number of milliseconds. */
export function parseMs(text: string, flag: string): number {
  if (!/^\d{1,10}$/.test(text)) {
    throw new ValidationError(
      `Invalid ${flag} "${text}": expected a whole number of milliseconds`,
      flag.replace(/^-+/, ""),
    );
  }
  return Number(text);
}

/** A count from min (default 0) to max. */
export function parseCount(
  text: string,
  flag: string,
  max: number,
  min = 0,
): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > max || n < min) {
    throw new ValidationError(
      `Invalid ${flag} "${text}": expected a whole number from ${min} to ${max}`,
      flag.replace(/^-+/, ""),
    );
  }
  return n;
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
  const url = flag ?? process.env.LORNE_HOST ?? DEFAULT_HOST_URL;
  return /^https?:\/\//.test(url) ? url : `http://${url}`;
}
