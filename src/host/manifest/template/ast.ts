/**
 * The parsed form of a template: a list of nodes (text, actions, ifs) whose
 * actions hold pipelines of commands, as in Go's text/template/parse.
 * Positions are offsets into the template source.
 */

/**
 * The deepest nesting of `if` blocks and parentheses a template may have.
 * The parser rejects deeper templates, and the checker and the evaluator
 * refuse deeper hand-built trees, so none of them can overflow the stack.
 */
export const MAX_NESTING = 100;

/** The reason given for a template nested deeper than MAX_NESTING. */
export const TOO_DEEP =
  `too deeply nested: at most ${MAX_NESTING} levels of ` +
  '"if" and parentheses are allowed';

/** A parsed template, ready to render any number of times. */
export interface Template {
  /** Names the template in errors, e.g. the manifest field `args[2]`. */
  readonly name: string | undefined;
  readonly source: string;
  readonly nodes: readonly Node[];
}

export type Node = TextNode | ActionNode | IfNode;

export interface TextNode {
  readonly kind: "text";
  readonly text: string;
}

/** `{{ pipeline }}`: prints the pipeline's value. */
export interface ActionNode {
  readonly kind: "action";
  readonly pos: number;
  readonly pipeline: Pipeline;
}

/** `{{ if }}`, any `{{ else if }}`s, an optional `{{ else }}`, `{{ end }}`. */
export interface IfNode {
  readonly kind: "if";
  readonly pos: number;
  readonly branches: readonly IfBranch[];
  readonly otherwise: readonly Node[] | undefined;
}

export interface IfBranch {
  readonly condition: Pipeline;
  readonly body: readonly Node[];
}

/** Commands joined by `|`; each result is the last argument of the next. */
export interface Pipeline {
  readonly pos: number;
  readonly commands: readonly Command[];
}

/** A head operand (a function, method or value) and its arguments. */
export interface Command {
  readonly pos: number;
  readonly operands: readonly Operand[];
}

export type Operand =
  FieldOperand | FunctionOperand | DotOperand | ParenOperand | LiteralOperand;

interface Span {
  readonly pos: number;
  readonly end: number;
}

/**
 * `.A.B.C` (read from dot) or `(pipeline).A.B` (read from the pipeline's
 * value). The last name may be a method that takes the command's arguments.
 */
export interface FieldOperand extends Span {
  readonly kind: "field";
  readonly receiver: Pipeline | undefined;
  readonly names: readonly FieldName[];
}

export interface FieldName {
  readonly name: string;
  readonly pos: number;
}

export interface FunctionOperand extends Span {
  readonly kind: "function";
  readonly name: string;
}

export interface DotOperand extends Span {
  readonly kind: "dot";
}

export interface ParenOperand extends Span {
  readonly kind: "paren";
  readonly pipeline: Pipeline;
}

export interface LiteralOperand extends Span {
  readonly kind: "literal";
  readonly value: string | number | boolean;
}
