/**
 * Errors from parsing, checking and rendering templates. A TemplateError
 * knows where in the template text the problem is; a TemplateFailure is the
 * unpositioned form thrown by value helpers and built-in functions, which
 * the evaluator turns into a TemplateError at the failing command.
 */
import { ValidationError } from "../../../errors.js";
import type { LorneErrorOptions } from "../../../errors.js";
import { positionOf } from "../position.js";
import type { TextPosition } from "../position.js";

/** A template is invalid, or failed to render; `reason` has no position. */
export class TemplateError extends ValidationError {
  /** The problem alone, e.g. `unknown function "indx"`. */
  readonly reason: string;
  /** The template's name (a manifest field such as `args[2]`), if any. */
  readonly templateName: string | undefined;
  readonly position: TextPosition;

  constructor(
    reason: string,
    source: string,
    offset: number,
    templateName?: string,
    options?: LorneErrorOptions,
  ) {
    const position = positionOf(source, offset);
    const where = `${position.line}:${position.col}`;
    const subject =
      templateName === undefined
        ? "Template"
        : `Template ${JSON.stringify(templateName)}`;
    super(`${subject} at ${where}: ${reason}`, templateName, options);
    this.reason = reason;
    this.templateName = templateName;
    this.position = position;
  }
}

/** A failure inside a value helper or a built-in function; no position. */
export class TemplateFailure extends Error {
  constructor(reason: string, options?: ErrorOptions) {
    super(reason, options);
    this.name = "TemplateFailure";
  }
}
