/**
 * Splits template text into literal text and actions (`{{ ... }}`), and each
 * action into tokens. Trim markers and comments are handled here, so the
 * parser sees only text and token lists.
 *
 * As in Go, `{{- ` trims the whitespace before the action and ` -}}` the
 * whitespace after it; the space next to the dash is required (`{{-3}}` is
 * the number -3). A comment `{{/* ... *\/}}` must fill its whole action.
 */
import { TemplateError } from "./errors.js";

const LEFT_DELIM = "{{";
const RIGHT_DELIM = "}}";
const SPACE = /^[ \t\r\n]$/;
const WORD_CHAR = /^[\p{L}\p{Nd}_]$/u;
const WORD_START = /^[\p{L}_]$/u;
const NUMBER_CHAR = /^[\p{L}\p{Nd}_.+-]$/u;

export type TokenKind =
  | "field" // .Name
  | "dot" // .
  | "ident" // a function name or keyword
  | "number"
  | "string" // "..." or `...`, value decoded
  | "pipe"
  | "lparen"
  | "rparen";

export interface Token {
  readonly kind: TokenKind;
  /** Field name without its dot, decoded string, or the source text. */
  readonly value: string;
  readonly pos: number;
  readonly end: number;
  /** Whitespace separates this token from the one before it. */
  readonly spaceBefore: boolean;
}

export type Segment =
  | { readonly kind: "text"; readonly text: string }
  | {
      readonly kind: "action";
      readonly pos: number;
      readonly tokens: readonly Token[];
    };

/** Lexes a whole template; throws TemplateError. */
export function lex(source: string, name?: string): Segment[] {
  return new Lexer(source, name).run();
}

class Lexer {
  private pos = 0;
  private actionPos = 0;
  private readonly segments: Segment[] = [];

  constructor(
    private readonly source: string,
    private readonly name: string | undefined,
  ) {}

  run(): Segment[] {
    let trimNext = false;
    while (this.pos < this.source.length) {
      const start = this.source.indexOf(LEFT_DELIM, this.pos);
      let text = this.source.slice(this.pos, start === -1 ? undefined : start);
      if (trimNext) text = text.replace(/^[ \t\r\n]+/, "");
      if (start === -1) {
        this.pushText(text);
        break;
      }

      const trimLeft =
        this.source[start + 2] === "-" && isSpace(this.source[start + 3]);
      this.pushText(trimLeft ? text.replace(/[ \t\r\n]+$/, "") : text);
      this.actionPos = start;
      this.pos = start + (trimLeft ? 3 : 2);
      const commentAt = this.pos + (trimLeft ? 1 : 0);
      trimNext = this.source.startsWith("/*", commentAt)
        ? this.lexComment(commentAt)
        : this.lexAction();
    }
    return this.segments;
  }

  private pushText(text: string): void {
    if (text !== "") this.segments.push({ kind: "text", text });
  }

  /** Skips a comment action; returns whether it ends with a trim marker. */
  private lexComment(at: number): boolean {
    const close = this.source.indexOf("*/", at + 2);
    if (close === -1) this.fail("unclosed comment", this.actionPos);
    this.pos = close + 2;
    const trimRight = this.atRightDelim();
    if (trimRight === undefined) {
      this.fail(`comment must end right before "${RIGHT_DELIM}"`);
    }
    return trimRight;
  }

  /** Lexes one action's tokens; returns whether it ends with a trim marker. */
  private lexAction(): boolean {
    const tokens: Token[] = [];
    for (;;) {
      const spaceStart = this.pos;
      while (isSpace(this.source[this.pos])) this.pos += 1;
      const spaceBefore = this.pos > spaceStart;
      const trimRight =
        spaceBefore && this.source.startsWith(`-${RIGHT_DELIM}`, this.pos);
      if (trimRight || this.source.startsWith(RIGHT_DELIM, this.pos)) {
        this.pos += trimRight ? 3 : 2;
        this.segments.push({ kind: "action", pos: this.actionPos, tokens });
        return trimRight;
      }
      if (this.pos >= this.source.length) {
        this.fail("unclosed action", this.actionPos);
      }

      const token = this.lexToken(spaceBefore);
      tokens.push(token);
      this.checkTerminator(token);
    }
  }

  /** Consumes "}}" (false) or " -}}" (true) if either is next. */
  private atRightDelim(): boolean | undefined {
    if (this.source.startsWith(RIGHT_DELIM, this.pos)) {
      this.pos += 2;
      return false;
    }
    const trim = `-${RIGHT_DELIM}`;
    if (
      isSpace(this.source[this.pos]) &&
      this.source.startsWith(trim, this.pos + 1)
    ) {
      this.pos += 4;
      return true;
    }
    return undefined;
  }

