/**
 * Where `lorne receive` writes event lines: a file opened for appending
 * (fsynced before each ack with --fsync) or stdout. Writes go out one at
 * a time, in call order. A file can be reopened by name (on SIGHUP, after
 * logrotate moved it away): lines after that go to the new file.
 */
import { open, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";

import { errorMessage, ValidationError } from "../errors.js";

/** Where event lines go; writes are serialised in call order. */
export interface Sink {
  /** Resolves once `lines` are written (and fsynced when asked). */
  write(lines: Buffer): Promise<void>;
  /**
   * Opens the file again by name, after the writes already asked for;
   * when that fails, rejects and the old file takes the next lines.
   * Absent for stdout.
   */
  reopen?: () => Promise<void>;
  close(): Promise<void>;
}

export async function openSink(out: string, fsync: boolean): Promise<Sink> {
  let queue = Promise.resolve();
  const serial = (step: () => Promise<void>) => {
    const run = queue.then(step);
    queue = run.catch(() => {});
    return run;
  };
  if (out === "-") {
    return {
      write: (lines) => serial(() => writeStdout(lines)),
      close: () => queue,
    };
  }

  let file: FileHandle;
  try {
    file = await openFile(out, fsync);
  } catch (err) {
    throw new ValidationError(
      `Cannot open --out "${out}": ${errorMessage(err)}`,
      "out",
      { cause: err },
    );
  }
  return {
    write: (lines) =>
      serial(async () => {
        await file.appendFile(lines);
        if (fsync) await file.datasync();
      }),
    reopen: () =>
      serial(async () => {
        const old = file;
        file = await openFile(out, fsync);
        await old.close();
      }),
    close: async () => {
      await queue;
      await file.close();
    },
  };
}

async function openFile(path: string, fsync: boolean): Promise<FileHandle> {
  const file = await open(path, "a");
  try {
    // The file's own entry must be durable too before anything is acked.
    if (fsync) await syncDir(dirname(path));
    return file;
  } catch (err) {
    await file.close();
    throw err;
  }
}

function writeStdout(lines: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(lines, (err) => (err ? reject(err) : resolve()));
  });
}

async function syncDir(path: string): Promise<void> {
  const dir = await open(path, "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
