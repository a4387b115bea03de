/**
 * The refresh: expands the globs again and reconciles what it finds with
 * the files the shipper knows, by identity (device + inode, checked by a
 * fingerprint of the first bytes), never by path:
 *
 * - a known file at a new path was renamed: the same reader goes on;
 * - a file no glob finds any more is read to its end, then closed and
 *   forgotten (its saved offset stays until `state_ttl_ms`); unless it
 *   still exists (renamed out of the globs, a symlink's old target): a
 *   program may still write to it, so its open reader follows it until
 *   idle for `close_inactive_ms`;
 * - a file shorter than its read offset, or whose first bytes changed
 *   (looked at when its size or mtime changes), was truncated: it is read
 *   again from 0;
 * - a new file resumes at its saved offset when its fingerprint still
 *   matches; it continues where a just-truncated file stopped when it is
 *   that file's copy (copytruncate, see copies.ts); a new file identical
 *   to a live file waits a while for that file's truncation before it counts
 *   as new; a new file starts at 0, or at its end for `read_from: end`
 *   when it was already there at the shipper's first look.
 *
 * Idle readers are closed after `close_inactive_ms`, and offsets of files
 * not seen for `state_ttl_ms` are forgotten.
 */
import { fstat as fstatCallback, type BigIntStats } from "node:fs";
import { readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

import picomatch from "picomatch";

import type { Context } from "../log/index.js";
import type { ShipConfig } from "./config.js";
import type { FileIdentity } from "./identity.js";
import type { OffsetEntry, OffsetStore } from "./offsets.js";
import type { FileTable } from "./table.js";

import { errorMessage } from "../errors.js";
import { CopyDetector } from "./copies.js";
import { followsNewline, lineStart, withFile } from "./probe.js";
import { expand, globBases } from "./discovery.js";
import { EventTemplate } from "./events.js";
import { entryOf, isBusy, type TrackedFile } from "./tracked.js";
import {
  fingerprintMatches,
  identityOf,
  readFingerprint,
  statIdentity,
  widenFingerprint,
} from "./identity.js";

export interface RefresherOptions {
  config: ShipConfig;
  table: FileTable;
  store: OffsetStore;
  host: string;
  now: () => number;
  log: Context;
  /** Something may be ready to read. */
  wake: () => void;
  /** Asks for a refresh as soon as the current work allows. */
  refreshSoon: () => void;
}

export class Refresher {
  readonly #o: RefresherOptions;
  readonly #copies: CopyDetector;
  /** Entries of files first seen in this refresh, saved at its end. */
  readonly #seen: OffsetEntry[] = [];
  /** Modification time (ns) of each known file at the last look, by key. */
  readonly #mtimes = new Map<string, bigint>();
  #first = true;

  constructor(options: RefresherOptions) {
    this.#o = options;
    this.#copies = new CopyDetector(options.now);
  }

  /** One refresh; returns the folders worth watching. */
  async refresh(): Promise<string[]> {
    const { config, table, store, now } = this.#o;
    const found = await expand(config.files);
    const first = this.#first;
    this.#first = false;
    for (const file of table.files()) file.matched = false;

    this.#copies.snapshot(table.files());
    const dirs = new Set(globBases(config.files));
    for (const { path, group } of found) {
      dirs.add(dirname(path));
      try {
        await this.#visit(path, group, first);
      } catch (err) {
        this.#o.log.log({
          at: "refresh_error",
          "file.path": path,
          error: errorMessage(err),
        });
      }
    }

    if (first) await this.#findMoved();

    const nowMs = now();
    const seen: string[] = [];
    for (const file of [...table.files()]) {
      if (file.matched) seen.push(file.key);
      await this.#tidy(file, nowMs);
    }
    store.commit(this.#seen.splice(0));
    store.touch(seen, nowMs);
    const expired = store.expire(config.stateTtlMs, nowMs);
    if (expired.length > 0)
      this.#o.log.log({ at: "expire", files: expired.length });
    this.#copies.forgetOld(nowMs);
    this.#o.wake();
    return [...dirs];
  }

  /**
   * At start: files with a saved offset that no glob finds any more may
   * have been rotated away while the shipper was stopped, with lines not
   * yet acked. Each is looked for in its old folder, by identity, and if
   * it is still the same file and has more to read, it is followed like a
   * file renamed out of the globs while running.
   */
  async #findMoved(): Promise<void> {
    const { table, store, log } = this.#o;
    const lost = new Map<string, OffsetEntry[]>();
    for (const entry of store.all()) {
      if (table.get(entry.key) !== undefined) continue;
      const dir = dirname(entry.path);
      lost.set(dir, [...(lost.get(dir) ?? []), entry]);
    }
    for (const [dir, entries] of lost) {
      const wanted = new Map(entries.map((e) => [e.key, e]));
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        continue; // the folder is gone too
      }
      for (const name of names) {
        if (wanted.size === 0) break;
        const path = join(dir, name);
        const found = await statIdentity(path).catch(() => undefined);
        const entry = found && wanted.get(found.identity.key);
        if (found === undefined || entry === undefined) continue;
        wanted.delete(entry.key);
        if (found.size <= entry.offset) continue;
        await this.#add(path, this.#groupOf(entry.path), found.identity, false);
        const file = table.get(entry.key);
        if (file === undefined) continue;
        file.matched = false;
        log.log({ at: "moved", "file.path": path, was: entry.path });
      }
    }
  }

  // The group whose globs took `path`; the first when none does now.
  #groupOf(path: string): number {
    const at = this.#o.config.files.findIndex(
      (group) =>
        group.paths.some((glob) => picomatch.isMatch(path, glob)) &&
        !group.exclude.some((glob) => picomatch.isMatch(path, glob)),
    );
    return Math.max(at, 0);
  }

  /** Starts `file` again from 0, remembering where it was for its copy. */
  truncated(file: TrackedFile): void {
    const { table, store, now, log } = this.#o;
    this.#copies.truncated(file.fingerprint, {
      readOffset: file.readOffset,
      ackedOffset: file.ackedOffset,
    });
    log.log({
      at: "truncated",
      "file.path": file.path,
      offset: file.readOffset,
    });
    file.generation++;
    file.readOffset = 0;
    file.ackedOffset = 0;
    file.fingerprint = { length: 0, hash: EMPTY_HASH };
    // A read in progress started before the truncation: the spooler sees
    // the generation change, drops what it read and resets the reader.
    if (file.reader?.reading === false) file.reader.reset(0);
    store.commit([entryOf(file, now())]);
    table.markDirty(file);
    if (this.#copies.holding) this.#o.refreshSoon();
  }

  async #visit(path: string, group: number, first: boolean): Promise<void> {
    const { table } = this.#o;
    const found = await statIdentity(path);
    if (found === undefined) return;
    const key = found.identity.key;
    const known = table.get(key);
    if (known === undefined) {
      await this.#add(path, group, found.identity, first);
      if (table.get(key) !== undefined) this.#mtimes.set(key, found.mtimeNs);
      return;
    }
    known.matched = true;
    if (known.path !== path) this.#moved(known, path);
    const changed =
      found.size !== known.size || found.mtimeNs !== this.#mtimes.get(key);
    this.#mtimes.set(key, found.mtimeNs);
    known.size = found.size;
    if (found.size < known.readOffset) {
      // The stat may predate a read that went past its size (the spooler
      // reads beside the refresh): only a second look confirms it.
      await this.#confirmShorter(known, path);
    } else if (changed) {
      await this.#checkPrefix(known, path);
    }
    // Also when nothing changed: a read may have failed in between (the
    // file was renamed before its reader opened it).
    if (found.size > known.readOffset) table.markDirty(known);
  }

  #moved(file: TrackedFile, path: string): void {
    this.#o.table.moveTo(file, path);
    file.template = this.#template(file.group, path);
  }

  async #confirmShorter(file: TrackedFile, path: string): Promise<void> {
    const generation = file.generation;
    const again = await statIdentity(path);
    if (file.generation !== generation) return; // restarted meanwhile
    if (again?.identity.key !== file.key) return; // a refresh deals with it
    file.size = again.size;
    if (again.size < file.readOffset) this.truncated(file);
  }

  // The same inode with other first bytes was rewritten from the start.
  // A file restarted meanwhile (the spooler saw it too) is left alone.
  async #checkPrefix(file: TrackedFile, path: string): Promise<void> {
    const generation = file.generation;
    await withFile(path, file.identity, async (handle, size) => {
      if (file.generation !== generation) return;
      const wider = await widenFingerprint(handle, file.fingerprint, size);
      const same =
        wider !== undefined &&
        (size < file.readOffset ||
          (await followsNewline(handle, file.readOffset)));
      if (file.generation !== generation) return;
      if (same) file.fingerprint = wider;
      else this.truncated(file);
    });
  }

  async #add(
    path: string,
    group: number,
    identity: FileIdentity,
    first: boolean,
  ): Promise<void> {
    const { config, store, table, now, log } = this.#o;
    await withFile(path, identity, async (handle, size) => {
      const fingerprint = await readFingerprint(handle, size);
      const saved = store.get(identity.key);
      let start: number;
      // Saved offset: where reading starts, but for a copy (see copies.ts).
      let acked: number | undefined;
      let how: string;
      if (saved !== undefined) {
        // A saved offset always follows a newline: if it does not any
        // more, the file was rewritten (maybe with the same first bytes).
        const same =
          size >= saved.offset &&
          (await fingerprintMatches(handle, saved.fingerprint)) &&
          (await followsNewline(handle, saved.offset));
        start = same ? saved.offset : 0;
        how = same ? "resume" : "replaced";
      } else {
        const copy = await this.#copies.copyOf(handle, size);
        if (copy !== undefined) {
          start = copy.readOffset;
          acked = copy.ackedOffset;
          how = "copy";
        } else if (this.#copies.hold(identity.key, fingerprint)) {
          return;
        } else {
          const atEnd = first && config.files[group]?.readFrom === "end";
          start = atEnd ? await lineStart(handle, size) : 0;
          how = atEnd ? "end" : "beginning";
        }
      }
      this.#copies.settled(identity.key);
      const file: TrackedFile = {
        key: identity.key,
        identity,
        path,
        group,
        template: this.#template(group, path),
        reader: undefined,
        fingerprint,
        readOffset: start,
        ackedOffset: acked ?? start,
        generation: 0,
        pending: [],
        dirty: size > start,
        matched: true,
        size,
        lastReadMs: 0,
        lastDataMs: now(),
        lastAckMs: 0,
      };
      table.add(file);
      // Saved at once, so a restart knows the file was seen and where
      // it started (read_from end, a copy), before any batch is acked.
      if (how !== "resume") this.#seen.push(entryOf(file, now()));
      log.log({ at: "open", "file.path": path, offset: start, from: how });
    });
  }

  // Closes idle readers; forgets files no glob finds once read to the end
  // (and, when they still exist, once idle).
  async #tidy(file: TrackedFile, nowMs: number): Promise<void> {
    const { table, config } = this.#o;
    if (isBusy(file) || file.dirty) return;
    if (!file.matched) {
      if (await this.#follow(file, nowMs)) return;
      await table.remove(file);
      this.#mtimes.delete(file.key);
      return;
    }
    if (
      file.reader !== undefined &&
      nowMs - file.lastDataMs >= config.closeInactiveMs
    ) {
      await table.closeReader(file);
    }
  }

  // Whether to go on reading a file no glob finds: it grew, or it exists
  // and was written lately. Without an open reader it cannot be reached.
  async #follow(file: TrackedFile, nowMs: number): Promise<boolean> {
    const reader = file.reader;
    if (reader === undefined) return false;
    let stats: BigIntStats;
    try {
      stats = await fstat(reader.fd, { bigint: true });
    } catch {
      return false; // closed meanwhile
    }
    // The descriptor may have been closed and its number reused meanwhile.
    if (file.reader !== reader || identityOf(stats).key !== file.key) {
      return false;
    }
    const size = Number(stats.size);
    if (size !== file.size) {
      file.size = size;
      this.#o.table.markDirty(file);
      return true;
    }
    if (stats.nlink === 0n) return false; // deleted, and read to its end
    return nowMs - file.lastDataMs < this.#o.config.closeInactiveMs;
  }

  #template(group: number, path: string): EventTemplate {
    const files = this.#o.config.files[group];
    return new EventTemplate({
      host: this.#o.host,
      fields: files?.fields ?? {},
      file: files?.includeFileFields === true ? path : undefined,
    });
  }
}

// sha256 of no bytes: the fingerprint of an empty file.
const EMPTY_HASH =
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const fstat = promisify(fstatCallback) as (
  fd: number,
  options: { bigint: true },
) => Promise<BigIntStats>;
