/**
 * What happens when the reader of our stdout goes away (`lorne ... | head`):
 * by default the command ends quietly; a command can take over instead
 * (`lorne run` passes SIGPIPE on to its job and waits for it to end).
 * Writes to a terminal that hung up (EIO) are dropped: nobody can read
 * them, and the hangup ends the command its own way (terminal.ts).
 */
let takeover: (() => void) | null = null;

/** Installs the stdout handler; called once by main. */
export function watchBrokenPipe(): void {
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EIO") return;
    if (err.code !== "EPIPE") throw err;
    if (takeover) return takeover();
    process.exit(process.exitCode ?? 0);
  });
  process.stderr.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EIO" && err.code !== "EPIPE") throw err;
  });
}

/**
 * Handles broken pipes instead of ending, until undone (each failed write
 * reports one, so the handler should act once).
 */
export function onBrokenPipe(handler: () => void): () => void {
  takeover = handler;
  return () => {
    if (takeover === handler) takeover = null;
  };
}
