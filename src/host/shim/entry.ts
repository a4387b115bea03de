/**
 * The file the daemon runs as a job's shim (`node entry.js`); it loads
 * only what the shim needs, so each shim starts fast and stays small.
 * `lorne shim` runs the same code.
 */
import { runShim } from "./main.js";

runShim().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`lorne shim: ${String(err)}\n`);
    process.exit(1);
  },
);
