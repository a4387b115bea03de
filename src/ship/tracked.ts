/**
 * One file the shipper knows, by identity (device + inode), whatever its
 * path is now: where it has been read to, what the server has acked, and
 * whether a batch of its lines is in flight. The reader is opened when
 * the file has something to read and closed when it is idle, so open
 * files stay under `max_open_files`.
 */
import type { EventTemplate } from "./events.js";
import type { Fingerprint, FileIdentity } from "./identity.js";
import type { OffsetEntry } from "./offsets.js";
import type { FileReader } from "./reader.js";

export interface TrackedFile {
  readonly key: string;
  readonly identity: FileIdentity;
  /** The path it was last found at (a rename moves it). */
  path: string;
  /** Index of its group in the config's `files`. */
  group: number;
  template: EventTemplate;
  reader: FileReader | undefined;
  fingerprint: Fingerprint;
  /** Offset the next read starts at (after the last line handed out). */
  readOffset: number;
  /** Offset saved in the offsets store: acked by a server. */
  ackedOffset: number;
  /** Bumped when the file is read again from the start (truncation). */
  generation: number;
  /**
   * Ids of the batches holding its lines that are not acked yet, oldest
   * first. A batch is sent only when it is first in the list of each of
   * its files, so a file's lines go out in order, one batch at a time;
   * the next batch may be read and encoded meanwhile (MAX_PENDING).
   */
  pending: number[];
  /** It may have lines to read (a notification, a refresh, a poll). */
  dirty: boolean;
  /** The last refresh found it under one of the globs. */
  matched: boolean;
  /** Size at the last stat. */
  size: number;
  lastReadMs: number;
  lastDataMs: number;
  lastAckMs: number;
}

/** Batches of one file at once: one sent, two read ahead. */
export const MAX_PENDING = 3;

/** A batch of its lines is waiting for an ack. */
export function isBusy(file: TrackedFile): boolean {
  return file.pending.length > 0;
}

/** It may give lines to one more batch. */
export function canRead(file: TrackedFile): boolean {
  return file.pending.length < MAX_PENDING;
}

/** What a batch promises to save for one file once it is acked. */
export interface OffsetClaim {
  file: TrackedFile;
  offset: number;
  generation: number;
}

/** The offsets-store entry for a file: its acked offset, seen at `now`. */
export function entryOf(file: TrackedFile, now: number): OffsetEntry {
  return {
    key: file.key,
    path: file.path,
    offset: file.ackedOffset,
    fingerprint: file.fingerprint,
    seenMs: now,
  };
}
