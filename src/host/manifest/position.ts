/**
 * Line and column of an offset in a text, for error messages that point at
 * the problem in a manifest file or in one of its templates.
 */

/** Where something is in a text: a 0-based offset, 1-based line and column. */
export interface TextPosition {
  readonly offset: number;
  readonly line: number;
  readonly col: number;
}

/**
 * Finds the line and column of `offset` (UTF-16 code units) in `text`.
 * Lines end at "\n", so "\r\n" counts once; columns count code units.
 */
export function positionOf(text: string, offset: number): TextPosition {
  const clamped = Math.max(0, Math.min(offset, text.length));
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf("\n"); i !== -1 && i < clamped;) {
    line += 1;
    lineStart = i + 1;
    i = text.indexOf("\n", lineStart);
  }
  return { offset: clamped, line, col: clamped - lineStart + 1 };
}

/** Quotes one character found in the input, or names the end of input. */
export function describeChar(text: string, offset: number): string {
  const code = text.codePointAt(offset);
  if (code === undefined) return "end of input";
  return JSON.stringify(String.fromCodePoint(code));
}
