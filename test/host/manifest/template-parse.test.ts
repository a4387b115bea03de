/**
 * Parsing templates: every syntax error a template can have without data,
 * each with its exact message and position, and the shape of the tree for
 * the forms that need more than an output check.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { parseTemplate } from "../../../src/host/manifest/index.js";

const PARSE_ERRORS: readonly [string, string, string][] = [
  // [case, template, message]
  ["unterminated action", "{{ .A", "1:1: unclosed action"],
  ["bare left delimiter", "{{", "1:1: unclosed action"],
  ["action left open at the end", "{{ .A }} {{", "1:10: unclosed action"],
  ["single right brace", "abc {{ .A }", '1:11: unexpected "}" in action'],
  ["unknown function", "{{ indx .A 0 }}", '1:4: unknown function "indx"'],
  [
    "unknown function on a later line",
    "a\nb\n  {{ indx }}",
    '3:6: unknown function "indx"',
  ],
  ["unclosed if", "{{ if .A }}x", '1:1: unclosed "if": missing {{ end }}'],
  [
    "unclosed outer if",
    "{{ if .A }}{{ if .B }}{{ end }}",
    '1:1: unclosed "if": missing {{ end }}',
  ],
  [
    "unclosed inner if",
    "{{ if .A }}\n{{ else }}\n{{ if .B }}",
    '3:1: unclosed "if": missing {{ end }}',
  ],
  ["stray end", "{{ end }}", "1:1: unexpected {{ end }}"],
  ["stray else", "{{ else }}{{ end }}", "1:1: unexpected {{ else }}"],
  ["stray else if", "{{ else if .A }}", "1:1: unexpected {{ else if }}"],
  [
    "two elses",
    "{{ if .A }}{{ else }}{{ else }}{{ end }}",
    "1:22: unexpected {{ else }} after {{ else }}",
  ],
  [
    "else if after else",
    "{{ if .A }}{{ else }}{{ else if .B }}{{ end }}",
    "1:22: unexpected {{ else if }} after {{ else }}",
  ],
  [
    "if without a condition",
    "{{ if }}{{ end }}",
    '1:1: missing condition for "if"',
  ],
  [
    "else if without a condition",
    "{{ if .A }}{{ else if }}{{ end }}",
    '1:20: missing condition for "if"',
  ],
  ["arguments after end", "{{ end 1 }}", '1:8: unexpected "1" after "end"'],
  [
    "arguments after else",
    "{{ if .A }}{{ else .B }}{{ end }}",
    '1:20: unexpected ".B" after "else"',
  ],
  ["empty action", "{{ }}", "1:1: empty action"],
  ["empty action with trim markers", "{{- -}}", "1:1: empty action"],
  ["range", "{{ range .A }}{{ end }}", '1:4: "range" is not supported'],
  ["with", "{{ with .A }}{{ end }}", '1:4: "with" is not supported'],
  ["template", '{{ template "x" }}', '1:4: "template" is not supported'],
  ["nil", "{{ nil }}", '1:4: "nil" is not supported'],
  ["variables", "{{ $x }}", "1:4: variables are not supported"],
  [
    "character constants",
    "{{ 'a' }}",
    "1:4: character constants are not supported",
  ],
  [
    "floats",
    "{{ 1.5 }}",
    '1:4: invalid number "1.5": only decimal integers are supported',
  ],
  [
    "hexadecimal",
    "{{ 0x10 }}",
    '1:4: invalid number "0x10": only decimal integers are supported',
  ],
  [
    "huge integers",
    "{{ 99999999999999999999 }}",
    '1:4: invalid number "99999999999999999999": out of range',
  ],
  ["unterminated string", '{{ "abc }}', "1:4: unterminated quoted string"],
  ["newline in a string", '{{ "a\nb" }}', "1:4: unterminated quoted string"],
  [
    "unterminated raw string",
    "{{ `abc }}",
    "1:4: unterminated raw quoted string",
  ],
  [
    "unknown escape",
    String.raw`{{ "\q" }}`,
    String.raw`1:5: invalid escape "\\q" in string`,
  ],
  [
    "non-ASCII byte escape",
    String.raw`{{ "\xff" }}`,
    String.raw`1:5: invalid escape "\\xff" in string`,
  ],
  [
    "short unicode escape",
    String.raw`{{ "\u12" }}`,
    String.raw`1:5: invalid escape "\\u12" in string`,
  ],
  [
    "surrogate escape",
    String.raw`{{ "\ud800" }}`,
    String.raw`1:5: invalid escape "\\ud800" in string`,
  ],
  ["unknown character", "{{ .A # }}", '1:7: unexpected "#" in action'],
  ["brace after a field", "{{ .A} }}", '1:6: unexpected "}" after ".A"'],
  ["trim marker without a space", "{{ .A-}}", '1:6: unexpected "-" after ".A"'],
  [
    "hyphen in a field name",
    "{{ .Services.my-db }}",
    '1:16: unexpected "-" after ".my"',
  ],
  [
    "adjacent strings",
    '{{ "a""b" }}',
    String.raw`1:7: unexpected "\"" after "\"a\""`,
  ],
  [
    "missing space before a paren",
    "{{ .A(.B) }}",
    '1:6: missing space before "("',
  ],
  ["unclosed paren", "{{ (index .A 0 }}", "1:4: unclosed left paren"],
  ["stray right paren", "{{ .A ) }}", '1:7: unexpected ")"'],
  ["empty parens", "{{ () }}", '1:5: missing command before ")"'],
  ["pipe at the end", "{{ .A | }}", '1:7: missing command after "|"'],
  ["pipe at the start", "{{ | .A }}", '1:4: missing command before "|"'],
  ["double pipe", "{{ .A || .B }}", '1:7: missing command after "|"'],
  [
    "arguments to a number",
    "{{ 1 2 }}",
    '1:4: cannot give arguments to "1": it is not a function or method',
  ],
  [
    "arguments to dot",
    "{{ . 1 }}",
    '1:4: cannot give arguments to ".": it is not a function or method',
  ],
  [
    "arguments to parens",
    "{{ (.A) 1 }}",
    '1:4: cannot give arguments to "(.A)": it is not a function or method',
  ],
  [
    "pipe into a literal",
    "{{ .A | 1 }}",
    '1:9: cannot pipe into "1": it is not a function or method',
  ],
  [
    "index without arguments",
    "{{ index }}",
    "1:4: wrong number of arguments for index: want at least 1, got 0",
  ],
  [
    "len with two arguments",
    "{{ len 1 2 }}",
    "1:4: wrong number of arguments for len: want 1, got 2",
  ],
  [
    "not without arguments",
    "{{ not }}",
    "1:4: wrong number of arguments for not: want 1, got 0",
  ],
  [
    "eq with one argument",
    "{{ eq 1 }}",
    "1:4: wrong number of arguments for eq: want at least 2, got 1",
  ],
  [
    "ne with three arguments",
    "{{ ne 1 2 3 }}",
    "1:4: wrong number of arguments for ne: want 2, got 3",
  ],
  [
    "a function as an argument",
    "{{ index len }}",
    "1:10: wrong number of arguments for len: want 1, got 0",
  ],
  [
    "len with a piped and a given argument",
    "{{ 1 | len 2 }}",
    "1:8: wrong number of arguments for len: want 1, got 2",
  ],
  [
    "field of a string literal",
    '{{ "s".A }}',
    String.raw`1:7: unexpected field ".A" after "\"s\""`,
  ],
  ["field of dot", "{{ ..A }}", '1:5: unexpected field ".A" after "."'],
  [
    "field of a function",
    "{{ index.A }}",
    '1:9: unexpected field ".A" after "index"',
  ],
  ["keyword as an argument", "{{ .A if }}", '1:7: unexpected "if" in command'],
  ["comment after a space", "{{ /* c */ }}", '1:4: unexpected "/" in action'],
  [
    "space between comment and delimiter",
    "{{/* c */ }}",
    '1:10: comment must end right before "}}"',
  ],
  [
    "text after a comment",
    "{{/* c */ x }}",
    '1:10: comment must end right before "}}"',
  ],
  ["unclosed comment", "{{/* c", "1:1: unclosed comment"],
];

