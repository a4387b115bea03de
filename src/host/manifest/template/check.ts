/**
 * Checks a parsed template against the shape of the data it will get,
 * before that data exists: that each field chain read from dot names real
 * fields, that map keys known in advance exist, and that methods get the
 * right number of arguments. A template that passes can still fail while
 * rendering (an index out of range, a failing method), but not for any
 * reason a shape describes. Messages match those of rendering.
 */
import { MAX_NESTING, TOO_DEEP } from "./ast.js";
import type { Node, Operand, Pipeline, Template } from "./ast.js";
import { TemplateError } from "./errors.js";

/** The static description of a value. `any` is not checked further. */
export type Shape =
  | { readonly kind: "string" | "number" | "boolean" | "array" | "any" }
  | { readonly kind: "method"; readonly arity: number; readonly result: Shape }
  | {
      readonly kind: "struct";
      readonly fields: Readonly<Record<string, Shape>>;
    }
  | {
      readonly kind: "map";
      readonly value: Shape;
      /** The only keys the map will have, when known in advance. */
      readonly keys?: ReadonlySet<string>;
      /** The reason given for a key not in `keys`. */
      readonly missingKey?: (key: string) => string;
    };

const KIND_NAMES: Readonly<Record<string, string>> = {
  string: "a string",
  number: "a number",
  boolean: "a boolean",
  array: "an array",
};

/** Throws a TemplateError for the first problem found in `template`. */
export function checkTemplate(template: Template, dot: Shape): void {
  new Checker(template, dot).nodes(template.nodes);
}

class Checker {
  /** How many `if` blocks and parentheses enclose the current node. */
  private depth = 0;

  constructor(
    private readonly template: Template,
    private readonly dot: Shape,
  ) {}

  nodes(nodes: readonly Node[]): void {
    for (const node of nodes) {
      if (node.kind === "action") this.pipeline(node.pipeline);
      if (node.kind !== "if") continue;
      const { branches, otherwise } = node;
      this.nested(node.pos, () => {
        for (const branch of branches) {
          this.pipeline(branch.condition);
          this.nodes(branch.body);
        }
        if (otherwise !== undefined) this.nodes(otherwise);
      });
    }
  }

  private pipeline(pipeline: Pipeline): void {
    pipeline.commands.forEach((command, i) => {
      const [head, ...rest] = command.operands as [Operand, ...Operand[]];
      this.operand(head, rest.length + (i > 0 ? 1 : 0));
      for (const operand of rest) this.operand(operand, 0);
    });
  }

  private operand(operand: Operand, argCount: number): void {
    if (operand.kind === "paren") {
      const { pipeline } = operand;
      this.nested(operand.pos, () => this.pipeline(pipeline));
    }
    if (operand.kind !== "field") return;
    const receiver = operand.receiver;
    if (receiver !== undefined) {
      this.nested(operand.pos, () => this.pipeline(receiver));
      return;
    }

    let shape = this.dot;
    operand.names.forEach(({ name, pos }, i) => {
      const last = i === operand.names.length - 1;
      shape = this.field(shape, name, pos, last ? argCount : 0);
    });
  }

  /** The shape of `shape.name` when called with `argCount` arguments. */
  private field(
    shape: Shape,
    name: string,
    pos: number,
    argCount: number,
  ): Shape {
    const quoted = JSON.stringify(name);
    if (shape.kind === "any") return shape;
    if (shape.kind === "map") {
      if (argCount > 0) {
        this.fail(`cannot give arguments to map key ${quoted}`, pos);
      }
      if (shape.keys !== undefined && !shape.keys.has(name)) {
        const reason = shape.missingKey?.(name);
        this.fail(reason ?? `map has no entry for key ${quoted}`, pos);
      }
      return shape.value;
    }
    if (shape.kind !== "struct") {
      const kind = KIND_NAMES[shape.kind] ?? "a method";
      this.fail(`cannot evaluate field ${quoted} on ${kind}`, pos);
    }

    const field = shape.fields[name];
    if (field === undefined || !Object.hasOwn(shape.fields, name)) {
      this.fail(`unknown field ${quoted}`, pos);
    }
    if (field.kind === "method") {
      if (field.arity !== argCount) {
        this.fail(
          `wrong number of arguments for ${name}: want ${field.arity}, got ${argCount}`,
          pos,
        );
      }
      return field.result;
    }
    if (argCount > 0) {
      this.fail(
        `cannot give arguments to field ${quoted}: it is not a method`,
        pos,
      );
    }
    return field;
  }

  /** Checks one level deeper; fails at `pos` past MAX_NESTING levels. */
  private nested(pos: number, check: () => void): void {
    if (this.depth >= MAX_NESTING) this.fail(TOO_DEEP, pos);
    this.depth += 1;
    check();
    this.depth -= 1;
  }

  private fail(reason: string, pos: number): never {
    const { source, name } = this.template;
    throw new TemplateError(reason, source, pos, name);
  }
}
