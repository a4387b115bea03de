/**
 * lorne/log: structured logfmt logging in the manner of grohl, made safe.
 * Contexts carry data and log records through a Logger; `format` and
 * `parse` convert between records and logfmt lines. See docs/log.md.
 */
export type {
  Data,
  ErrorReporter,
  FormatMode,
  Logger,
  Statter,
  TimeUnit,
} from "./types.js";

export { format, lineFormatter, TimeText } from "./format.js";
export type { FormatOptions, LineFormatter } from "./format.js";
export { parse, tryParse } from "./parse.js";
export type { ParsedRecord } from "./parse.js";
export { quoteSafe, quoteGrohl, encodeKey, escapeControls } from "./quote.js";
export { Float, float, formatNumber, formatTime, safeJson } from "./value.js";

export { Context } from "./context.js";
export type { ContextOptions } from "./context.js";
export { Timer } from "./timer.js";
export { reportRecords, isReportable } from "./report.js";
export { joinBucket } from "./statter.js";

export { StreamLogger, stdoutLogger } from "./stream.js";
export type { StreamLoggerOptions } from "./stream.js";
export { MemoryLogger } from "./memory.js";
export type { MemoryLoggerOptions } from "./memory.js";
export { BufferedLogger } from "./buffered.js";
export type { BufferedLoggerOptions } from "./buffered.js";
export { StatsdStatter } from "./statsd.js";
export type { StatsdStatterOptions } from "./statsd.js";
export type { SinkOptions } from "./sink.js";

export {
  addContext,
  counter,
  defaultContext,
  deleteContext,
  gauge,
  log,
  newContext,
  newTimer,
  report,
  resetDefaultContext,
  setErrorReporter,
  setLogger,
  setStatter,
  setTimeUnit,
  timing,
} from "./default.js";
