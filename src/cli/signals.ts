/**
 * How lorne's long-running commands (host, scheduler, receive, ship) end:
 * SIGTERM, SIGINT or SIGHUP closes gracefully and exits 0; a second
 * SIGTERM or SIGINT, while that is still going, exits 1 at once (each
 * signal is logged); a start that fails is logged, said in one line on
 * stderr, and exits 1. A command that writes a file logrotate may rotate
 * reopens it on SIGHUP instead (`reopen`).
 *
 * SIGHUP closes like SIGTERM because its default, an exit with status 129
 * and no clean stop, is what a closed terminal or a stray `kill -HUP`
 * would otherwise get.
 */
import { errorMessage } from "../errors.js";
import type { Context } from "../log/index.js";

export interface ShutdownOptions {
  /** Where `at=signal` is logged. */
  log: Context;
  /** Flushed before every exit. */
  logger: { flushSync(): void };
  /**
   * The graceful close. Resolving with `false` leaves the exit to
   * someone else (a start that failed reports and exits by itself).
   */
  close: () => Promise<boolean | void>;
  /** Called on a second signal, before exiting 1. */
  force?: () => void;
  /**
   * What SIGHUP does instead of closing: reopen output files after a
   * rotation. It reports its own errors and never rejects.
   */
  reopen?: () => Promise<void>;
}

/** Installs the handlers; returns what removes them. */
export function exitOnSignals(options: ShutdownOptions): () => void {
  let closing = false;
  const close = () => {
    closing = true;
    void options.close().then((exit) => {
      if (exit === false) return;
      options.logger.flushSync();
      process.exit(0);
    });
  };
  const shutdown = (signal: NodeJS.Signals) => {
    options.log.log({ at: "signal", signal });
    if (!closing) return close();
    options.force?.();
    options.logger.flushSync();
    process.exit(1);
  };
  // A closed terminal may send two hangups (the kernel's and the shell's):
  // SIGHUP never forces, only a second SIGTERM or SIGINT does.
  const { reopen } = options;
  const hangup = (signal: NodeJS.Signals) => {
    options.log.log({ at: "signal", signal });
    if (closing) return;
    if (reopen === undefined) close();
    else void reopen();
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  process.on("SIGHUP", hangup);
  return () => {
    process.off("SIGTERM", shutdown);
    process.off("SIGINT", shutdown);
    process.off("SIGHUP", hangup);
  };
}

/**
 * Ends a command whose start failed: `at=exit status=error` in its log,
 * then `lorne COMMAND: message` on stderr, exit status 1 (or `status`).
 */
export function exitOnStartError(
  command: string,
  log: Context,
  logger: { flushSync(): void },
  err: unknown,
  status = 1,
): never {
  log.log({ at: "exit", status: "error", err: errorMessage(err) });
  logger.flushSync();
  process.stderr.write(`lorne ${command}: ${errorMessage(err)}\n`);
  process.exit(status);
}
