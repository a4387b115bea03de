/**
 * Whether a listen address is on loopback, reachable from this machine
 * only: `localhost`, 127.0.0.0/8 (also as an IPv4-mapped IPv6 address) and
 * ::1. Wildcards (0.0.0.0, ::) are not.
 */
import { isIPv4, isIPv6 } from "node:net";

/** See the module comment. */
export function isLoopback(address: string): boolean {
  const host = address.toLowerCase();
  if (host === "localhost") return true;
  if (isIPv4(host)) return host.startsWith("127.");
  if (!isIPv6(host)) return false;
  if (host.startsWith("::ffff:")) return isLoopback(host.slice(7));
  return /^(0{0,4}:){2,7}0{0,3}1$/.test(host) || host === "::1";
}
