/**
 * Rendering templates: literals, fields, methods, functions, `if`, trim
 * markers and Go's printing, each against exact output, and the errors that
 * only data can reveal, against exact messages.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  TemplateError,
  TemplateMap,
  parseTemplate,
  renderTemplate,
} from "../../../src/host/manifest/index.js";
import type {
  TemplateStruct,
  TemplateValue,
} from "../../../src/host/manifest/index.js";

function fixture(): TemplateStruct {
  return {
    Name: "web",
    Zero: 0,
    Count: 3,
    Yes: true,
    No: false,
    Empty: "",
    List: [10, 20, 30],
    Words: ["a", "b c"],
    Nested: [[1, 2], [3], []],
    None: [],
    Env: TemplateMap.ofStrings({ HOME: "/root", EMPTY: "", "my-var": "x" }),
    Strict: new TemplateMap([["one", 1]]),
    NoKeys: TemplateMap.ofStrings({}),
    Inner: { Host: "h", Ports: [80, 443], Flag: true },
    Double: (n: TemplateValue) => (n as number) * 2,
    Add: (a: TemplateValue, b: TemplateValue) => (a as number) + (b as number),
    Fail: (): TemplateValue => {
      throw new Error("boom");
    },
  };
}

function render(text: string, data: TemplateValue = fixture()): string {
  return renderTemplate(parseTemplate(text), data);
}

const RENDERS: readonly [string, string, string][] = [
  // [case, template, output]
  ["plain text", "just text }} here", "just text }} here"],
  ["empty template", "", ""],
  ["a field", "--name={{ .Name }}", "--name=web"],
  ["a field without spaces", "{{.Name}}", "web"],
  ["a nested struct field", "{{ .Inner.Host }}", "h"],
  ["a map key", "{{ .Env.HOME }}", "/root"],
  ["a missing map key as empty", "[{{ .Env.NOPE }}]", "[]"],
  ["an integer literal", "{{ 42 }}", "42"],
  ["a negative integer literal", "{{ -7 }}", "-7"],
  ["a double-quoted string", '{{ "a b" }}', "a b"],
  ["string escapes", String.raw`{{ "q\"\\\t\x41\u00e9\101" }}`, 'q"\\\tAéA'],
  ["a raw string", '{{ `a\\n"b` }}', 'a\\n"b'],
  ["booleans", "{{ true }} {{ false }}", "true false"],
  ["zero", "{{ .Zero }}", "0"],
  ["an array as Go prints it", "{{ .List }}", "[10 20 30]"],
  ["an array of strings", "{{ .Words }}", "[a b c]"],
  ["nested arrays", "{{ .Nested }}", "[[1 2] [3] []]"],
  ["a map sorted by key", "{{ .Env }}", "map[EMPTY: HOME:/root my-var:x]"],
  ["a struct", "{{ .Inner }}", "{h [80 443] true}"],
  ["a method with an argument", "{{ .Double 21 }}", "42"],
  ["a method with two arguments", "{{ .Add 1 2 }}", "3"],
  ["a piped argument", "{{ 4 | .Double }}", "8"],
  ["a pipeline of functions", "{{ .List | len | .Double }}", "6"],
  ["index into an array", "{{ index .List 1 }}", "20"],
  ["index into nested arrays", "{{ index .Nested 0 1 }}", "2"],
  ["index into a map", '{{ index .Env "my-var" }}', "x"],
  ["index of a missing map key", '[{{ index .Env "NOPE" }}]', "[]"],
  ["index with no keys", "{{ index .List }}", "[10 20 30]"],
  ["index of a string byte", '{{ index "AB" 1 }}', "66"],
  ["a parenthesised pipeline", "{{ .Double (index .List 0) }}", "20"],
  ["a field of a parenthesised value", "{{ (.Inner).Ports }}", "[80 443]"],
  ["len of a string in bytes", '{{ len "é" }}', "2"],
  ["len of a map", "{{ len .Env }}", "3"],
  ["not", "{{ not .Empty }} {{ not .List }}", "true false"],
  ["and returns the first false value", '{{ and 1 "" 2 }}', ""],
  ["and returns the last value", "{{ and 1 2 3 }}", "3"],
  ["or returns the first true value", '{{ or 0 "" "x" 0 }}', "x"],
  ["or returns the last value", "{{ or 0 false }}", "false"],
  ["eq with several values", '{{ eq .Name "api" "web" }}', "true"],
  ["eq on integers", "{{ eq .Count 4 }}", "false"],
  ["ne", '{{ ne .Name "api" }}', "true"],
  ["a comment", "a{{/* note */}}b", "ab"],
  ["a comment with trim markers", "a \n{{- /* note */ -}}\n b", "ab"],
  ["trim before", "a  \n\t{{- .Name }} b", "aweb b"],
  ["trim after", "a {{ .Name -}} \n  b", "a webb"],
  ["a dash without a space is a number", "{{-3}}", "-3"],
  ["trim in an action spanning lines", "x\n{{-\n.Name\n-}}\ny", "xweby"],
  ["dot", "{{ .Strict }}", "map[one:1]"],
  ["a string containing delimiters", '{{ "{{ }}" }}', "{{ }}"],
];

