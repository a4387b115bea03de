import assert from "node:assert/strict";
import { test } from "node:test";

import { openFilesLimit, readerLimit } from "../../src/ship/descriptors.js";

const LIMITS = [
  "Limit                     Soft Limit           Hard Limit           Units",
  "Max processes             unlimited            unlimited            processes",
  "Max open files            1024                 524288               files",
  "",
].join("\n");

test("descriptors: the soft open-files limit is read from /proc's table", () => {
  assert.equal(openFilesLimit(LIMITS), 1024);
  assert.equal(
    openFilesLimit(LIMITS.replace("1024 ", "unlimited ")),
    undefined,
  );
  assert.equal(openFilesLimit(""), undefined);
  assert.equal(typeof openFilesLimit(), "number"); // this Linux machine
});

test("descriptors: max_open_files is lowered to leave 64 descriptors free", () => {
  assert.equal(readerLimit(1024, 1024), 960);
  assert.equal(readerLimit(100, 1024), 100);
  assert.equal(readerLimit(100, 40), 1);
  assert.equal(readerLimit(100, undefined), 100);
});
