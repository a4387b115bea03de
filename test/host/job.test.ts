import assert from "node:assert/strict";
import { test } from "node:test";

import { ValidationError } from "../../src/errors.js";
import {
  canTransition,
  validateJobId,
  validateJobSpec,
} from "../../src/host/job.js";
import { redactSpec } from "../../src/host/env.js";

test("job spec: accepts a full spec and keeps only known fields", () => {
  const spec = validateJobSpec({
    id: "web.1",
    metadata: { team: "a" },
    config: {
      cmd: ["sleep", "1"],
      entrypoint: ["/bin/env"],
      env: { A: "1" },
      working_dir: "/tmp",
      tcp_ports: 2,
      stdin: false,
    },
  });
  assert.deepEqual(spec, {
    id: "web.1",
    metadata: { team: "a" },
    config: {
      cmd: ["sleep", "1"],
      entrypoint: ["/bin/env"],
      env: { A: "1" },
      working_dir: "/tmp",
      tcp_ports: 2,
      stdin: false,
    },
  });
});

const bad: [string, unknown, string, string][] = [
  [
    "not an object",
    [],
    "body",
    "Invalid body: must be an object, got an array",
  ],
  ["no config", {}, "config", "Missing config: must be an object"],
  [
    "empty cmd",
    { config: { cmd: [] } },
    "config.cmd",
    "Invalid config.cmd: a job needs a command (cmd or entrypoint)",
  ],
  [
    "cmd not array",
    { config: { cmd: "ls" } },
    "config.cmd",
    'Invalid config.cmd: must be an array, got "ls"',
  ],
  [
    "cmd item",
    { config: { cmd: ["ls", 3] } },
    "config.cmd[1]",
    "Invalid config.cmd[1]: must be a string without NUL, got 3",
  ],
  [
    "NUL in arg",
    { config: { cmd: ["a\0b"] } },
    "config.cmd[0]",
    'Invalid config.cmd[0]: must be a string without NUL, got "a\\u0000b"',
  ],
  [
    "unknown top",
    { config: { cmd: ["ls"] }, extra: 1 },
    "extra",
    "Unknown field extra: expected one of id, metadata, config",
  ],
  [
    "unknown config",
    { config: { cmd: ["ls"], ports: 1 } },
    "config.ports",
    "Unknown field config.ports: expected one of config.cmd, config.entrypoint, config.env, config.secret_env, config.working_dir, config.tcp_ports, config.stdin, config.image, config.tty, config.memory_bytes",
  ],
  [
    "relative working_dir",
    { config: { cmd: ["ls"], working_dir: "ship" } },
    "config.working_dir",
    'Invalid config.working_dir "ship": expected an absolute path (the job runs on the host, not where the request came from)',
  ],
  [
    "negative ports",
    { config: { cmd: ["ls"], tcp_ports: -1 } },
    "config.tcp_ports",
    "Invalid config.tcp_ports: must be an integer from 0 to 64, got -1",
  ],
  [
    "fraction ports",
    { config: { cmd: ["ls"], tcp_ports: 1.5 } },
    "config.tcp_ports",
    "Invalid config.tcp_ports: must be an integer from 0 to 64, got 1.5",
  ],
  [
    "too many ports",
    { config: { cmd: ["ls"], tcp_ports: 65 } },
    "config.tcp_ports",
    "Invalid config.tcp_ports: must be an integer from 0 to 64, got 65",
  ],
  [
    "env value",
    { config: { cmd: ["ls"], env: { A: 1 } } },
    "config.env.A",
    "Invalid config.env.A: must be a string without NUL, got a number",
  ],
  [
    "env value with NUL, not quoted",
    { config: { cmd: ["ls"], env: { A: "s3cret\0" } } },
    "config.env.A",
    "Invalid config.env.A: must be a string without NUL, got one with NUL",
  ],
  [
    "env too large",
    {
      config: {
        cmd: ["ls"],
        env: { A: "x".repeat(64 * 1024), B: "y".repeat(64 * 1024) },
      },
    },
    "config.env",
    "Invalid config.env: more than 131072 bytes as NAME=value",
  ],
  [
    "secret_env not in env",
    { config: { cmd: ["ls"], env: { A: "1" }, secret_env: ["A", "B"] } },
    "config.secret_env[1]",
    'Invalid config.secret_env[1]: "B" is not a name in config.env',
  ],
  [
    "secret_env twice",
    { config: { cmd: ["ls"], env: { A: "1" }, secret_env: ["A", "A"] } },
    "config.secret_env[1]",
    'Invalid config.secret_env[1]: "A" is listed twice',
  ],
  [
    "secret_env not strings",
    { config: { cmd: ["ls"], env: { A: "1" }, secret_env: "A" } },
    "config.secret_env",
    'Invalid config.secret_env: must be an array, got "A"',
  ],
  [
    "env name",
    { config: { cmd: ["ls"], env: { "A=B": "x" } } },
    "config.env.A=B",
    'Invalid config.env: name "A=B" must be non-empty without = or NUL',
  ],
  [
    "stdin",
    { config: { cmd: ["ls"], stdin: "yes" } },
    "config.stdin",
    'Invalid config.stdin: must be a boolean, got "yes"',
  ],
  [
    "bad id",
    { id: "a/b", config: { cmd: ["ls"] } },
    "id",
    'Invalid job id "a/b": must be 1-128 characters of A-Z a-z 0-9 _ . - and not only dots',
  ],
  [
    "dots id",
    { id: "..", config: { cmd: ["ls"] } },
    "id",
    'Invalid job id "..": must be 1-128 characters of A-Z a-z 0-9 _ . - and not only dots',
  ],
  [
    "metadata",
    { metadata: { a: {} }, config: { cmd: ["ls"] } },
    "metadata.a",
    "Invalid metadata.a: must be a string without NUL, got an object",
  ],
];

for (const [name, body, field, message] of bad) {
  test(`job spec: rejects ${name} naming the field`, () => {
    assert.throws(
      () => validateJobSpec(body),
      (err: unknown) => {
        assert.ok(err instanceof ValidationError);
        assert.equal(err.field, field);
        assert.equal(err.message, message);
        return true;
      },
    );
  });
}

test("job spec: redactSpec hides secret env values and leaves the spec alone", () => {
  const spec = validateJobSpec({
    config: {
      cmd: ["ls"],
      env: { TOKEN: "s3cret", PLAIN: "shown" },
      secret_env: ["TOKEN"],
    },
  });
  assert.deepEqual(redactSpec(spec).config.env, {
    TOKEN: "<redacted>",
    PLAIN: "shown",
  });
  assert.deepEqual(redactSpec(spec).config.secret_env, ["TOKEN"]);
  assert.equal(spec.config.env?.TOKEN, "s3cret");
});

test("job id: accepts the allowed set up to 128 characters", () => {
  assert.equal(validateJobId("A-z_0.9"), "A-z_0.9");
  assert.equal(validateJobId("x".repeat(128)), "x".repeat(128));
  assert.throws(() => validateJobId("x".repeat(129)), ValidationError);
  assert.throws(() => validateJobId(""), ValidationError);
});

test("job status: only the documented transitions are allowed", () => {
  assert.equal(canTransition("starting", "running"), true);
  assert.equal(canTransition("starting", "failed"), true);
  assert.equal(canTransition("running", "done"), true);
  assert.equal(canTransition("running", "crashed"), true);
  assert.equal(canTransition("running", "stopped"), true);
  assert.equal(canTransition("done", "running"), false);
  assert.equal(canTransition("running", "failed"), false);
  assert.equal(canTransition("failed", "stopped"), false);
});
