/**
 * Checks shared by the client's and the receiver's options: each bad value
 * becomes a ValidationError that names the option.
 */
import { ValidationError } from "../errors.js";
import { isWholeIn } from "../numbers.js";

export { MAX_MS } from "../timers.js";

/** A whole number from min to max, or a ValidationError naming `name`. */
export function whole(
  name: string,
  value: unknown,
  min: number,
  max: number,
): number {
  if (!isWholeIn(value, min, max)) {
    throw new ValidationError(
      `Invalid ${name} ${String(value)}: expected a whole number from ` +
        `${min} to ${max}`,
      name,
    );
  }
  return value;
}

/** `host:port`, with brackets around an IPv6 address. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
