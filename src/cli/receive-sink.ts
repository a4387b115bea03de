/**
 * Where `lorne receive` writes event lines: a file opened for appending
 * (fsynced before each ack with --fsync) or stdout. Writes go out one at
 * a time, in call order.
 */
import { open, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";

import { errorMessage, ValidationError } from "../errors.js";

/** Where event lines go; writes are serialised in call order. */
export interface Sink {
  /** Resolves once `lines` are written (and fsynced when asked). */
  write(lines: Buffer): Promise<void>;
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
    file = await open(out, "a");
    // The file's own entry must be durable too before anything is acked.
    if (fsync) await syncDir(dirname(out));
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
    close: async () => {
      await queue;
      await file.close();
    },
  };
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