for (const [name, text, message] of PARSE_ERRORS) {
  test(`template: parsing rejects ${name}`, () => {
    assert.throws(() => parseTemplate(text), {
      name: "TemplateError",
      message: `Template at ${message}`,
    });
  });
}

test("template: parse errors name the template", () => {
  assert.throws(() => parseTemplate("{{ indx }}", "env.PORT"), {
    message: 'Template "env.PORT" at 1:4: unknown function "indx"',
    reason: 'unknown function "indx"',
    templateName: "env.PORT",
    field: "env.PORT",
    code: "validation_error",
  });
});

test("template: text without actions is one text node", () => {
  assert.deepEqual(parseTemplate("a }} b").nodes, [
    { kind: "text", text: "a }} b" },
  ]);
});

test("template: trim markers remove only the adjacent whitespace", () => {
  assert.deepEqual(parseTemplate(" a \n{{- 1 -}}\t b ").nodes, [
    { kind: "text", text: " a" },
    {
      kind: "action",
      pos: 4,
      pipeline: {
        pos: 8,
        commands: [
          {
            pos: 8,
            operands: [{ kind: "literal", pos: 8, end: 9, value: 1 }],
          },
        ],
      },
    },
    { kind: "text", text: "b " },
  ]);
});

test("template: a field chain is one operand with every name", () => {
  const [node] = parseTemplate("{{ .Services.web.TCPPorts }}").nodes;
  assert.ok(node?.kind === "action");
  assert.deepEqual(node.pipeline.commands[0]?.operands, [
    {
      kind: "field",
      pos: 3,
      end: 25,
      receiver: undefined,
      names: [
        { name: "Services", pos: 3 },
        { name: "web", pos: 12 },
        { name: "TCPPorts", pos: 16 },
      ],
    },
  ]);
});

