/**
 * `lorne logfmt [--json | --pretty]`: reads logfmt lines on stdin and
 * writes one JSON object per line (`--json`, the default) or a readable
 * view (`--pretty`): time dimmed, `at=` bold, keys coloured, with colour
 * only on a terminal (FORCE_COLOR forces it, NO_COLOR turns it off).
 *
 * A line that is not logfmt (no `key=value` pair, an empty key or an
 * unterminated quote) becomes `{"_raw":"<line>"}` with --json and passes
 * through with --pretty. Blank lines are skipped with --json.
 *
 * The lines come from jobs, so they are not trusted: --pretty never lets a
 * control character (C0, DEL, C1), U+2028/9 or a lone surrogate reach the
 * terminal raw. Values (`now` included) are requoted as safe logfmt, and
 * keys and pass-through lines have those characters escaped (`\u001b`),
 * so every input line is one output line and only our colours are codes.
 */
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";

import { Option, type Command } from "commander";

import {
  escapeControls,
  quoteSafe,
  tryParse,
  type ParsedRecord,
} from "../log/index.js";

const RESET = "\x1b[0m";
const DIM = "\x1b[2m";
const BOLD = "\x1b[1m";
const BOLD_RED = "\x1b[1;31m";
const CYAN = "\x1b[36m";

/** How `lorne logfmt` writes each line. */
export interface ConvertOptions {
  output: "json" | "pretty";
  /** ANSI colours in pretty output. */
  color: boolean;
}

export function register(program: Command): void {
  program
    .command("logfmt")
    .description("Convert logfmt lines on stdin to JSON or a readable view")
    .addOption(
      new Option("--json", "one JSON object per line (default)").conflicts(
        "pretty",
      ),
    )
    .addOption(new Option("--pretty", "a readable view, coloured on a TTY"))
    .action(async (flags: { json?: boolean; pretty?: boolean }) => {
      const output = flags.pretty === true ? "pretty" : "json";
      const color = useColor(process.stdout, process.env);
      await convertStream(process.stdin, process.stdout, { output, color });
    });
}

/**
 * Converts every line of `input` to `output`, honouring backpressure.
 * Ends quietly when the reader of `output` goes away (EPIPE); other write
 * errors are thrown. The error listener stays on `output` so that a late
 * failure cannot crash the process.
 */
export async function convertStream(
  input: Readable,
  output: Writable,
  options: ConvertOptions,
): Promise<void> {
  const lines = createInterface({ input, crlfDelay: Infinity });
  let failure: Error | undefined;
  output.on("error", (err: Error) => {
    failure ??= err;
    lines.close();
  });

  for await (const line of lines) {
    const text = convertLine(line, options);
    if (text === undefined) continue;
    if (!output.write(text + "\n")) await writable(output);
    if (failure !== undefined) break;
  }
  if (failure !== undefined && !isBrokenPipe(failure)) throw failure;
}

/** One input line as output text (no newline); undefined to skip it. */
export function convertLine(
  line: string,
  options: ConvertOptions,
): string | undefined {
  const record = tryParse(line);
  if (options.output === "pretty") {
    if (record === undefined) return escapeControls(line);
    return pretty(record, options.color);
  }
  if (record !== undefined) return JSON.stringify(record);
  return line.trim().length === 0 ? undefined : JSON.stringify({ _raw: line });
}

/**
 * Colour on when FORCE_COLOR is set (unless "0" or "false"), off when
 * NO_COLOR is set and not empty or TERM is "dumb", else when a TTY.
 */
export function useColor(
  stream: { isTTY?: boolean },
  env: NodeJS.ProcessEnv,
): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== "0" && force !== "false";
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.TERM === "dumb") return false;
  return stream.isTTY === true;
}

/** `now` first (value only), then `at=`, then the other pairs in order. */
function pretty(record: ParsedRecord, color: boolean): string {
  const paint = (code: string, text: string): string =>
    color ? code + text + RESET : text;
  const parts: string[] = [];

  const now = record.now;
  if (typeof now === "string") parts.push(paint(DIM, display(now)));
  const at = record.at;
  if (at !== undefined) {
    const code = at === "exception" ? BOLD_RED : BOLD;
    parts.push(paint(code, at === true ? "at" : "at=" + display(at)));
  }
  for (const [key, value] of Object.entries(record)) {
    if (key === "at" || (key === "now" && typeof now === "string")) continue;
    const name = paint(CYAN, escapeControls(key));
    parts.push(value === true ? name : name + "=" + display(value));
  }
  return parts.join(" ");
}

/** A value as safe logfmt, except that `nil` stays bare for reading. */
function display(value: string): string {
  return value === "nil" ? value : quoteSafe(value);
}

/** Resolves when `output` drains, fails or closes (never rejects). */
function writable(output: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      output.off("drain", done);
      output.off("error", done);
      output.off("close", done);
      resolve();
    };
    output.on("drain", done);
    output.on("error", done);
    output.on("close", done);
  });
}

function isBrokenPipe(err: Error): boolean {
  return (err as NodeJS.ErrnoException).code === "EPIPE";
}
