/**
 * `lorne logfmt`: line conversion in both modes, colour rules, the stream
 * loop, and the real binary (`node bin/lorne logfmt`, built by
 * `npm run build`, which `npm test` runs first).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { PassThrough, Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

import { convertLine, convertStream, useColor } from "../../src/cli/logfmt.js";

const json = { output: "json", color: false } as const;
const plain = { output: "pretty", color: false } as const;
const colour = { output: "pretty", color: true } as const;

const root = fileURLToPath(new URL("../..", import.meta.url));
const built = existsSync(`${root}/dist/cli/main.js`);

// [case, input line, --json output (undefined: skipped)]
const jsonCases: [string, string, string | undefined][] = [
  ["pairs", 'a=1 msg="hi there"', '{"a":"1","msg":"hi there"}'],
  ["a bare key", "at=start flag", '{"at":"start","flag":true}'],
  ["escapes", 'k="a\\nb\\"c"', '{"k":"a\\nb\\"c"}'],
  ["a line that is not logfmt", "hello world", '{"_raw":"hello world"}'],
  ["an unterminated quote", 'k="open', '{"_raw":"k=\\"open"}'],
  ["a blank line", "   ", undefined],
];

for (const [name, line, expected] of jsonCases) {
  test(`logfmt --json: converts ${name}`, () => {
    assert.equal(convertLine(line, json), expected);
  });
}

// [case, input line, --pretty output without colour]
const prettyCases: [string, string, string][] = [
  [
    "time and at first",
    "a=1 at=start now=2026-01-02T03:04:05+0000 b=x",
    "2026-01-02T03:04:05+0000 at=start a=1 b=x",
  ],
  ["values requoted safely", 'k="a b" nil=nil', 'k="a b" nil=nil'],
  ["a bare key", "x=1 flag", "x=1 flag"],
  ["a line that is not logfmt", "plain text here", "plain text here"],
  ["a blank line", "", ""],
];

for (const [name, line, expected] of prettyCases) {
  test(`logfmt --pretty: writes ${name}`, () => {
    assert.equal(convertLine(line, plain), expected);
  });
}

test("logfmt --pretty: dims the time, bolds at= and colours keys", () => {
  const line = "now=2026-01-02T03:04:05+0000 at=start job=j1";
  assert.equal(
    convertLine(line, colour),
    "\x1b[2m2026-01-02T03:04:05+0000\x1b[0m \x1b[1mat=start\x1b[0m " +
      "\x1b[36mjob\x1b[0m=j1",
  );
});

test("logfmt --pretty: shows at=exception in bold red", () => {
  assert.equal(
    convertLine("at=exception", colour),
    "\x1b[1;31mat=exception\x1b[0m",
  );
});

// [case, isTTY, env, colour expected]
const colourCases: [string, boolean, NodeJS.ProcessEnv, boolean][] = [
  ["a TTY", true, {}, true],
  ["a pipe", false, {}, false],
  ["NO_COLOR on a TTY", true, { NO_COLOR: "1" }, false],
  ["an empty NO_COLOR", true, { NO_COLOR: "" }, true],
  ["TERM=dumb", true, { TERM: "dumb" }, false],
  ["FORCE_COLOR on a pipe", false, { FORCE_COLOR: "1" }, true],
  [
    "FORCE_COLOR over NO_COLOR",
    false,
    { FORCE_COLOR: "", NO_COLOR: "1" },
    true,
  ],
  ["FORCE_COLOR=0 on a TTY", true, { FORCE_COLOR: "0" }, false],
];

for (const [name, isTTY, env, expected] of colourCases) {
  test(`logfmt: colour is ${expected ? "on" : "off"} for ${name}`, () => {
    assert.equal(useColor({ isTTY }, env), expected);
  });
}

test("logfmt: converts a whole stream, CRLF included", async () => {
  const input = Readable.from(["a=1\r\nnot logfmt\n", "\nb=2"]);
  const output = new PassThrough();
  const chunks: string[] = [];
  output.on("data", (chunk: Buffer) => chunks.push(chunk.toString()));
  await convertStream(input, output, json);
  assert.equal(
    chunks.join(""),
    '{"a":"1"}\n{"_raw":"not logfmt"}\n{"b":"2"}\n',
  );
});

function lorne(args: string[], input: string, env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [`${root}/bin/lorne`, ...args], {
    input,
    encoding: "utf8",
    env: { PATH: process.env.PATH, ...env },
  });
}

const needsBuild = built ? false : "dist/ is missing: run npm run build";

test("lorne logfmt: writes JSON by default", { skip: needsBuild }, () => {
  const result = lorne(["logfmt"], "at=start job=j1\nnoise\n");
  assert.equal(result.stderr, "");
  assert.equal(result.status, 0);
  assert.equal(result.stdout, '{"at":"start","job":"j1"}\n{"_raw":"noise"}\n');
});

test("lorne logfmt --pretty: no colour on a pipe", { skip: needsBuild }, () => {
  const result = lorne(["logfmt", "--pretty"], "job=j1 at=x\nnoise\n");
  assert.equal(result.status, 0);
  assert.equal(result.stdout, "at=x job=j1\nnoise\n");
});

test(
  "lorne logfmt --pretty: FORCE_COLOR forces colour",
  { skip: needsBuild },
  () => {
    const result = lorne(["logfmt", "--pretty"], "at=x\n", {
      FORCE_COLOR: "1",
    });
    assert.equal(result.stdout, "\x1b[1mat=x\x1b[0m\n");
  },
);

test("lorne logfmt: rejects --json with --pretty", { skip: needsBuild }, () => {
  const result = lorne(["logfmt", "--json", "--pretty"], "");
  assert.equal(result.status, 1);
  assert.equal(
    result.stderr.split("\n")[0],
    "error: option '--json' cannot be used with option '--pretty'",
  );
});
