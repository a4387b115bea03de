/**
 * Turns single values into text before quoting: numbers (never in exponent
 * form), times, the `Float` marker, and a JSON writer for objects that
 * never throws (cycles, throwing getters and toJSON, bigints, deep nesting).
 */

/** Objects nested deeper than this are written as "[Object]"/"[Array]". */
const MAX_JSON_DEPTH = 8;

/**
 * A number that always prints with 3 decimals, even when whole (`0.000`),
 * the way grohl prints floats. The timer's `elapsed` uses it. JSON sees
 * the plain number.
 */
export class Float {
  readonly value: number;

  constructor(value: number) {
    this.value = value;
  }

  valueOf(): number {
    return this.value;
  }

  toJSON(): number {
    return this.value;
  }

  toString(): string {
    return fixed3(this.value);
  }
}

/** Marks `n` to print with 3 decimals: `float(2)` prints `2.000`. */
export function float(n: number): Float {
  return new Float(n);
}

/**
 * Integers in base 10 with every digit (1e21 prints 22 digits), other
 * numbers with 3 decimals; `NaN`, `+Inf`, `-Inf`.
 */
export function formatNumber(n: number): string {
  if (Number.isInteger(n)) {
    if (n < 1e21 && n > -1e21) return "" + n;
    return BigInt(n).toString();
  }
  return fixed3(n);
}

/** 3 decimals, never exponent form; whole huge numbers print every digit. */
export function fixed3(n: number): string {
  if (n !== n) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  if (n < 1e21 && n > -1e21) return n.toFixed(3);
  return BigInt(n).toString() + ".000";
}

/**
 * UTC time as `2026-01-02T03:04:05+0000`, or with milliseconds
 * `2026-01-02T03:04:05.678+0000`. An invalid time gives "Invalid Date".
 */
export function formatTime(ms: number, withMs: boolean): string {
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return "Invalid Date"; // NaN, out of range
  const iso = date.toISOString();
  // Slice from the end: years past 9999 make the ISO text longer.
  return (withMs ? iso.slice(0, -1) : iso.slice(0, -5)) + "+0000";
}

/** An error's message, or a placeholder when reading it throws. */
export function errorText(err: Error): string {
  try {
    const message: unknown = err.message;
    return typeof message === "string" ? message : String(message);
  } catch {
    return "[Throws]";
  }
}

/** Text for a function or symbol: `[Function: name]`, `Symbol(x)`. */
export function describeOther(value: unknown): string {
  try {
    if (typeof value === "function") {
      return value.name ? `[Function: ${value.name}]` : "[Function]";
    }
    if (typeof value === "symbol") return value.toString();
    return String(value);
  } catch {
    return "[Throws]"; // a getter or a revoked Proxy threw
  }
}

/**
 * Compact JSON that never throws: a cycle becomes "[Circular]", a throwing
 * getter or toJSON becomes "[Throws]", a bigint prints its digits, an Error
 * its message, a Map an object and a Set an array.
 */
export function safeJson(value: unknown): string {
  return writeJson(value, [], 0) ?? "null";
}

function writeJson(
  value: unknown,
  stack: object[],
  depth: number,
): string | undefined {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      return Number.isFinite(value) ? "" + value : "null";
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return value.toString();
    case "object":
      if (value === null) return "null";
      return writeObject(value, stack, depth);
    default:
      return undefined; // undefined, functions, symbols: like JSON.stringify
  }
}

function writeObject(
  value: object,
  stack: object[],
  depth: number,
): string | undefined {
  if (stack.includes(value)) return '"[Circular]"';
  stack.push(value);
  try {
    if (depth >= MAX_JSON_DEPTH) {
      return Array.isArray(value) ? '"[Array]"' : '"[Object]"';
    }
    return writeContainer(value, stack, depth + 1);
  } catch {
    return '"[Throws]"'; // a getter, a toJSON or a revoked Proxy threw
  } finally {
    stack.pop();
  }
}

function writeContainer(
  value: object,
  stack: object[],
  depth: number,
): string | undefined {
  if (value instanceof Error) return JSON.stringify(errorText(value));
  const toJSON: unknown = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") {
    return writeJson(toJSON.call(value) as unknown, stack, depth);
  }
  if (Array.isArray(value)) return writeArray(value, stack, depth);
  if (value instanceof Set) return writeArray([...value], stack, depth);
  if (value instanceof Map) {
    const entries: Record<string, unknown> = {};
    for (const [k, v] of value) entries[String(k)] = v;
    return writeFields(entries, stack, depth);
  }
  return writeFields(value, stack, depth);
}

function writeArray(items: unknown[], stack: object[], depth: number): string {
  let out = "[";
  for (let i = 0; i < items.length; i++) {
    if (i > 0) out += ",";
    out += writeJson(items[i], stack, depth) ?? "null";
  }
  return out + "]";
}

function writeFields(value: object, stack: object[], depth: number): string {
  let out = "{";
  for (const key of Object.keys(value)) {
    let field: unknown;
    try {
      field = (value as Record<string, unknown>)[key];
    } catch {
      field = "[Throws]";
    }
    const text = writeJson(field, stack, depth);
    if (text === undefined) continue;
    if (out.length > 1) out += ",";
    out += JSON.stringify(key) + ":" + text;
  }
  return out + "}";
}
