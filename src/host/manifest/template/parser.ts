/**
 * Parses a template into its tree (see ast.ts). Everything that can be known
 * without data is checked here, so a bad template fails when a manifest is
 * loaded rather than when a service starts: syntax, unknown functions,
 * function arity, unclosed or stray `if`/`else`/`end`, arguments given
 * to values that cannot take them, and nesting deeper than MAX_NESTING.
 */
import { MAX_NESTING, TOO_DEEP } from "./ast.js";
import type {
  Command,
  FieldName,
  IfBranch,
  Node,
  Operand,
  Pipeline,
  Template,
} from "./ast.js";
import { TemplateError } from "./errors.js";
import { BUILTINS, arityProblem } from "./functions.js";
import { lex } from "./lexer.js";
import type { Segment, Token } from "./lexer.js";

const UNSUPPORTED = new Set([
  "range",
  "with",
  "define",
  "template",
  "block",
  "break",
  "continue",
  "nil",
]);

/** Parses template text; throws TemplateError with the problem's position. */
export function parseTemplate(source: string, name?: string): Template {
  const parser = new Parser(source, name, lex(source, name));
  return { name, source, nodes: parser.parseTop() };
}

type ListEnd =
  | { readonly kind: "eof" }
  | { readonly kind: "end" | "else"; readonly pos: number }
  | { readonly kind: "else if"; readonly pos: number; condition: Pipeline };

class Parser {
  private index = 0;
  /** The current action's tokens and the cursor into them. */
  private tokens: readonly Token[] = [];
  private cursor = 0;
  /** How many `if` blocks and parentheses enclose the current token. */
  private depth = 0;

  constructor(
    private readonly source: string,
    private readonly name: string | undefined,
    private readonly segments: readonly Segment[],
  ) {}

  parseTop(): Node[] {
    const [nodes, end] = this.parseList();
    if (end.kind !== "eof") {
      this.fail(`unexpected {{ ${end.kind} }}`, end.pos);
    }
    return nodes;
  }

  /** Parses nodes up to the end of input or an `end`/`else` action. */
  private parseList(): [Node[], ListEnd] {
    const nodes: Node[] = [];
    for (; this.index < this.segments.length; this.index++) {
      const segment = this.segments[this.index] as Segment;
      if (segment.kind === "text") {
        nodes.push(segment);
        continue;
      }
      this.tokens = segment.tokens;
      this.cursor = 0;
      const first = this.tokens[0];
      const keyword = first?.kind === "ident" ? first.value : undefined;
      if (keyword === "end" || keyword === "else") {
        this.cursor = 1;
        return [nodes, this.parseListEnd(keyword, segment.pos)];
      }
      if (keyword === "if") {
        this.cursor = 1;
        nodes.push(this.nested(segment.pos, () => this.parseIf(segment.pos)));
        continue;
      }
      if (first === undefined) this.fail("empty action", segment.pos);
      const pipeline = this.parsePipeline("action");
      nodes.push({ kind: "action", pos: segment.pos, pipeline });
    }
    return [nodes, { kind: "eof" }];
  }

  private parseListEnd(keyword: "end" | "else", pos: number): ListEnd {
    const next = this.tokens[this.cursor];
    if (keyword === "else" && next?.kind === "ident" && next.value === "if") {
      this.cursor += 1;
      this.index += 1;
      return { kind: "else if", pos, condition: this.condition(next.pos) };
    }
    if (next !== undefined) {
      this.fail(`unexpected ${this.quote(next)} after "${keyword}"`, next.pos);
    }
    this.index += 1;
    return { kind: keyword, pos };
  }

  /** Parses from after `{{ if` through the matching `{{ end }}`. */
  private parseIf(pos: number): Node {
    const branches: IfBranch[] = [];
    let condition = this.condition(pos);
    this.index += 1;
    for (;;) {
      const [body, end] = this.parseList();
      branches.push({ condition, body });
      if (end.kind === "eof")
        this.fail('unclosed "if": missing {{ end }}', pos);
      if (end.kind === "end") {
        this.index -= 1;
        return { kind: "if", pos, branches, otherwise: undefined };
      }
      if (end.kind === "else if") {
        condition = end.condition;
        continue;
      }
      const [otherwise, last] = this.parseList();
      if (last.kind === "eof")
        this.fail('unclosed "if": missing {{ end }}', pos);
      if (last.kind !== "end") {
        this.fail(`unexpected {{ ${last.kind} }} after {{ else }}`, last.pos);
      }
      this.index -= 1;
      return { kind: "if", pos, branches, otherwise };
    }
  }

  private condition(pos: number): Pipeline {
    if (this.cursor >= this.tokens.length) {
      this.fail('missing condition for "if"', pos);
    }
    return this.parsePipeline("action");
  }

  /** Parses commands joined by "|" up to the action's end or a ")". */
  private parsePipeline(context: "action" | "paren"): Pipeline {
    const pos = this.tokens[this.cursor]?.pos ?? 0;
    const commands: Command[] = [];
    for (;;) {
      commands.push(this.parseCommand(commands.length > 0));
      const token = this.tokens[this.cursor];
      if (token?.kind === "pipe") {
        this.cursor += 1;
        continue;
      }
      if (context === "action" && token !== undefined) {
        this.fail(`unexpected ${this.quote(token)}`, token.pos);
      }
      return { pos, commands };
    }
  }

