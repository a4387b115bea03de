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

import fc from "fast-check";

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

// [case, input line, --pretty output]: job output is untrusted, so no
// control character reaches the terminal raw and no record spans two lines
const hostileCases: [string, string, string][] = [
  [
    "a now value forging a line",
    String.raw`now="\u001b[31mRED\u001b[0m\nFAKE LINE at=exception" a=1`,
    String.raw`"\u001b[31mRED\u001b[0m\nFAKE LINE at=exception" a=1`,
  ],
  ["a key holding DEL", "a\u007fb=1", String.raw`a\u007fb=1`],
  ["a key holding a C1 CSI", "x\u009b2J=1", String.raw`x\u009b2J=1`],
  ["a key holding U+2028", "k\u2028=1", String.raw`k\u2028=1`],
  ["a key holding a lone surrogate", "k\ud800=1", String.raw`k\ud800=1`],
  [
    "an at value holding controls",
    String.raw`at="\u009b2J"`,
    String.raw`at="\u009b2J"`,
  ],
  [
    "a line that is not logfmt holding escapes",
    "plain \u001b[2J\ttext \u009b",
    String.raw`plain \u001b[2J\ttext \u009b`,
  ],
  [
    "a line that is not logfmt holding a CR",
    "progress\r100%",
    String.raw`progress\r100%`,
  ],
];

for (const [name, line, expected] of hostileCases) {
  test(`logfmt --pretty: escapes ${name}`, () => {
    assert.equal(convertLine(line, plain), expected);
  });
}

test("logfmt --pretty: shows a hostile time dimmed and escaped", () => {
  assert.equal(
    convertLine('now="a\\u001bb" k\u0085=1', colour),
    '\x1b[2m"a\\u001bb"\x1b[0m \x1b[36mk\\u0085\x1b[0m=1',
  );
});

/** A control character (C0, DEL, C1), U+2028/9 or a lone surrogate. */
const CONTROL = /[\p{Cc}\p{Zl}\p{Zp}\p{Cs}]/u;

/** The colour codes `lorne logfmt` adds itself. */
const OURS = ["\x1b[0m", "\x1b[2m", "\x1b[1m", "\x1b[1;31m", "\x1b[36m"];

test("logfmt --pretty: no control character ever reaches the output", () => {
  const unit = fc.oneof(
    fc.constantFrom(" ", "=", '"', "\\", "a", "now", "at", "\n", "\r"),
    fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  );
  fc.assert(
    fc.property(fc.string({ unit }), (line) => {
      const plainText = convertLine(line, plain) ?? "";
      assert.ok(!CONTROL.test(plainText), JSON.stringify(plainText));
      const coloured = OURS.reduce(
        (text, code) => text.replaceAll(code, ""),
        convertLine(line, colour) ?? "",
      );
      assert.ok(!CONTROL.test(coloured), JSON.stringify(coloured));
    }),
    { numRuns: 2000 },
  );
});

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

test(
  "lorne logfmt --pretty: job output cannot forge a line or send escapes",
  { skip: needsBuild },
  () => {
    const input =
      String.raw`now="\u001b[31mRED\u001b[0m\nFAKE LINE at=exception"` +
      " k\u009b=1\nraw \u001b[2J\n";
    const result = lorne(["logfmt", "--pretty"], input, { FORCE_COLOR: "0" });
    assert.equal(result.status, 0);
    assert.equal(
      result.stdout,
      String.raw`"\u001b[31mRED\u001b[0m\nFAKE LINE at=exception" k\u009b=1` +
        "\n" +
        String.raw`raw \u001b[2J` +
        "\n",
    );
  },
);

test("lorne logfmt: rejects --json with --pretty", { skip: needsBuild }, () => {
  const result = lorne(["logfmt", "--json", "--pretty"], "");
  assert.equal(result.status, 2);
  assert.equal(
    result.stderr,
    "lorne: option '--json' cannot be used with option '--pretty' (see --help)\n",
  );
});
