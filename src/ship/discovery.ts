/**
 * Discovery: which paths the shipper should read. Each file group's globs
 * (`*`, `?`, `[...]`, `**`, `{a,b}`) are expanded again on every refresh,
 * minus its `exclude` globs; a path matched by several groups belongs to
 * the first. Between refreshes, file-system notifications on the folders
 * the globs start from (and the folders of matched files) report changes
 * at once, so new files and new lines are seen with low latency; the
 * refresh still finds whatever a notification missed (notifications are
 * best effort: a folder may not exist yet, or watchers may run out).
 */
import { watch, type FSWatcher } from "node:fs";
import { dirname, join } from "node:path";

import picomatch from "picomatch";
import { glob, type GlobOptions } from "tinyglobby";

import type { ShipFileGroup } from "./config.js";

/** At most this many folders are watched; the rest rely on refresh. */
export const MAX_WATCHED_DIRS = 512;

/** A path to ship and the index of its group in the config's `files`. */
export interface Found {
  path: string;
  group: number;
}

/** A glob of a group's `paths` that finds no file. */
export interface EmptyGlob {
  glob: string;
  /** Where it is in the config, e.g. `files[0].paths[1]`. */
  key: string;
}

/** Expands every group's globs once. */
export async function expand(
  groups: readonly ShipFileGroup[],
): Promise<Found[]> {
  const seen = new Set<string>();
  const found: Found[] = [];
  for (const [group, files] of groups.entries()) {
    const paths = await glob([...files.paths], globOptions(files));
    for (const path of paths.sort()) {
      if (seen.has(path)) continue;
      seen.add(path);
      found.push({ path, group });
    }
  }
  return found;
}

/**
 * The globs of `paths` that find no file now, minus their group's
 * `exclude`: a typo, or files that do not exist yet. Each glob is
 * expanded on its own, so this costs a second expansion; it is for the
 * start and `--check`, not for every refresh.
 */
export async function emptyGlobs(
  groups: readonly ShipFileGroup[],
): Promise<EmptyGlob[]> {
  const empty: EmptyGlob[] = [];
  for (const [group, files] of groups.entries()) {
    for (const [index, pattern] of files.paths.entries()) {
      const paths = await glob([pattern], globOptions(files));
      if (paths.length > 0) continue;
      empty.push({ glob: pattern, key: `files[${group}].paths[${index}]` });
    }
  }
  return empty;
}

/** The folders a group's globs start from: where new files appear. */
export function globBases(groups: readonly ShipFileGroup[]): string[] {
  const bases = new Set<string>();
  for (const group of groups) {
    for (const pattern of group.paths) {
      const { base, isGlob } = picomatch.scan(pattern);
      bases.add(isGlob ? base : dirname(pattern));
    }
  }
  return [...bases];
}

/**
 * Watches folders and calls `onChange` with the path that changed (or the
 * folder itself when the platform gives no name). Folders that cannot be
 * watched are skipped quietly: the refresh covers them.
 */
export class FolderWatcher {
  readonly #onChange: (path: string) => void;
  readonly #watchers = new Map<string, FSWatcher>();
  #closed = false;

  constructor(onChange: (path: string) => void) {
    this.#onChange = onChange;
  }

  /** Watches exactly `dirs` (up to MAX_WATCHED_DIRS), dropping others. */
  update(dirs: Iterable<string>): void {
    if (this.#closed) return;
    const wanted = new Set([...dirs].slice(0, MAX_WATCHED_DIRS));
    for (const [dir, watcher] of this.#watchers) {
      if (wanted.has(dir)) continue;
      watcher.close();
      this.#watchers.delete(dir);
    }
    for (const dir of wanted) {
      if (!this.#watchers.has(dir)) this.#watch(dir);
    }
  }

  get size(): number {
    return this.#watchers.size;
  }

  close(): void {
    this.#closed = true;
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
  }

  #watch(dir: string): void {
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, (_event, name) => {
        this.#onChange(name === null ? dir : join(dir, name));
      });
    } catch {
      return; // missing or unreadable: the next refresh tries again
    }
    watcher.on("error", () => {
      watcher.close();
      if (this.#watchers.get(dir) === watcher) this.#watchers.delete(dir);
    });
    this.#watchers.set(dir, watcher);
  }
}

function globOptions(files: ShipFileGroup): GlobOptions {
  return {
    absolute: true,
    onlyFiles: true,
    dot: true,
    followSymbolicLinks: true,
    ignore: [...files.exclude],
    expandDirectories: false,
  };
}
