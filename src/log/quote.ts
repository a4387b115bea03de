/**
 * Quoting of keys and string values, the hot path of formatting.
 *
 * Safe mode quotes a value that is empty, is "nil", starts with `'`, or
 * holds a space, `=`, `"`, a control character (C0, DEL, C1), U+2028/9 or a
 * lone surrogate. Inside quotes `\` `"` `\n` `\r` `\t` are escaped and the
 * other characters of that list become `\u00XX`/`\uXXXX`, so a record is
 * always one line and `parse` reads every value back exactly.
 * `escapeControls` applies the same escapes to text shown on a terminal.
 *
 * grohl mode reproduces grohl's quoting byte for byte, defects included.
 */

/** Key encodings kept before the cache is emptied (bounds memory). */
const KEY_CACHE_LIMIT = 2048;

const keyCache = new Map<string, string>();

/** Safe-mode text for a string value. */
export function quoteSafe(s: string): string {
  const length = s.length;
  if (length === 0) return '""';
  if (s === "nil") return '"nil"';

  let quote = s.charCodeAt(0) === 0x27; // `'` would read as a quote
  let backslash = false;
  for (let i = 0; i < length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x22 && c < 0x7f) {
      if (c === 0x3d) quote = true;
      else if (c === 0x5c) backslash = true;
    } else if (c === 0x20) {
      quote = true;
    } else if (c === 0x22 || needsEscape(c)) {
      return escapeQuoted(s);
    } else if (c >= 0xd800 && c <= 0xdfff) {
      if (!isPairAt(s, i)) return escapeQuoted(s);
      i++;
    }
  }

  if (!quote) return s;
  return backslash ? escapeQuoted(s) : '"' + s + '"';
}

/** `s` in double quotes with the safe-mode escapes applied. */
export function escapeQuoted(s: string): string {
  return '"' + escapeChars(s, true) + '"';
}

/**
 * `s` with control characters (C0, DEL, C1), U+2028/U+2029 and lone
 * surrogates written as `\n` `\r` `\t` `\uXXXX`; every other character,
 * `\` and `"` included, stays as it is. For showing untrusted text on a
 * terminal: the result holds nothing a terminal acts on and no line break.
 * It cannot be read back exactly (a `\n` in `s` looks like an escape).
 */
export function escapeControls(s: string): string {
  return escapeChars(s, false);
}

/**
 * Safe-mode key: spaces, `=`, `"`, control characters, U+2028/9 and lone
 * surrogates become `_`; an empty key becomes `_`. Encodings are cached.
 */
export function encodeKey(key: string): string {
  const cached = keyCache.get(key);
  if (cached !== undefined) return cached;

  const encoded = key.length === 0 ? "_" : replaceInKey(key);
  if (keyCache.size >= KEY_CACHE_LIMIT) keyCache.clear();
  keyCache.set(key, encoded);
  return encoded;
}

/**
 * grohl's quoting: a value with a space gets its backslashes doubled and
 * goes in `"` (escaping `"` when it also has `'`) or in `'` when it only has
 * `"`; else a value with `=` goes in `"` unescaped; else it is raw, so a
 * newline splits the record. An empty string is `nil`.
 */
export function quoteGrohl(s: string): string {
  if (s.length === 0) return "nil";
  if (s.includes(" ")) {
    const hasSingle = s.includes("'");
    const hasDouble = s.includes('"');
    const doubled = s.replaceAll("\\", "\\\\");
    if (hasSingle && hasDouble) {
      return '"' + doubled.replaceAll('"', '\\"') + '"';
    }
    if (hasDouble) return "'" + doubled + "'";
    return '"' + doubled + '"';
  }
  if (s.includes("=")) return '"' + s + '"';
  return s;
}

function replaceInKey(key: string): string {
  let out = "";
  let last = 0;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    let bad: boolean;
    if (c >= 0xd800 && c <= 0xdfff) {
      if (isPairAt(key, i)) {
        i++;
        continue;
      }
      bad = true;
    } else {
      bad = c === 0x20 || c === 0x3d || c === 0x22 || needsEscape(c);
    }
    if (!bad) continue;
    out += key.slice(last, i) + "_";
    last = i + 1;
  }
  return last === 0 ? key : out + key.slice(last);
}

/** Applies the escapes; `quoted` also escapes `"` and `\`. */
function escapeChars(s: string, quoted: boolean): string {
  let out = "";
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let replacement: string;
    if (c === 0x22 && quoted) replacement = '\\"';
    else if (c === 0x5c && quoted) replacement = "\\\\";
    else if (c === 0x0a) replacement = "\\n";
    else if (c === 0x0d) replacement = "\\r";
    else if (c === 0x09) replacement = "\\t";
    else if (needsEscape(c)) replacement = unicodeEscape(c);
    else if (c >= 0xd800 && c <= 0xdfff) {
      if (isPairAt(s, i)) {
        i++;
        continue;
      }
      replacement = unicodeEscape(c);
    } else continue;
    out += s.slice(last, i) + replacement;
    last = i + 1;
  }
  return last === 0 ? s : out + s.slice(last);
}

/** C0 controls, DEL, C1 controls and the two Unicode line separators. */
function needsEscape(c: number): boolean {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029;
}

/** True when a high surrogate at `i` is followed by a low surrogate. */
function isPairAt(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  if (c > 0xdbff) return false;
  const next = s.charCodeAt(i + 1);
  return next >= 0xdc00 && next <= 0xdfff;
}

function unicodeEscape(c: number): string {
  return "\\u" + c.toString(16).padStart(4, "0");
}
