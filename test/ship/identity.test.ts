/**
 * File identity: device + inode keys that survive a rename and change for
 * a new file, symlinks followed, and fingerprints that catch a file
 * truncated and rewritten in place, read without moving a shared position.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { closeSync, openSync, readSync, type BigIntStats } from "node:fs";
import {
  appendFile,
  open,
  rename,
  symlink,
  truncate,
  unlink,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { after, test } from "node:test";

import { LorneError } from "../../src/errors.js";
import {
  FINGERPRINT_BYTES,
  fingerprintMatches,
  identityOf,
  readFingerprint,
  statIdentity,
} from "../../src/ship/identity.js";
import { tempDir } from "../helpers.js";

const dir = tempDir("lorne-identity-");
after(() => dir.remove());

const sha256 = (data: string | Buffer) =>
  createHash("sha256").update(data).digest("hex");

/** Identity and size of a path that must exist. */
async function mustStat(path: string) {
  const found = await statIdentity(path);
  assert.ok(found, `${path} should exist`);
  return found;
}

test("identity: keys are exact for inode numbers past 2^53", () => {
  const stats = { dev: 2049n, ino: 18_446_744_073_709_551_557n };
  assert.deepEqual(identityOf(stats as BigIntStats), {
    key: "2049:18446744073709551557",
    dev: "2049",
    ino: "18446744073709551557",
  });
});

test("identity: a renamed file keeps its key, a new file gets another", async () => {
  const path = join(dir.path, "app.log");
  await writeFile(path, "first file\n");
  const before = await mustStat(path);
  assert.equal(before.size, 11);
  assert.equal(
    before.identity.key,
    `${before.identity.dev}:${before.identity.ino}`,
  );

  await rename(path, `${path}.1`);
  const moved = await mustStat(`${path}.1`);
  assert.deepEqual(moved.identity, before.identity);
  assert.equal(await statIdentity(path), undefined);

  // The old file still exists, so its inode cannot be reused.
  await writeFile(path, "second file\n");
  const created = await mustStat(path);
  assert.notEqual(created.identity.key, before.identity.key);
});

test("identity: a file recreated after delete differs by key or fingerprint", async () => {
  const path = join(dir.path, "reused.log");
  await writeFile(path, "old content\n");
  const old = await mustStat(path);
  const handle = await open(path, "r");
  const fp = await readFingerprint(handle, old.size);
  await handle.close();

  await unlink(path);
  await writeFile(path, "new content\n");
  const now = await mustStat(path);
  const reopened = await open(path, "r");
  const same = await fingerprintMatches(reopened, fp);
  await reopened.close();
  // The inode may well be reused; the fingerprint tells them apart.
  assert.ok(now.identity.key !== old.identity.key || !same);
});

test("identity: symlinks are followed; missing paths are undefined", async () => {
  const target = join(dir.path, "target.log");
  const link = join(dir.path, "link.log");
  await writeFile(target, "12345");
  await symlink(target, link);
  assert.deepEqual(await statIdentity(link), await mustStat(target));

  await unlink(target);
  assert.equal(await statIdentity(link), undefined);
  assert.equal(await statIdentity(join(dir.path, "nothing")), undefined);
  // A path through a regular file (ENOTDIR) is gone too.
  await writeFile(target, "x");
  assert.equal(await statIdentity(join(target, "child")), undefined);
});

test("identity: other stat failures are LorneErrors with the cause", async () => {
  const loop = join(dir.path, "loop.log");
  await symlink(loop, loop);
  await assert.rejects(
    statIdentity(loop),
    (err) =>
      err instanceof LorneError &&
      err.code === "unavailable" &&
      err.message ===
        `Cannot stat "${loop}": ELOOP: too many symbolic links encountered, stat '${loop}'` &&
      (err.cause as NodeJS.ErrnoException).code === "ELOOP",
  );
});

test("identity: fingerprints cover min(size, FINGERPRINT_BYTES) bytes", async () => {
  const path = join(dir.path, "fp.log");
  const content = Buffer.alloc(3000);
  for (let i = 0; i < content.length; i++) content[i] = (i * 7) % 256;
  await writeFile(path, content);
  const handle = await open(path, "r");
  const fd = openSync(path, "r");
  try {
    assert.equal(FINGERPRINT_BYTES, 1024);
    const cases: [number, number][] = [
      [0, 0],
      [10, 10],
      [1024, 1024],
      [3000, 1024],
      // A size larger than the file: only what is there.
      [5000, 1024],
    ];
    for (const [size, length] of cases) {
      const want = { length, hash: sha256(content.subarray(0, length)) };
      assert.deepEqual(await readFingerprint(handle, size), want, `${size}`);
      assert.deepEqual(await readFingerprint(fd, size), want, `fd ${size}`);
    }

    // Positional reads: the descriptor's own position is still 0.
    const next = Buffer.alloc(4);
    assert.equal(readSync(fd, next, 0, 4, null), 4);
    assert.deepEqual(next, content.subarray(0, 4));
    const viaHandle = await handle.read(Buffer.alloc(4), 0, 4, null);
    assert.deepEqual(viaHandle.buffer, content.subarray(0, 4));
  } finally {
    closeSync(fd);
    await handle.close();
  }
});

test("identity: fingerprintMatches catches truncate and rewrite", async () => {
  const path = join(dir.path, "rewrite.log");
  await writeFile(path, "2024-01-01 first line\n");
  const handle = await open(path, "r");
  try {
    const fp = await readFingerprint(handle, 22);
    assert.equal(fp.length, 22);
    assert.equal(await fingerprintMatches(handle, fp), true);

    await appendFile(path, "more lines\n");
    assert.equal(await fingerprintMatches(handle, fp), true, "growth");

    await truncate(path, 0);
    assert.equal(await fingerprintMatches(handle, fp), false, "truncated");

    await writeFile(path, "2024-01-02 other line\n");
    assert.equal(await fingerprintMatches(handle, fp), false, "rewritten");

    await writeFile(path, "2024-01-01 first line\nnew tail\n");
    assert.equal(await fingerprintMatches(handle, fp), true, "same start");

    // An empty file's fingerprint says nothing, so it matches anything.
    const empty = { length: 0, hash: sha256("") };
    assert.deepEqual(await readFingerprint(handle, 0), empty);
    assert.equal(await fingerprintMatches(handle, empty), true);
  } finally {
    await handle.close();
  }
});
