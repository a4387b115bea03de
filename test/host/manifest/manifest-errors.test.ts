/**
 * Bad manifests: a table of every kind of problem, each with its exact
 * message and ValidationError field path, and how errors name the file and
 * chain their causes.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { ValidationError } from "../../../src/errors.js";
import { parseManifest } from "../../../src/host/manifest/index.js";

/** One service with the fields of `extra` merged into a valid base. */
function one(extra: Record<string, unknown>): string {
  return JSON.stringify([{ id: "web", cmd: ["run"], ...extra }]);
}

const BAD: readonly [string, string, string, string | undefined][] = [
  // [case, manifest text, message, ValidationError.field]
  [
    "not JSON",
    "[{]",
    'Manifest: invalid JSON at 1:3: expected a string key, found "]"',
    undefined,
  ],
  [
    "a trailing comma",
    '[\n  {"id": "web",}\n]',
    'Manifest: invalid JSON at 2:16: expected a string key, found "}"',
    undefined,
  ],
  [
    "empty text",
    "",
    "Manifest: invalid JSON at 1:1: expected a value, found end of input",
    undefined,
  ],
  [
    "a duplicate JSON key",
    '[{"id": "a", "id": "b", "cmd": ["x"]}]',
    'Manifest: invalid JSON at 1:14: duplicate key "id"',
    undefined,
  ],
  [
    "not an array",
    '{"id": "web"}',
    "Manifest: expected an array of services, found an object",
    undefined,
  ],
  [
    "a service that is not an object",
    '["web"]',
    "Manifest services[0]: expected an object, found a string",
    "services[0]",
  ],
  [
    "a null service",
    "[null]",
    "Manifest services[0]: expected an object, found null",
    "services[0]",
  ],
  [
    "a missing id",
    '[{"cmd": ["x"]}]',
    'Manifest services[0]: field "id": missing required field',
    "services[0].id",
  ],
  [
    "a missing id in a later service",
    '[{"id": "a", "cmd": ["x"]}, {"cmd": ["x"]}]',
    'Manifest services[1]: field "id": missing required field',
    "services[1].id",
  ],
  [
    "an id that is not a string",
    '[{"id": 5, "cmd": ["x"]}]',
    'Manifest services[0]: field "id": expected a string, found a number',
    "services[0].id",
  ],
  [
    "an empty id",
    '[{"id": "", "cmd": ["x"]}]',
    'Manifest services[0]: field "id": must not be empty',
    "services[0].id",
  ],
  [
    "a long id",
    JSON.stringify([{ id: "a".repeat(129), cmd: ["x"] }]),
    'Manifest services[0]: field "id": too long: 129 characters, at most 128 are allowed',
    "services[0].id",
  ],
  [
    "bad id characters",
    '[{"id": "my web", "cmd": ["x"]}]',
    'Manifest services[0]: field "id": invalid id "my web": only A-Z, a-z, 0-9, "_", "." and "-" are allowed',
    "services[0].id",
  ],
  [
    "an id of one dot",
    '[{"id": ".", "cmd": ["x"]}]',
    'Manifest services[0]: field "id": invalid id ".": ids made only of dots are not allowed',
    "services[0].id",
  ],
  [
    "an id of two dots",
    '[{"id": "..", "cmd": ["x"]}]',
    'Manifest services[0]: field "id": invalid id "..": ids made only of dots are not allowed',
    "services[0].id",
  ],
  [
    "an id of three dots",
    '[{"id": "...", "cmd": ["x"]}]',
    'Manifest services[0]: field "id": invalid id "...": ids made only of dots are not allowed',
    "services[0].id",
  ],
  [
    "a duplicate id",
    '[{"id": "web", "cmd": ["x"]}, {"id": "api", "cmd": ["x"]}, {"id": "web", "cmd": ["y"]}]',
    'Manifest services[2]: field "id": duplicate id "web", already used by services[0]',
    "services[2].id",
  ],
  [
    "both cmd and entrypoint",
    one({ entrypoint: ["x"] }),
    'Manifest service "web": fields "cmd" and "entrypoint": exactly one is required, found both',
    "services[0].cmd",
  ],
  [
    "neither cmd nor entrypoint",
    '[{"id": "web"}]',
    'Manifest service "web": fields "cmd" and "entrypoint": exactly one is required, found neither',
    "services[0].cmd",
  ],
  [
    "args with cmd",
    one({ args: ["a"] }),
    'Manifest service "web": field "args": not allowed with "cmd", list every argument in "cmd"',
    "services[0].args",
  ],
  [
    "cmd that is not an array",
    one({ cmd: "run" }),
    'Manifest service "web": field "cmd": expected an array of strings, found a string',
    "services[0].cmd",
  ],
  [
    "an empty cmd",
    one({ cmd: [] }),
    'Manifest service "web": field "cmd": must not be empty',
    "services[0].cmd",
  ],
  [
    "an empty entrypoint",
    '[{"id": "web", "entrypoint": [], "args": ["a"]}]',
    'Manifest service "web": field "entrypoint": must not be empty',
    "services[0].entrypoint",
  ],
  [
    "args that are not strings",
    '[{"id": "web", "entrypoint": ["x"], "args": ["a", 2]}]',
    'Manifest service "web": field "args[1]": expected a string, found a number',
    "services[0].args[1]",
  ],
  [
    "negative tcp_ports",
    one({ tcp_ports: -1 }),
    'Manifest service "web": field "tcp_ports": expected an integer from 0 to 64, found -1',
    "services[0].tcp_ports",
  ],
  [
    "fractional tcp_ports",
    one({ tcp_ports: 1.5 }),
    'Manifest service "web": field "tcp_ports": expected an integer from 0 to 64, found 1.5',
    "services[0].tcp_ports",
  ],
  [
    "too many tcp_ports",
    one({ tcp_ports: 65 }),
    'Manifest service "web": field "tcp_ports": expected an integer from 0 to 64, found 65',
    "services[0].tcp_ports",
  ],
  [
    "tcp_ports as a string",
    one({ tcp_ports: "2" }),
    'Manifest service "web": field "tcp_ports": expected an integer from 0 to 64, found a string',
    "services[0].tcp_ports",
  ],
  [
    "tcp_ports as the old array form",
    one({ tcp_ports: [] }),
    'Manifest service "web": field "tcp_ports": expected an integer from 0 to 64, found an array',
    "services[0].tcp_ports",
  ],
  [
    "an unknown field",
    one({ ports: [1] }),
    'Manifest service "web": unknown field "ports"',
    "services[0].ports",
  ],
  [
    "unknown fields",
    one({ ports: [1], Env: {} }),
    'Manifest service "web": unknown fields "ports", "Env"',
    "services[0].ports",
  ],
  [
    "a bad template in args[1]",
    '[{"id": "web", "entrypoint": ["x"], "args": ["a", "{{ indx .TCPPorts 0 }}"]}]',
    'Manifest service "web": field "args[1]" at 1:4: unknown function "indx"',
    "services[0].args[1]",
  ],
  [
    "a bad template in env.X",
    one({ env: { X: "{{ if .Env.A }}" } }),
    'Manifest service "web": field "env.X" at 1:1: unclosed "if": missing {{ end }}',
    "services[0].env.X",
  ],
  [
    "a bad template in cmd[0]",
    one({ cmd: ["{{ .Env.A"] }),
    'Manifest service "web": field "cmd[0]" at 1:1: unclosed action',
    "services[0].cmd[0]",
  ],
  [
    "a misspelt field",
    one({ cmd: ["run", "{{ .ExternalIp }}"] }),
    'Manifest service "web": field "cmd[1]" at 1:4: unknown field "ExternalIp"',
    "services[0].cmd[1]",
  ],
  [
    "a field of a string",
    one({ cmd: ["run", "{{ .Env.HOME.X }}"] }),
    'Manifest service "web": field "cmd[1]" at 1:13: cannot evaluate field "X" on a string',
    "services[0].cmd[1]",
  ],
  [
    "TCPPort without an index",
    one({ cmd: ["run", "{{ .TCPPort }}"] }),
    'Manifest service "web": field "cmd[1]" at 1:4: wrong number of arguments for TCPPort: want 1, got 0',
    "services[0].cmd[1]",
  ],
  [
    "a service not defined",
    one({ cmd: ["run", "{{ .Services.db.InternalIP }}"] }),
    'Manifest service "web": field "cmd[1]" at 1:13: unknown service "db": only services listed before this one can be used',
    "services[0].cmd[1]",
  ],
  [
    "a service listed later",
    '[{"id": "a", "cmd": ["{{ .Services.b.InternalIP }}"]}, {"id": "b", "cmd": ["x"]}]',
    'Manifest service "a": field "cmd[0]" at 1:13: unknown service "b": only services listed before this one can be used',
    "services[0].cmd[0]",
  ],
  [
    "a misspelt service field",
    '[{"id": "a", "cmd": ["x"]}, {"id": "b", "cmd": ["{{ .Services.a.Port }}"]}]',
    'Manifest service "b": field "cmd[0]" at 1:15: unknown field "Port"',
    "services[1].cmd[0]",
  ],
  [
    "5,000 nested parentheses",
    one({ cmd: ["run", `{{ ${"(".repeat(5000)}1${")".repeat(5000)} }}`] }),
    'Manifest service "web": field "cmd[1]" at 1:104: too deeply nested: at most 100 levels of "if" and parentheses are allowed',
    "services[0].cmd[1]",
  ],
  [
    "20,000 nested ifs",
    one({
      env: {
        X: "{{ if true }}".repeat(20000) + "{{ end }}".repeat(20000),
      },
    }),
    'Manifest service "web": field "env.X" at 1:1301: too deeply nested: at most 100 levels of "if" and parentheses are allowed',
    "services[0].env.X",
  ],
  [
    "env that is not an object",
    one({ env: ["A"] }),
    'Manifest service "web": field "env": expected an object of strings, found an array',
    "services[0].env",
  ],
  [
    "a bad env name",
    one({ env: { "A=B": "x" } }),
    'Manifest service "web": field "env": invalid variable name "A=B": it must be non-empty, without "=" or NUL',
    "services[0].env",
  ],
  [
    "an env value that is not a string",
    one({ env: { A: 1 } }),
    'Manifest service "web": field "env.A": expected a string, found a number',
    "services[0].env.A",
  ],
  [
    "expose_env that is not an array",
    one({ expose_env: "HOME" }),
    'Manifest service "web": field "expose_env": expected an array of strings, found a string',
    "services[0].expose_env",
  ],
  [
    "a duplicate expose_env name",
    one({ expose_env: ["HOME", "PATH", "HOME"] }),
    'Manifest service "web": field "expose_env[2]": duplicate name "HOME"',
    "services[0].expose_env[2]",
  ],
  [
    "expose_env of a variable set in env",
    one({ env: { HOME: "x" }, expose_env: ["HOME"] }),
    'Manifest service "web": field "expose_env[0]": "HOME" is also set in "env"',
    "services[0].expose_env[0]",
  ],
  [
    "an empty expose_env name",
    one({ expose_env: [""] }),
    'Manifest service "web": field "expose_env[0]": invalid variable name "": it must be non-empty, without "=" or NUL',
    "services[0].expose_env[0]",
  ],
  [
    "working_dir that is not a string",
    one({ working_dir: 1 }),
    'Manifest service "web": field "working_dir": expected a string, found a number',
    "services[0].working_dir",
  ],
  [
    "an empty working_dir",
    one({ working_dir: "" }),
    'Manifest service "web": field "working_dir": must not be empty',
    "services[0].working_dir",
  ],
  [
    "a relative working_dir",
    one({ working_dir: "srv" }),
    'Manifest service "web": field "working_dir": expected an absolute path, found "srv"',
    "services[0].working_dir",
  ],
  [
    "an empty image",
    one({ image: "" }),
    'Manifest service "web": field "image": must not be empty',
    "services[0].image",
  ],
  [
    "metadata that is not an object",
    one({ metadata: [] }),
    'Manifest service "web": field "metadata": expected an object of strings, found an array',
    "services[0].metadata",
  ],
  [
    "a metadata value that is not a string",
    one({ metadata: { a: true } }),
    'Manifest service "web": field "metadata.a": expected a string, found a boolean',
    "services[0].metadata.a",
  ],
];

