/**
 * The project's error hierarchy. Every error a caller may branch on has a
 * stable `code`; callers test codes or classes, never message text. The HTTP
 * layer maps codes to statuses in exactly one place (host/api/errors.ts).
 *
 * Messages follow one grammar: sentence case, no trailing period, what failed
 * then why, e.g. `Cannot open offsets file "x": permission denied`.
 */

export type ErrorCode =
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "validation_error"
  | "protocol_error"
  | "unavailable"
  | "forbidden"
  | "unauthorized"
  | "rate_limited"
  | "internal";

export interface LorneErrorOptions {
  cause?: unknown;
}

/** Base class: an error with a stable machine-readable code. */
export class LorneError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: LorneErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The thing asked for does not exist. */
export class NotFoundError extends LorneError {
  constructor(message: string, options?: LorneErrorOptions) {
    super("not_found", message, options);
  }
}

/** The path exists, but not for this method; `allowed` lists those it has. */
export class MethodNotAllowedError extends LorneError {
  readonly allowed: readonly string[];

  constructor(
    message: string,
    allowed: readonly string[],
    options?: LorneErrorOptions,
  ) {
    super("method_not_allowed", message, options);
    this.allowed = allowed;
  }
}

/** The thing to create exists already, or the request clashes with state. */
export class ConflictError extends LorneError {
  constructor(message: string, options?: LorneErrorOptions) {
    super("conflict", message, options);
  }
}

/**
 * Input (an API body, a config file, a manifest, a CLI flag) is invalid.
 * `field` names the offending field as a path, e.g. `config.tcp_ports`.
 */
export class ValidationError extends LorneError {
  readonly field: string | undefined;

  constructor(message: string, field?: string, options?: LorneErrorOptions) {
    super("validation_error", message, options);
    this.field = field;
  }
}

/** A peer broke a wire protocol (a bad frame, an unexpected ack). */
export class ProtocolError extends LorneError {
  constructor(message: string, options?: LorneErrorOptions) {
    super("protocol_error", message, options);
  }
}

/** The request is refused whoever sends it (a browser's cross-site call). */
export class ForbiddenError extends LorneError {
  constructor(message: string, options?: LorneErrorOptions) {
    super("forbidden", message, options);
  }
}

/** The request carries no valid credentials (the host API's token). */
export class UnauthorizedError extends LorneError {
  constructor(message: string, options?: LorneErrorOptions) {
    super("unauthorized", message, options);
  }
}

/**
 * Too many requests of one kind are in progress; `retryAfterS` says when
 * to try again.
 */
export class RateLimitedError extends LorneError {
  readonly retryAfterS: number;

  constructor(
    message: string,
    retryAfterS: number,
    options?: LorneErrorOptions,
  ) {
    super("rate_limited", message, options);
    this.retryAfterS = retryAfterS;
  }
}

/** A dependency (a backend, a remote server) cannot be reached right now. */
export class UnavailableError extends LorneError {
  constructor(message: string, options?: LorneErrorOptions) {
    super("unavailable", message, options);
  }
}

/** Describes any thrown value as text, for logs and error messages. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** A short reason for a failed file system call ("no such file"). */
export function describeFsError(err: unknown): string {
  const code =
    typeof err === "object" && err !== null && "code" in err
      ? err.code
      : undefined;
  switch (code) {
    case "ENOENT":
      return "no such file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "ENOTDIR":
      return "a part of the path is not a directory";
    case "ELOOP":
      return "too many symbolic links";
    case "EISDIR":
      return "is a directory";
    default:
      return errorMessage(err);
  }
}
