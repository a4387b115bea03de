/**
 * A small method + path router: patterns like `/jobs/:id`, parameters
 * decoded and handed to the handler. Unknown paths are `not_found`; a known
 * path with another method is `not_found` too, naming the allowed methods.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

import { MethodNotAllowedError, NotFoundError } from "../../errors.js";

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
}

export type Handler = (ctx: RouteContext) => Promise<void> | void;

interface Route {
  method: string;
  pattern: string;
  parts: string[];
  handler: Handler;
}

/** See the module comment. */
export class Router {
  readonly #routes: Route[] = [];

  on(method: string, pattern: string, handler: Handler): this {
    this.#routes.push({ method, pattern, parts: split(pattern), handler });
    return this;
  }

  /** Finds the handler for a request; throws NotFoundError when none. */
  match(
    method: string,
    pathname: string,
  ): { handler: Handler; params: Record<string, string>; pattern: string } {
    const parts = split(pathname);
    const allowed: string[] = [];
    for (const route of this.#routes) {
      const params = matchParts(route.parts, parts);
      if (!params) continue;
      if (route.method === method) {
        return { handler: route.handler, params, pattern: route.pattern };
      }
      allowed.push(route.method);
    }
    if (allowed.length > 0) {
      throw new MethodNotAllowedError(
        `No route for ${method} ${pathname}: allowed ${allowed.join(", ")}`,
        allowed,
      );
    }
    throw new NotFoundError(`No route for ${method} ${pathname}`);
  }
}

function split(path: string): string[] {
  return path.split("/").filter((p) => p !== "");
}

function matchParts(
  pattern: string[],
  parts: string[],
): Record<string, string> | null {
  if (pattern.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const want = pattern[i] as string;
    const got = parts[i] as string;
    if (want.startsWith(":")) {
      try {
        params[want.slice(1)] = decodeURIComponent(got);
      } catch {
        return null;
      }
    } else if (want !== got) {
      return null;
    }
  }
  return params;
}
