/**
 * The CLI's tables: columns line up, and what a job put in a cell (its
 * command, its error) cannot drive the terminal or break the rows.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { formatTable } from "../../src/cli/table.js";

test("table: columns are padded to the widest cell, the last is not", () => {
  assert.equal(
    formatTable(
      ["ID", "STATUS", "COMMAND"],
      [
        ["web", "running", "node server.js"],
        ["worker-1", "done", "sh -c true"],
      ],
    ),
    "ID         STATUS    COMMAND\n" +
      "web        running   node server.js\n" +
      "worker-1   done      sh -c true\n",
  );
});

test("table: control characters in cells are shown as escapes", () => {
  const text = formatTable(
    ["ID", "COMMAND"],
    [["esc", "sleep 20 # \x1b[2J\x1b[31mFAKE\nline2\r\t\x00\x7f\x9b"]],
  );
  assert.equal(
    text,
    "ID    COMMAND\n" +
      "esc   sleep 20 # \\x1b[2J\\x1b[31mFAKE\\nline2\\r\\t\\x00\\x7f\\x9b\n",
  );
  assert.equal(text.split("\n").length, 3, "one line per row");
});
