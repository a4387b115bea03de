/**
 * How a container ended, read from the engine's inspect data. The engine
 * (and the init it runs as PID 1) reports death by signal N as exit code
 * 128 + N, so codes 129-192 that name a known signal are recorded as that
 * signal with an unknown exit status, the way the process backend records
 * a process killed by a signal. A program that itself exits with such a
 * code is recorded the same way; the engine gives no way to tell apart.
 */
import { constants as osConstants } from "node:os";

import type { ExitInfo } from "../../state.js";

export interface ContainerState {
  Running?: boolean;
  Restarting?: boolean;
  ExitCode?: number;
  OOMKilled?: boolean;
  Status?: string;
  Pid?: number;
  /** RFC 3339; the zero time ("0001-01-01T...") while never ended. */
  FinishedAt?: string;
}

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(osConstants.signals).map(([name, n]) => [n, name]),
);

/** Whether the container's process is still alive. */
export function isRunning(state: ContainerState): boolean {
  return state.Running === true || state.Restarting === true;
}

/** The exit of a container that is no longer running. */
export function exitFromState(state: ContainerState): ExitInfo {
  const exit = exitFromCode(state.ExitCode ?? null, state.OOMKilled === true);
  // The engine's own end time: a container that ended while no daemon
  // watched is recorded as ending then, not when a daemon noticed.
  const finished = Date.parse(state.FinishedAt ?? "");
  if (Number.isFinite(finished) && finished > 0) {
    exit.endedAt = new Date(finished).toISOString();
  }
  return exit;
}

/** The exit for an exit code from the engine (inspect or wait). */
export function exitFromCode(code: number | null, oomKilled = false): ExitInfo {
  if (code !== null && code > 128 && code <= 128 + 64) {
    const signal = SIGNAL_NAMES.get(code - 128);
    if (signal !== undefined) {
      return { exitStatus: null, signal, oomKilled };
    }
  }
  return { exitStatus: code, signal: null, oomKilled };
}
