/**
 * A strict JSON parser for manifest files. `JSON.parse` accepts the same
 * documents, but on Node 20 many of its errors carry no position, and it
 * silently keeps the last of two equal keys; this parser reports
 * `line:col` for every error and rejects duplicate keys.
 */
import { ValidationError } from "../../errors.js";

import { describeChar, positionOf } from "./position.js";
import type { TextPosition } from "./position.js";

const MAX_DEPTH = 512;
const WHITESPACE = new Set([" ", "\t", "\n", "\r"]);
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

export type JsonValue =
  null | boolean | number | string | JsonValue[] | JsonObject;

export interface JsonObject {
  [key: string]: JsonValue;
}

/** The text is not JSON; `position` says where parsing stopped. */
export class JsonSyntaxError extends ValidationError {
  readonly reason: string;
  readonly position: TextPosition;

  constructor(reason: string, text: string, offset: number) {
    const position = positionOf(text, offset);
    super(`Invalid JSON at ${position.line}:${position.col}: ${reason}`);
    this.reason = reason;
    this.position = position;
  }
}

/**
 * Parses one JSON document (RFC 8259). Objects are plain objects whose keys
 * are own data properties, so a key such as `__proto__` is kept as data.
 * Throws JsonSyntaxError.
 */
export function parseJson(text: string): JsonValue {
  return new JsonParser(text).parseDocument();
}

class JsonParser {
  private pos = 0;

  constructor(private readonly text: string) {}

  parseDocument(): JsonValue {
    this.skipWhitespace();
    const value = this.parseValue(0);
    this.skipWhitespace();
    if (this.pos < this.text.length) {
      this.fail(`unexpected ${this.found()} after the JSON value`);
    }
    return value;
  }

  private parseValue(depth: number): JsonValue {
    if (depth > MAX_DEPTH) {
      this.fail(`nesting is deeper than ${MAX_DEPTH} levels`);
    }
    const c = this.text[this.pos];
    if (c === "{") return this.parseObject(depth);
    if (c === "[") return this.parseArray(depth);
    if (c === '"') return this.parseString();
    if (c === "-" || isDigit(c)) return this.parseNumber();
    if (this.text.startsWith("true", this.pos)) return this.word(4, true);
    if (this.text.startsWith("false", this.pos)) return this.word(5, false);
    if (this.text.startsWith("null", this.pos)) return this.word(4, null);
    return this.fail(`expected a value, found ${this.found()}`);
  }

  private parseObject(depth: number): JsonObject {
    const object: JsonObject = {};
    this.pos += 1;
    this.skipWhitespace();
    if (this.text[this.pos] === "}") {
      this.pos += 1;
      return object;
    }
    for (;;) {
      if (this.text[this.pos] !== '"') {
        this.fail(`expected a string key, found ${this.found()}`);
      }
      const keyPos = this.pos;
      const key = this.parseString();
      if (Object.hasOwn(object, key)) {
        this.fail(`duplicate key ${JSON.stringify(key)}`, keyPos);
      }
      this.skipWhitespace();
      if (this.text[this.pos] !== ":") {
        this.fail(`expected ":" after the key, found ${this.found()}`);
      }
      this.pos += 1;
      this.skipWhitespace();
      const value = this.parseValue(depth + 1);
      Object.defineProperty(object, key, {
        value,
        writable: true,
        enumerable: true,
        configurable: true,
      });
      this.skipWhitespace();
      if (this.endOfList("}")) return object;
    }
  }

  private parseArray(depth: number): JsonValue[] {
    const array: JsonValue[] = [];
    this.pos += 1;
    this.skipWhitespace();
    if (this.text[this.pos] === "]") {
      this.pos += 1;
      return array;
    }
    for (;;) {
      array.push(this.parseValue(depth + 1));
      this.skipWhitespace();
      if (this.endOfList("]")) return array;
    }
  }

  /** After a member: consumes "," (false) or the closing bracket (true). */
  private endOfList(close: string): boolean {
    const c = this.text[this.pos];
    if (c !== "," && c !== close) {
      this.fail(`expected "," or "${close}", found ${this.found()}`);
    }
    this.pos += 1;
    this.skipWhitespace();
    return c === close;
  }

  private parseString(): string {
    const start = this.pos;
    let value = "";
    let chunkStart = this.pos + 1;
    for (let i = chunkStart; ; i++) {
      const code = this.text.charCodeAt(i);
      if (Number.isNaN(code)) this.fail("unterminated string", start);
      if (code === 0x22) {
        this.pos = i + 1;
        return value + this.text.slice(chunkStart, i);
      }
      if (code < 0x20) {
        const hex = code.toString(16).toUpperCase().padStart(4, "0");
        this.fail(`unescaped control character U+${hex} in a string`, i);
      }
      if (code === 0x5c) {
        value += this.text.slice(chunkStart, i);
        const [decoded, length] = this.parseEscape(i);
        value += decoded;
        i += length - 1;
        chunkStart = i + 1;
      }
    }
  }

  /** Decodes the escape at `at` (a backslash): [text, length in input]. */
  private parseEscape(at: number): [string, number] {
    const c = this.text[at + 1];
    if (c === undefined) this.fail("unterminated string", at);
    const simple = SIMPLE_ESCAPES[c];
    if (simple !== undefined) return [simple, 2];
    const hex = this.text.slice(at + 2, at + 6);
    if (c === "u" && /^[0-9A-Fa-f]{4}$/.test(hex)) {
      return [String.fromCharCode(parseInt(hex, 16)), 6];
    }
    const shown = c === "u" ? this.text.slice(at, at + 6) : `\\${c}`;
    return this.fail(`invalid escape ${JSON.stringify(shown)}`, at);
  }

  private parseNumber(): number {
    const start = this.pos;
    if (this.text[this.pos] === "-") this.pos += 1;
    if (this.text[this.pos] === "0") {
      this.pos += 1;
    } else {
      this.digits();
    }
    if (this.text[this.pos] === ".") {
      this.pos += 1;
      this.digits();
    }
    const e = this.text[this.pos];
    if (e === "e" || e === "E") {
      this.pos += 1;
      const sign = this.text[this.pos];
      if (sign === "+" || sign === "-") this.pos += 1;
      this.digits();
    }
    return Number(this.text.slice(start, this.pos));
  }

  private digits(): void {
    if (!isDigit(this.text[this.pos])) {
      this.fail(`invalid number: expected a digit, found ${this.found()}`);
    }
    while (isDigit(this.text[this.pos])) this.pos += 1;
  }

  private word<T>(length: number, value: T): T {
    this.pos += length;
    return value;
  }

  private skipWhitespace(): void {
    while (WHITESPACE.has(this.text[this.pos] ?? "")) this.pos += 1;
  }

  private found(): string {
    return describeChar(this.text, this.pos);
  }

  private fail(reason: string, offset = this.pos): never {
    throw new JsonSyntaxError(reason, this.text, offset);
  }
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}
