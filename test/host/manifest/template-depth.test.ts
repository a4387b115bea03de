/**
 * Nesting limits: templates 100 levels deep render, and neither checking
 * nor rendering overflows the stack on a deeper tree built without the
 * parser (which rejects one), nor printing a value nested without end.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  checkTemplate,
  parseTemplate,
  renderTemplate,
} from "../../../src/host/manifest/index.js";
import type {
  Template,
  TemplateValue,
} from "../../../src/host/manifest/index.js";
import type {
  Node,
  Operand,
  Pipeline,
} from "../../../src/host/manifest/template/ast.js";

const TOO_DEEP =
  'too deeply nested: at most 100 levels of "if" and parentheses are allowed';

function pipeline(pos: number, operand: Operand): Pipeline {
  return { pos, commands: [{ pos, operands: [operand] }] };
}

/** `((...1...))` with `depth` parentheses, built by hand; ( at 0..depth-1. */
function deepParens(depth: number): Template {
  const source = "(".repeat(depth) + "1" + ")".repeat(depth);
  let operand: Operand = {
    kind: "literal",
    pos: depth,
    end: depth + 1,
    value: 1,
  };
  for (let pos = depth - 1; pos >= 0; pos--) {
    const end = source.length - pos;
    operand = { kind: "paren", pos, end, pipeline: pipeline(pos, operand) };
  }
  const nodes: Node[] = [
    { kind: "action", pos: 0, pipeline: pipeline(0, operand) },
  ];
  return { name: "cmd[0]", source, nodes };
}

/** `depth` nested ifs of `true` around "x", built by hand; if N at N. */
function deepIfs(depth: number): Template {
  const source = "i".repeat(depth) + "x";
  let nodes: Node[] = [{ kind: "text", text: "x" }];
  for (let pos = depth - 1; pos >= 0; pos--) {
    const condition = pipeline(pos, {
      kind: "literal",
      pos,
      end: pos + 1,
      value: true,
    });
    nodes = [
      {
        kind: "if",
        pos,
        branches: [{ condition, body: nodes }],
        otherwise: undefined,
      },
    ];
  }
  return { name: "cmd[0]", source, nodes };
}

// [case, template built by hand, output at 100 levels]
const TREES: readonly [string, (depth: number) => Template, string][] = [
  ["parentheses", deepParens, "1"],
  ["ifs", deepIfs, "x"],
];

for (const [name, build, output] of TREES) {
  test(`template: renders ${name} nested 100 levels deep`, () => {
    assert.equal(renderTemplate(build(100), {}), output);
    checkTemplate(build(100), { kind: "any" });
  });

  test(`template: rendering ${name} nested 20,000 deep fails cleanly`, () => {
    assert.throws(() => renderTemplate(build(20000), {}), {
      name: "TemplateError",
      message: `Template "cmd[0]" at 1:101: ${TOO_DEEP}`,
    });
  });

  test(`template: checking ${name} nested 20,000 deep fails cleanly`, () => {
    assert.throws(() => checkTemplate(build(20000), { kind: "any" }), {
      name: "TemplateError",
      message: `Template "cmd[0]" at 1:101: ${TOO_DEEP}`,
    });
  });
}

test("template: parsed templates 100 levels deep render", () => {
  const text =
    "{{ if true }}".repeat(50) +
    `{{ ${"(".repeat(50)}.${")".repeat(50)}.A }}` +
    "{{ end }}".repeat(50);
  assert.equal(renderTemplate(parseTemplate(text), { A: "a" }), "a");
});

/** `[[...[1]...]]` with `depth` arrays. */
function nestedArray(depth: number): TemplateValue {
  let value: TemplateValue = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

test("template: prints a value nested 100 levels deep", () => {
  const output = renderTemplate(parseTemplate("{{ .V }}"), {
    V: nestedArray(100),
  });
  assert.equal(output, "[".repeat(100) + "1" + "]".repeat(100));
});

// [case, value]
const UNPRINTABLE: readonly [string, () => TemplateValue][] = [
  ["a value nested 101 levels deep", () => nestedArray(101)],
  [
    "a cyclic array",
    () => {
      const cycle: TemplateValue[] = [];
      cycle.push(cycle);
      return cycle;
    },
  ],
];

for (const [name, value] of UNPRINTABLE) {
  test(`template: printing ${name} fails cleanly`, () => {
    assert.throws(
      () => renderTemplate(parseTemplate("{{ .V }}"), { V: value() }),
      {
        name: "TemplateError",
        message:
          "Template at 1:1: cannot print a value nested deeper than 100 levels",
      },
    );
  });
}
