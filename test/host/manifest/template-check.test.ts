/**
 * Checking templates against a data shape before rendering: the problems a
 * shape can reveal, and that each is reported with the same message as
 * rendering the template against matching data would give.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  TemplateMap,
  checkTemplate,
  parseTemplate,
  renderTemplate,
} from "../../../src/host/manifest/index.js";
import type {
  Shape,
  TemplateStruct,
  TemplateValue,
} from "../../../src/host/manifest/index.js";

const SHAPE: Shape = {
  kind: "struct",
  fields: {
    Name: { kind: "string" },
    Count: { kind: "number" },
    Ports: { kind: "array" },
    Port: { kind: "method", arity: 1, result: { kind: "number" } },
    Env: { kind: "map", value: { kind: "string" } },
    Apps: {
      kind: "map",
      keys: new Set(["web"]),
      missingKey: (key) => `no app ${JSON.stringify(key)}`,
      value: {
        kind: "struct",
        fields: { Host: { kind: "string" } },
      },
    },
    Open: { kind: "any" },
  },
};

const DATA: TemplateStruct = {
  Name: "n",
  Count: 1,
  Ports: [5],
  Port: (n: TemplateValue) => n,
  Env: TemplateMap.ofStrings({}),
  Apps: new TemplateMap([["web", { Host: "h" }]]),
  Open: { Anything: "yes" },
};

const SHARED_ERRORS: readonly [string, string][] = [
  // [template, message], the same from checking and from rendering
  ["{{ .Nmae }}", '1:4: unknown field "Nmae"'],
  ["{{ .Name.Size }}", '1:9: cannot evaluate field "Size" on a string'],
  ["{{ .Count.X }}", '1:10: cannot evaluate field "X" on a number'],
  ["{{ .Ports.X }}", '1:10: cannot evaluate field "X" on an array'],
  [
    "{{ .Name 1 }}",
    '1:4: cannot give arguments to field "Name": it is not a method',
  ],
  ["{{ .Env.A 1 }}", '1:8: cannot give arguments to map key "A"'],
  ["{{ .Port }}", "1:4: wrong number of arguments for Port: want 1, got 0"],
  ["{{ .Port 1 2 }}", "1:4: wrong number of arguments for Port: want 1, got 2"],
  [
    "{{ index .Port 0 }}",
    "1:10: wrong number of arguments for Port: want 1, got 0",
  ],
  ["{{ .Apps.web.Port }}", '1:13: unknown field "Port"'],
  ["{{ if .X }}{{ end }}", '1:7: unknown field "X"'],
  ["{{ if .Name }}{{ .X }}{{ end }}", '1:18: unknown field "X"'],
  ["{{ index (.Y) 0 }}", '1:11: unknown field "Y"'],
  ["{{ (.Y).Z }}", '1:5: unknown field "Y"'],
];

for (const [text, message] of SHARED_ERRORS) {
  test(`template: checking ${JSON.stringify(text)} fails as rendering does`, () => {
    const template = parseTemplate(text);
    const expected = {
      name: "TemplateError",
      message: `Template at ${message}`,
    };
    assert.throws(() => checkTemplate(template, SHAPE), expected);
    assert.throws(() => renderTemplate(template, DATA), expected);
  });
}

test("template: checking finds problems in branches rendering skips", () => {
  const texts = [
    "{{ if .Name }}{{ else if .X }}{{ end }}",
    "{{ if .Name }}{{ else }}{{ .X }}{{ end }}",
  ];
  for (const text of texts) {
    const template = parseTemplate(text);
    assert.equal(renderTemplate(template, DATA), "");
    assert.throws(() => checkTemplate(template, SHAPE), {
      message: `Template at 1:${text.indexOf(".X") + 1}: unknown field "X"`,
    });
  }
});

test("template: checking reports a missing known key with its own reason", () => {
  const template = parseTemplate("{{ .Apps.api.Host }}");
  assert.throws(() => checkTemplate(template, SHAPE), {
    message: 'Template at 1:9: no app "api"',
  });
  assert.throws(() => renderTemplate(template, DATA), {
    message: 'Template at 1:9: map has no entry for key "api"',
  });
});

const VALID: readonly string[] = [
  "plain",
  "{{ .Name }} {{ .Count }} {{ .Ports }}",
  "{{ .Port 0 }} {{ 0 | .Port }} {{ .Port (index .Ports 0) }}",
  "{{ .Env.ANY }} {{ .Apps.web.Host }}",
  "{{ .Open.Anything }}",
  "{{ (.Open).Whatever.Deeper }}",
  '{{ index .Apps "other" }}',
  "{{ if .Name }}{{ .Count }}{{ else if .Ports }}{{ else }}{{ end }}",
];

for (const text of VALID) {
  test(`template: checking accepts ${JSON.stringify(text)}`, () => {
    checkTemplate(parseTemplate(text), SHAPE);
  });
}