test("template: else if chains become branches of one if", () => {
  const text =
    "{{ if .A }}a{{ else if .B }}b{{ else if .C }}c{{ else }}d{{ end }}";
  const [node, ...rest] = parseTemplate(text).nodes;
  assert.equal(rest.length, 0);
  assert.ok(node?.kind === "if");
  assert.deepEqual(
    node.branches.map((branch) => branch.body),
    [
      [{ kind: "text", text: "a" }],
      [{ kind: "text", text: "b" }],
      [{ kind: "text", text: "c" }],
    ],
  );
  assert.deepEqual(node.otherwise, [{ kind: "text", text: "d" }]);
});

const TOO_DEEP =
  'too deeply nested: at most 100 levels of "if" and parentheses are allowed';

// [case, template, position of the level too many]
const DEEP: readonly [string, string, string][] = [
  ["101 parentheses", `{{ ${"(".repeat(101)}1${")".repeat(101)} }}`, "1:104"],
  [
    "5,000 parentheses",
    `{{ ${"(".repeat(5000)}1${")".repeat(5000)} }}`,
    "1:104",
  ],
  ["101 ifs", "{{ if true }}".repeat(101) + "{{ end }}".repeat(101), "1:1301"],
  [
    "20,000 ifs",
    "{{ if true }}".repeat(20000) + "{{ end }}".repeat(20000),
    "1:1301",
  ],
  [
    "ifs and parentheses together",
    "{{ if true }}".repeat(60) +
      `{{ ${"(".repeat(41)}1${")".repeat(41)} }}` +
      "{{ end }}".repeat(60),
    "1:824",
  ],
  [
    "parentheses in a field receiver",
    `{{ ${"(".repeat(101)}.${")".repeat(101)}.A }}`,
    "1:104",
  ],
  [
    "ifs on many lines",
    "{{ if true }}\n".repeat(101) + "{{ end }}".repeat(101),
    "101:1",
  ],
];

for (const [name, text, where] of DEEP) {
  test(`template: parsing rejects nesting of ${name}`, () => {
    assert.throws(() => parseTemplate(text, "cmd[0]"), {
      name: "TemplateError",
      message: `Template "cmd[0]" at ${where}: ${TOO_DEEP}`,
      reason: TOO_DEEP,
    });
  });
}

test("template: 100 levels of ifs and parentheses parse", () => {
  const text =
    "{{ if true }}".repeat(50) +
    `{{ ${"(".repeat(50)}1${")".repeat(50)} }}` +
    "{{ end }}".repeat(50);
  assert.equal(parseTemplate(text).source, text);
});

test("template: else if chains are not nesting", () => {
  const text =
    "{{ if false }}" + "{{ else if false }}".repeat(5000) + "x{{ end }}";
  const [node] = parseTemplate(text).nodes;
  assert.ok(node?.kind === "if");
  assert.equal(node.branches.length, 5001);
});
