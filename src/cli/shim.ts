/**
 * `lorne shim`: the per-job supervisor the host daemon starts for each
 * process job (src/host/shim/main.ts). It is not meant to be run by hand;
 * the daemon starts the same code directly (shim/entry.js), and this
 * command exists so the program is documented and can be tried alone.
 */
import type { Command } from "commander";

export function register(program: Command): void {
  program
    .command("shim")
    .description(
      "per-job supervisor the host starts for each process job (internal): " +
        "reads one job spec as a JSON line on stdin, answers on stdout",
    )
    .action(async () => {
      const { runShim } = await import("../host/shim/main.js");
      process.exit(await runShim());
    });
}
