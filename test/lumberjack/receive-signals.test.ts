/**
 * `lorne receive` and SIGHUP: with --out FILE it reopens the file (what
 * logrotate's postrotate asks for) and goes on; with stdout it closes
 * like SIGTERM. The built binary; build first.
 */
import assert from "node:assert/strict";
import { readFileSync, renameSync, rmdirSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";

import { tempDir, waitFor } from "../helpers.js";
import { client, receive } from "./receive-process.js";

const dir = tempDir("lorne-receive-hup-");

after(() => dir.remove());

test("receive: SIGHUP reopens --out, so lines after a rotation go to the new file", async () => {
  const out = join(dir.path, "events.ndjson");
  const r = await receive(["--out", out, "--fsync"]);
  const c = client(r.port, 2);
  await c.send([{ n: 1 }]);

  renameSync(out, `${out}.1`);
  await c.send([{ n: 2 }]);
  r.child.kill("SIGHUP");
  await waitFor(
    () => r.log.some((l) => l.includes(`at=reopen file.path=${out}`)),
    "the reopen line",
  );
  await c.send([{ n: 3 }]);

  assert.equal(readFileSync(`${out}.1`, "utf8"), '{"n":1}\n{"n":2}\n');
  assert.equal(readFileSync(out, "utf8"), '{"n":3}\n');
  assert.ok(r.log.some((l) => l.includes("at=signal signal=SIGHUP")));
  assert.equal(r.child.exitCode, null);
  r.child.kill("SIGTERM");
  assert.equal(await r.exited, 0);
  assert.ok(
    r.log.some((l) => /at=exit status=ok connections=0 events=3/.test(l)),
    r.log.join("\n"),
  );
});

test("receive: a reopen that fails is logged and the old file takes the lines", async () => {
  const folder = join(dir.path, "gone");
  mkdirSync(folder);
  const out = join(folder, "events.ndjson");
  const r = await receive(["--out", out]);
  const c = client(r.port, 2);
  await c.send([{ n: 1 }]);

  renameSync(out, join(dir.path, "kept.ndjson"));
  rmdirSync(folder);
  r.child.kill("SIGHUP");
  await waitFor(
    () =>
      r.log.find((l) => l.includes(`at=reopen_error file.path=${out} error=`)),
    "the reopen error",
  );
  await c.send([{ n: 2 }]);

  assert.equal(
    readFileSync(join(dir.path, "kept.ndjson"), "utf8"),
    '{"n":1}\n{"n":2}\n',
  );
  r.child.kill("SIGTERM");
  assert.equal(await r.exited, 0);
});

test("receive: with --out -, SIGHUP closes it like SIGTERM (exit 0)", async () => {
  const r = await receive([]);
  await client(r.port, 2).send([{ n: 1 }]);

  r.child.kill("SIGHUP");
  assert.equal(await r.exited, 0);
  assert.equal(r.stdout(), '{"n":1}\n');
  assert.ok(r.log.some((l) => l.includes("at=signal signal=SIGHUP")));
  assert.ok(
    r.log.some((l) => /at=exit status=ok connections=0 events=1/.test(l)),
    r.log.join("\n"),
  );
});