  private lexToken(spaceBefore: boolean): Token {
    const start = this.pos;
    const c = this.source[start] ?? "";
    const next = this.source[start + 1] ?? "";
    const token = (kind: TokenKind, end: number, value?: string): Token => {
      this.pos = end;
      const text = this.source.slice(start, end);
      return { kind, value: value ?? text, pos: start, end, spaceBefore };
    };

    if (c === "|") return token("pipe", start + 1);
    if (c === "(") return token("lparen", start + 1);
    if (c === ")") return token("rparen", start + 1);
    if (c === '"') return token("string", ...this.quoted(start));
    if (c === "`") return token("string", ...this.rawQuoted(start));
    if (c === "." && WORD_START.test(next)) {
      const end = this.scan(start + 1, WORD_CHAR);
      return token("field", end, this.source.slice(start + 1, end));
    }
    if (c === "." && !isDigit(next)) return token("dot", start + 1);
    if (c === "." || c === "+" || c === "-" || isDigit(c)) {
      return token("number", this.scan(start + 1, NUMBER_CHAR));
    }
    if (WORD_START.test(c)) return token("ident", this.scan(start, WORD_CHAR));
    if (c === "'") this.fail("character constants are not supported");
    if (c === "$") this.fail("variables are not supported");
    return this.fail(`unexpected ${JSON.stringify(c)} in action`);
  }

  /** Requires a token to be followed by a space, a bracket, "|" or "}}". */
  private checkTerminator(token: Token): void {
    if (token.kind === "pipe" || token.kind === "lparen") return;
    const c = this.source[this.pos];
    if (c === undefined || isSpace(c) || "|().".includes(c)) return;
    if (this.source.startsWith(RIGHT_DELIM, this.pos)) return;
    const text = this.source.slice(token.pos, token.end);
    this.fail(
      `unexpected ${JSON.stringify(c)} after ${JSON.stringify(text)}`,
      this.pos,
    );
  }

  /** Scans a double-quoted string: [end, decoded value]. */
  private quoted(start: number): [number, string] {
    let value = "";
    for (let i = start + 1; ;) {
      const c = this.source[i];
      if (c === undefined || c === "\n") {
        this.fail("unterminated quoted string", start);
      }
      if (c === '"') return [i + 1, value];
      if (c !== "\\") {
        value += c;
        i += 1;
        continue;
      }
      const [decoded, length] = decodeEscape(this.source, i);
      if (decoded === undefined) {
        const shown = this.source.slice(i, i + length);
        this.fail(`invalid escape ${JSON.stringify(shown)} in string`, i);
      }
      value += decoded;
      i += length;
    }
  }

  /** Scans a raw string; like Go, drops carriage returns from its value. */
  private rawQuoted(start: number): [number, string] {
    const close = this.source.indexOf("`", start + 1);
    if (close === -1) this.fail("unterminated raw quoted string", start);
    const value = this.source.slice(start + 1, close).replaceAll("\r", "");
    return [close + 1, value];
  }

  private scan(from: number, chars: RegExp): number {
    let end = from;
    while (end < this.source.length && chars.test(this.source[end] ?? "")) {
      end += 1;
    }
    return end;
  }

  private fail(reason: string, offset = this.pos): never {
    throw new TemplateError(reason, this.source, offset, this.name);
  }
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  "\\": "\\",
  '"': '"',
};
const CODE_ESCAPES: Readonly<Record<string, [number, number, number]>> = {
  // escape letter: [digits, radix, largest value allowed]
  x: [2, 16, 0x7f],
  u: [4, 16, 0xffff],
  U: [8, 16, 0x10ffff],
};
const OCTAL_ESCAPE: [number, number, number] = [3, 8, 0o177];

/**
 * Decodes Go's escape at `at` (a backslash): [text or undefined if invalid,
 * length]. `\x` and octal escapes are bytes in Go, so only ASCII is taken.
 */
function decodeEscape(
  source: string,
  at: number,
): [string | undefined, number] {
  const c = source[at + 1] ?? "";
  const simple = SIMPLE_ESCAPES[c];
  if (simple !== undefined) return [simple, 2];
  const octal = c >= "0" && c <= "7";
  const code = CODE_ESCAPES[c] ?? (octal ? OCTAL_ESCAPE : undefined);
  if (code === undefined) return [undefined, 2];

  const [digits, radix, max] = code;
  const first = octal ? at + 1 : at + 2;
  const pattern = radix === 8 ? /^[0-7]*/ : /^[0-9A-Fa-f]*/;
  const text = pattern.exec(source.slice(first, first + digits))?.[0] ?? "";
  const length = first + text.length - at;
  const value = parseInt(text, radix);
  const valid =
    text.length === digits &&
    value <= max &&
    (value < 0xd800 || value > 0xdfff);
  return [valid ? String.fromCodePoint(value) : undefined, length];
}

function isSpace(c: string | undefined): boolean {
  return c !== undefined && SPACE.test(c);
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}
