/**
 * Renders a parsed template against data, with Go's execution rules: dot is
 * the data, a field chain reads struct fields and map keys and calls a
 * method with the command's arguments, a pipeline passes each result as
 * the last argument of the next command, and `if` tests Go's truth.
 *
 * Every failure is a TemplateError at the position of the failing field or
 * command. Rendering has no side effects beyond the methods it calls. A
 * hand-built tree nested deeper than MAX_NESTING fails rather than
 * overflowing the stack (the parser never builds one).
 */
import { errorMessage } from "../../../errors.js";

import { MAX_NESTING, TOO_DEEP } from "./ast.js";
import type {
  Command,
  FieldOperand,
  Node,
  Operand,
  Pipeline,
  Template,
} from "./ast.js";
import { TemplateError, TemplateFailure } from "./errors.js";
import { BUILTINS, arityProblem } from "./functions.js";
import type { Thunk } from "./functions.js";
import {
  TemplateMap,
  describeValue,
  isMethod,
  isStruct,
  isTruthy,
  printValue,
} from "./values.js";
import type { TemplateMethod, TemplateValue } from "./values.js";

/** Renders `template` with `data` as dot; throws TemplateError. */
export function renderTemplate(
  template: Template,
  data: TemplateValue,
): string {
  const out: string[] = [];
  new Evaluator(template, data).walk(template.nodes, out);
  return out.join("");
}

class Evaluator {
  /** How many `if` blocks and parentheses enclose the current node. */
  private depth = 0;

  constructor(
    private readonly template: Template,
    private readonly dot: TemplateValue,
  ) {}

  walk(nodes: readonly Node[], out: string[]): void {
    for (const node of nodes) {
      if (node.kind === "text") {
        out.push(node.text);
      } else if (node.kind === "action") {
        const value = this.pipeline(node.pipeline);
        out.push(this.guard(node.pos, () => printValue(value)));
      } else {
        this.nested(node.pos, () => {
          const branch = node.branches.find((b) =>
            isTruthy(this.pipeline(b.condition)),
          );
          const body = branch === undefined ? node.otherwise : branch.body;
          if (body !== undefined) this.walk(body, out);
        });
      }
    }
  }

  private pipeline(pipeline: Pipeline): TemplateValue {
    let value: TemplateValue | undefined;
    for (const command of pipeline.commands) {
      value = this.command(command, value === undefined ? [] : [value]);
    }
    return value as TemplateValue;
  }

  /** Runs one command; `final` holds the piped-in value, if any. */
  private command(
    command: Command,
    final: readonly TemplateValue[],
  ): TemplateValue {
    const [head, ...rest] = command.operands as [Operand, ...Operand[]];
    if (head.kind === "function") {
      const args: Thunk[] = rest.map((operand) => () => this.operand(operand));
      args.push(...final.map((value) => () => value));
      return this.callFunction(head.name, head.pos, args);
    }
    if (head.kind === "field") {
      const args = rest.map((operand) => this.operand(operand));
      return this.field(head, [...args, ...final]);
    }
    if (rest.length > 0 || final.length > 0) {
      const text = JSON.stringify(
        this.template.source.slice(head.pos, head.end),
      );
      this.fail(
        `cannot give arguments to ${text}: it is not a function or method`,
        head.pos,
      );
    }
    return this.operand(head);
  }

  /** Evaluates an operand used as a value (no arguments). */
  private operand(operand: Operand): TemplateValue {
    switch (operand.kind) {
      case "literal":
        return operand.value;
      case "dot":
        return this.dot;
      case "paren":
        return this.nested(operand.pos, () => this.pipeline(operand.pipeline));
      case "field":
        return this.field(operand, []);
      case "function":
        return this.callFunction(operand.name, operand.pos, []);
    }
  }

  private callFunction(
    name: string,
    pos: number,
    args: readonly Thunk[],
  ): TemplateValue {
    const builtin = BUILTINS.get(name);
    if (builtin === undefined) this.fail(`unknown function "${name}"`, pos);
    const problem = arityProblem(name, builtin, args.length);
    if (problem !== undefined) this.fail(problem, pos);
    return this.guard(pos, () => builtin.call(args));
  }

  /** Reads a field chain; the last name gets `args` if it is a method. */
  private field(
    operand: FieldOperand,
    args: readonly TemplateValue[],
  ): TemplateValue {
    const receiver = operand.receiver;
    let value =
      receiver === undefined
        ? this.dot
        : this.nested(operand.pos, () => this.pipeline(receiver));
    operand.names.forEach(({ name, pos }, i) => {
      const last = i === operand.names.length - 1;
      value = this.fieldOf(value, name, pos, last ? args : []);
    });
    return value;
  }

  private fieldOf(
    receiver: TemplateValue,
    name: string,
    pos: number,
    args: readonly TemplateValue[],
  ): TemplateValue {
    const quoted = JSON.stringify(name);
    if (receiver instanceof TemplateMap) {
      if (args.length > 0) {
        this.fail(`cannot give arguments to map key ${quoted}`, pos);
      }
      return this.guard(pos, () => receiver.get(name));
    }
    if (!isStruct(receiver)) {
      const kind = describeValue(receiver);
      this.fail(`cannot evaluate field ${quoted} on ${kind}`, pos);
    }
    if (!Object.hasOwn(receiver, name)) {
      this.fail(`unknown field ${quoted}`, pos);
    }
    const value = receiver[name] as TemplateValue;
    if (isMethod(value)) return this.callMethod(value, name, pos, args);
    if (args.length > 0) {
      this.fail(
        `cannot give arguments to field ${quoted}: it is not a method`,
        pos,
      );
    }
    return value;
  }

  private callMethod(
    method: TemplateMethod,
    name: string,
    pos: number,
    args: readonly TemplateValue[],
  ): TemplateValue {
    if (method.length !== args.length) {
      this.fail(
        `wrong number of arguments for ${name}: want ${method.length}, got ${args.length}`,
        pos,
      );
    }
    try {
      return method(...args);
    } catch (err) {
      if (err instanceof TemplateError) throw err;
      const reason = `error calling ${name}: ${errorMessage(err)}`;
      throw new TemplateError(
        reason,
        this.template.source,
        pos,
        this.template.name,
        { cause: err },
      );
    }
  }

  /** Runs `fn` one level deeper; fails at `pos` past MAX_NESTING levels. */
  private nested<T>(pos: number, fn: () => T): T {
    if (this.depth >= MAX_NESTING) this.fail(TOO_DEEP, pos);
    this.depth += 1;
    try {
      return fn();
    } finally {
      this.depth -= 1;
    }
  }

  /** Runs `fn`, giving a TemplateFailure it throws the position `pos`. */
  private guard<T>(pos: number, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof TemplateFailure) this.fail(err.message, pos);
      throw err;
    }
  }

  private fail(reason: string, pos: number): never {
    const { source, name } = this.template;
    throw new TemplateError(reason, source, pos, name);
  }
}