for (const [name, text, output] of RENDERS) {
  test(`template: renders ${name}`, () => {
    assert.equal(render(text), output);
  });
}

const CONDITIONALS: readonly [string, string][] = [
  // [template, output]; the fixture's .Yes is true, .No is false
  ["{{ if .Yes }}y{{ end }}", "y"],
  ["{{ if .No }}y{{ end }}", ""],
  ["{{ if .No }}y{{ else }}n{{ end }}", "n"],
  ["{{ if .No }}a{{ else if .Zero }}b{{ else if .Count }}c{{ end }}", "c"],
  ["{{ if .No }}a{{ else if .Empty }}b{{ else }}c{{ end }}", "c"],
  ["{{ if .Yes }}{{ if .No }}a{{ else }}b{{ end }}{{ end }}", "b"],
  ["{{ if .No }}{{ if .Yes }}a{{ end }}{{ else }}c{{ end }}", "c"],
  ["{{ if .Env.NOPE }}set{{ else }}unset{{ end }}", "unset"],
  ["{{ if .Env.HOME }}set{{ end }}", "set"],
  ["{{ if .None }}a{{ else }}empty array{{ end }}", "empty array"],
  ["{{ if .NoKeys }}a{{ else }}empty map{{ end }}", "empty map"],
  ["{{ if .Inner }}struct{{ end }}", "struct"],
  ['{{ if eq .Name "web" }}--web{{ end }}', "--web"],
  ["{{ if and .Yes .Count }}both{{ end }}", "both"],
  ["a {{- if .Yes }} b {{ end -}} c", "a b c"],
];

for (const [text, output] of CONDITIONALS) {
  test(`template: if renders ${JSON.stringify(text)} as ${JSON.stringify(output)}`, () => {
    assert.equal(render(text), output);
  });
}

