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
export { quoteSafe, quoteGrohl, encodeKey } from "./quote.js";
export { Float, float, formatNumber, formatTime, safeJson } from "./value.js";
