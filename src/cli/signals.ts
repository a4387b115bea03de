/**
 * How lorne's long-running commands (host, scheduler, receive, ship) end:
 * on SIGTERM or SIGINT the first signal closes gracefully and exits 0, a
 * second one, while that is still going, exits 1 at once (each signal is
 * logged); a start that fails is logged, said in one line on stderr, and
 * exits 1.
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
}

/** Installs the handlers; returns what removes them. */
export function exitOnSignals(options: ShutdownOptions): () => void {
  let signals = 0;
  const shutdown = (signal: NodeJS.Signals) => {
    signals++;
    options.log.log({ at: "signal", signal });
    if (signals > 1) {
      options.force?.();
      options.logger.flushSync();
      process.exit(1);
    }
    void options.close().then((exit) => {
      if (exit === false) return;
      options.logger.flushSync();
      process.exit(0);
    });
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  return () => {
    process.off("SIGTERM", shutdown);
    process.off("SIGINT", shutdown);
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