const RENDER_ERRORS: readonly [string, string][] = [
  // [template, message]
  ["{{ .Nope }}", 'Template at 1:4: unknown field "Nope"'],
  ["a\n  {{ .Inner.Nope }}", 'Template at 2:12: unknown field "Nope"'],
  [
    "{{ .Name.Length }}",
    'Template at 1:9: cannot evaluate field "Length" on a string',
  ],
  [
    "{{ .List.First }}",
    'Template at 1:9: cannot evaluate field "First" on an array',
  ],
  ["{{ .Strict.two }}", 'Template at 1:11: map has no entry for key "two"'],
  [
    "{{ .Env.HOME 1 }}",
    'Template at 1:8: cannot give arguments to map key "HOME"',
  ],
  [
    "{{ .Name 1 }}",
    'Template at 1:4: cannot give arguments to field "Name": it is not a method',
  ],
  [
    "{{ 1 | .Name }}",
    'Template at 1:8: cannot give arguments to field "Name": it is not a method',
  ],
  [
    "{{ .Double }}",
    "Template at 1:4: wrong number of arguments for Double: want 1, got 0",
  ],
  [
    "{{ .Double 1 2 }}",
    "Template at 1:4: wrong number of arguments for Double: want 1, got 2",
  ],
  [
    "{{ .Double.X }}",
    "Template at 1:4: wrong number of arguments for Double: want 1, got 0",
  ],
  ["{{ .Fail }}", "Template at 1:4: error calling Fail: boom"],
  ["{{ index .List 3 }}", "Template at 1:4: index out of range: 3 (length 3)"],
  [
    "{{ index .List -1 }}",
    "Template at 1:4: index out of range: -1 (length 3)",
  ],
  [
    '{{ index .List "a" }}',
    "Template at 1:4: cannot index an array with a string",
  ],
  ["{{ index .Env 1 }}", "Template at 1:4: cannot index a map with a number"],
  ["{{ index .Count 0 }}", "Template at 1:4: cannot index a number"],
  [
    '{{ index .Strict "two" }}',
    'Template at 1:4: map has no entry for key "two"',
  ],
  ["{{ len .Count }}", "Template at 1:4: cannot take the length of a number"],
  [
    '{{ eq .Count "3" }}',
    "Template at 1:4: cannot compare a number with a string",
  ],
  ["{{ eq .List .List }}", "Template at 1:4: cannot compare an array"],
  [
    "{{ (index .List 0).X }}",
    'Template at 1:19: cannot evaluate field "X" on a number',
  ],
  ["{{ if .Nope }}x{{ end }}", 'Template at 1:7: unknown field "Nope"'],
];

for (const [text, message] of RENDER_ERRORS) {
  test(`template: rendering ${JSON.stringify(text)} fails`, () => {
    assert.throws(() => render(text), { name: "TemplateError", message });
  });
}

test("template: render errors carry the position, reason and name", () => {
  const template = parseTemplate("ok\n  {{ .Nope }}", "args[1]");
  const err = captureError(() => renderTemplate(template, fixture()));
  assert.ok(err instanceof TemplateError);
  assert.equal(err.message, 'Template "args[1]" at 2:6: unknown field "Nope"');
  assert.equal(err.reason, 'unknown field "Nope"');
  assert.deepEqual(err.position, { offset: 8, line: 2, col: 6 });
  assert.equal(err.templateName, "args[1]");
  assert.equal(err.code, "validation_error");
});

test("template: a failing method's error is the cause", () => {
  const err = captureError(() => render("{{ .Fail }}"));
  assert.ok(err instanceof TemplateError);
  assert.ok(err.cause instanceof Error);
  assert.equal(err.cause.message, "boom");
});

test("template: and and or stop at the deciding argument", () => {
  const calls: string[] = [];
  const data: TemplateStruct = {
    Mark: (name: TemplateValue) => {
      calls.push(name as string);
      return name === "t";
    },
  };
  assert.equal(render('{{ and (.Mark "f") (.Mark "x") }}', data), "false");
  assert.equal(render('{{ or (.Mark "t") (.Mark "y") }}', data), "true");
  assert.deepEqual(calls, ["f", "t"]);
});

test("template: if evaluates only the branches it needs", () => {
  const calls: number[] = [];
  const data: TemplateStruct = {
    Mark: (n: TemplateValue) => {
      calls.push(n as number);
      return n;
    },
  };
  const text =
    "{{ if .Mark 0 }}a{{ else if .Mark 2 }}{{ .Mark 3 }}{{ else if .Mark 4 }}{{ end }}";
  assert.equal(render(text, data), "3");
  assert.deepEqual(calls, [0, 2, 3]);
});

test("template: a template renders again with other data", () => {
  const template = parseTemplate("{{ .Name }}");
  assert.equal(renderTemplate(template, { Name: "a" }), "a");
  assert.equal(renderTemplate(template, { Name: "b" }), "b");
});

function captureError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return assert.fail("expected an error");
}
