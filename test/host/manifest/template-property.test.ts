/**
 * Properties of the template language over generated input: text without
 * actions is literal, literals print as themselves, integers print in base
 * 10, and arrays print as Go does.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import fc from "fast-check";

import {
  TemplateError,
  parseTemplate,
  renderTemplate,
} from "../../../src/host/manifest/index.js";

const NUM_RUNS = 1000;

test("template: property: text without {{ renders to itself", () => {
  const text = fc.oneof(
    fc.string({ unit: "binary" }),
    fc.string({ unit: fc.constantFrom("{", "}", "-", " ", "\n", "a", ".") }),
  );
  fc.assert(
    fc.property(text, (source) => {
      fc.pre(!source.includes("{{"));
      assert.equal(renderTemplate(parseTemplate(source), {}), source);
    }),
    { numRuns: NUM_RUNS },
  );
});

test("template: property: a raw string literal renders its text", () => {
  fc.assert(
    fc.property(fc.string({ unit: "grapheme" }), (value) => {
      fc.pre(!value.includes("`") && !value.includes("\r"));
      const source = `{{ \`${value}\` }}`;
      assert.equal(renderTemplate(parseTemplate(source), {}), value);
    }),
    { numRuns: NUM_RUNS },
  );
});

test("template: property: a quoted JSON-safe string renders its text", () => {
  fc.assert(
    fc.property(fc.string({ unit: "grapheme-ascii" }), (value) => {
      // Every escape JSON.stringify writes is also one of Go's.
      const source = `{{ ${JSON.stringify(value)} }}`;
      assert.equal(renderTemplate(parseTemplate(source), {}), value);
    }),
    { numRuns: NUM_RUNS },
  );
});

test("template: property: integers print in base 10", () => {
  fc.assert(
    fc.property(fc.maxSafeInteger(), (n) => {
      const template = parseTemplate(`{{ ${n} }}|{{ .N }}`);
      assert.equal(renderTemplate(template, { N: n }), `${n}|${n}`);
    }),
    { numRuns: NUM_RUNS },
  );
});

test("template: property: arrays print as Go's [a b c]", () => {
  fc.assert(
    fc.property(fc.array(fc.integer()), (items) => {
      const output = renderTemplate(parseTemplate("{{ .L }}"), { L: items });
      assert.equal(output, `[${items.join(" ")}]`);
    }),
    { numRuns: NUM_RUNS },
  );
});

test("template: property: any text parses or fails with a TemplateError", () => {
  const unit = fc.constantFrom(
    "{{",
    "}}",
    "{{- ",
    " -}}",
    " ",
    ".A",
    "if",
    "else",
    "end",
    "(",
    ")",
    "|",
    '"',
    "1",
    "index",
    "x",
  );
  fc.assert(
    fc.property(fc.array(unit), (parts) => {
      try {
        renderTemplate(parseTemplate(parts.join("")), { A: [1] });
      } catch (err) {
        assert.ok(err instanceof TemplateError, String(err));
      }
    }),
    { numRuns: NUM_RUNS },
  );
});