for (const [name, text, message, field] of BAD) {
  test(`manifest: rejects ${name}`, () => {
    assert.throws(
      () => parseManifest(text),
      (err) => {
        assert.ok(err instanceof ValidationError);
        assert.equal(err.message, message);
        assert.equal(err.field, field);
        assert.equal(err.code, "validation_error");
        return true;
      },
    );
  });
}

test("manifest: errors name the manifest file when it is given", () => {
  assert.throws(() => parseManifest("[{]", "examples/manifest.json"), {
    message:
      'Manifest "examples/manifest.json": invalid JSON at 1:3: expected a string key, found "]"',
  });
  assert.throws(() => parseManifest("{}", "m.json"), {
    message:
      'Manifest "m.json": expected an array of services, found an object',
  });
  assert.throws(() => parseManifest('[{"cmd": ["x"]}]', "m.json"), {
    message:
      'Manifest "m.json": services[0]: field "id": missing required field',
  });
  assert.throws(() => parseManifest(one({ cmd: ["{{ indx }}"] }), "m.json"), {
    message:
      'Manifest "m.json": service "web": field "cmd[0]" at 1:4: unknown function "indx"',
  });
});

test("manifest: a template error keeps the template error as its cause", () => {
  assert.throws(
    () => parseManifest(one({ env: { X: "a\n{{ indx }}" } })),
    (err) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(
        err.message,
        'Manifest service "web": field "env.X" at 2:4: unknown function "indx"',
      );
      assert.ok(err.cause instanceof ValidationError);
      assert.equal(err.cause.name, "TemplateError");
      return true;
    },
  );
});

test("manifest: the JSON error keeps the syntax error as its cause", () => {
  assert.throws(
    () => parseManifest("[1,"),
    (err) => {
      assert.ok(err instanceof ValidationError);
      assert.ok(err.cause instanceof ValidationError);
      assert.equal(err.cause.name, "JsonSyntaxError");
      return true;
    },
  );
});