  private parseCommand(piped: boolean): Command {
    const pos = this.tokens[this.cursor]?.pos ?? 0;
    const operands: Operand[] = [];
    for (;;) {
      const token = this.tokens[this.cursor];
      if (token === undefined || token.kind === "pipe") break;
      if (token.kind === "rparen") break;
      if (operands.length > 0 && !token.spaceBefore) {
        this.fail(`missing space before ${this.quote(token)}`, token.pos);
      }
      operands.push(this.parseOperand());
    }

    const head = operands[0];
    if (head === undefined) this.missingCommand(piped);
    const argCount = operands.length - 1 + (piped ? 1 : 0);
    this.checkHead(head, argCount, piped);
    for (const operand of operands.slice(1)) this.checkHead(operand, 0, false);
    return { pos, operands };
  }

  private missingCommand(piped: boolean): never {
    const next = this.tokens[this.cursor];
    const pipe = this.tokens[this.cursor - 1];
    if (piped && pipe !== undefined) {
      this.fail('missing command after "|"', pipe.pos);
    }
    const where = next === undefined ? "" : ` before ${this.quote(next)}`;
    this.fail(`missing command${where}`, next?.pos ?? this.actionEnd());
  }

  /** Rejects calls that cannot work whatever the data. */
  private checkHead(head: Operand, argCount: number, piped: boolean): void {
    if (head.kind === "function") {
      const problem = arityProblem(
        head.name,
        BUILTINS.get(head.name)!,
        argCount,
      );
      if (problem !== undefined) this.fail(problem, head.pos);
    } else if (head.kind !== "field" && argCount > 0) {
      const text = JSON.stringify(this.source.slice(head.pos, head.end));
      const reason = piped
        ? `cannot pipe into ${text}: it is not a function or method`
        : `cannot give arguments to ${text}: it is not a function or method`;
      this.fail(reason, head.pos);
    }
  }

  private parseOperand(): Operand {
    const token = this.tokens[this.cursor] as Token;
    this.cursor += 1;
    const { pos, end } = token;
    let operand: Operand;
    if (token.kind === "field") {
      this.cursor -= 1;
      return this.fieldNames(undefined, pos);
    } else if (token.kind === "lparen") {
      const pipeline = this.nested(pos, () => this.parsePipeline("paren"));
      const close = this.tokens[this.cursor];
      if (close?.kind !== "rparen") this.fail("unclosed left paren", pos);
      this.cursor += 1;
      const next = this.tokens[this.cursor];
      if (next?.kind === "field" && !next.spaceBefore) {
        return this.fieldNames(pipeline, pos);
      }
      return { kind: "paren", pos, end: close.end, pipeline };
    } else if (token.kind === "dot") {
      operand = { kind: "dot", pos, end };
    } else if (token.kind === "string") {
      operand = { kind: "literal", pos, end, value: token.value };
    } else if (token.kind === "number") {
      operand = { kind: "literal", pos, end, value: this.number(token) };
    } else if (token.kind === "ident") {
      operand = this.identifier(token);
    } else {
      this.fail(`unexpected ${this.quote(token)}`, pos);
    }
    const next = this.tokens[this.cursor];
    if (next?.kind === "field" && !next.spaceBefore) {
      const text = JSON.stringify(this.source.slice(pos, end));
      this.fail(`unexpected field ".${next.value}" after ${text}`, next.pos);
    }
    return operand;
  }

  /** Collects adjacent `.Name` tokens into one field operand. */
  private fieldNames(receiver: Pipeline | undefined, pos: number): Operand {
    const names: FieldName[] = [];
    let end = pos;
    for (let token = this.tokens[this.cursor]; ;) {
      if (token?.kind !== "field") break;
      if (names.length > 0 && token.spaceBefore) break;
      names.push({ name: token.value, pos: token.pos });
      end = token.end;
      this.cursor += 1;
      token = this.tokens[this.cursor];
    }
    return { kind: "field", pos, end, receiver, names };
  }

  private identifier(token: Token): Operand {
    const { pos, end, value } = token;
    if (value === "true" || value === "false") {
      return { kind: "literal", pos, end, value: value === "true" };
    }
    if (UNSUPPORTED.has(value)) this.fail(`"${value}" is not supported`, pos);
    if (["if", "else", "end"].includes(value)) {
      this.fail(`unexpected "${value}" in command`, pos);
    }
    if (!BUILTINS.has(value)) {
      this.fail(`unknown function ${JSON.stringify(value)}`, pos);
    }
    return { kind: "function", pos, end, name: value };
  }

  private number(token: Token): number {
    const text = token.value;
    if (!/^[+-]?[0-9]+$/.test(text)) {
      this.fail(
        `invalid number ${JSON.stringify(text)}: only decimal integers are supported`,
        token.pos,
      );
    }
    const value = Number(text);
    if (!Number.isSafeInteger(value)) {
      this.fail(
        `invalid number ${JSON.stringify(text)}: out of range`,
        token.pos,
      );
    }
    return value;
  }

  /** Parses one level deeper; fails at `pos` past MAX_NESTING levels. */
  private nested<T>(pos: number, parse: () => T): T {
    if (this.depth >= MAX_NESTING) this.fail(TOO_DEEP, pos);
    this.depth += 1;
    const result = parse();
    this.depth -= 1;
    return result;
  }

  private quote(token: Token): string {
    return JSON.stringify(this.source.slice(token.pos, token.end));
  }

  private actionEnd(): number {
    const last = this.tokens[this.tokens.length - 1];
    return last?.end ?? 0;
  }

  private fail(reason: string, offset = 0): never {
    throw new TemplateError(reason, this.source, offset, this.name);
  }
}
