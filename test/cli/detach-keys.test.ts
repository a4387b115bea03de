/**
 * The detach key scanner: Ctrl-P Ctrl-Q anywhere (also split across
 * chunks) leaves; every other key, a held Ctrl-P included, goes on.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { DetachKeyScanner } from "../../src/cli/detach-keys.js";

const P = "\x10";
const Q = "\x11";

for (const [name, chunks, want] of [
  ["plain keys pass", ["ab", "c"], ["ab", "c"]],
  ["the sequence leaves after the keys before it", [`ab${P}${Q}cd`], ["ab!"]],
  ["the sequence split across chunks", [`a${P}`, `${Q}`], ["a", "!"]],
  ["Ctrl-P then another key passes both", [`${P}`, "x"], ["", `${P}x`]],
  [
    "Ctrl-P Ctrl-P Ctrl-Q is no sequence: all three pass",
    [`${P}${P}${Q}`],
    [`${P}${P}${Q}`],
  ],
  ["a sequence after a broken one leaves", [`${P}x${P}${Q}`], [`${P}x!`]],
  ["a lone Ctrl-Q passes", [`${Q}a`], [`${Q}a`]],
] as const) {
  test(`detach keys: ${name}`, () => {
    const scanner = new DetachKeyScanner();
    // What passes, then "!" when the chunk completed the sequence.
    const got = chunks.map((chunk) => {
      const { pass, detach } = scanner.scan(Buffer.from(chunk));
      return pass.toString("latin1") + (detach ? "!" : "");
    });
    assert.deepEqual(got, want);
  });
}

test("detach keys: a Ctrl-P held at the end of input is flushed", () => {
  const scanner = new DetachKeyScanner();
  assert.equal(scanner.scan(Buffer.from(`a${P}`)).pass.toString(), "a");
  assert.equal(scanner.flush().toString("latin1"), P);
  assert.equal(scanner.flush().length, 0);
});
