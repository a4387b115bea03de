/**
 * `lorne ship --config FILE`: tails the config's files and ships every line
 * to its Lumberjack servers (Logstash's beats or lumberjack input, or
 * `lorne receive`) at least once. Takes a butteredscones config file as it
 * is; see docs/ship.md. Logs as logfmt to stderr.
 *
 * SIGUSR1 logs an `at=stats` line. SIGTERM, SIGINT and SIGHUP stop
 * reading, wait (bounded by the network timeout) for the batches in flight
 * to be acked, save offsets and exit 0; a second SIGTERM or SIGINT exits 1
 * at once. `--check` loads the config and looks at the offsets store
 * without changing it, prints a summary and exits.
 *
 * A glob that finds no file at the start is warned about (an `at=no_match`
 * log line, or a warning on stderr with `--check`) but is no error: its
 * files may appear later.
 */
import type { Command } from "commander";
import type { Server } from "node:http";

import { BufferedLogger, Context } from "../log/index.js";
import { loadShipConfig, type ShipConfig } from "../ship/config.js";
import { emptyGlobs } from "../ship/discovery.js";
import { OffsetStore } from "../ship/offsets.js";
import { Shipper } from "../ship/shipper.js";
import { serveStatistics } from "../ship/stats.js";
import { exitOnSignals } from "./signals.js";

interface ShipFlags {
  config: string;
  check?: boolean;
}

export function register(program: Command): void {
  program
    .command("ship")
    .description(
      "tail files by glob and ship their lines over Lumberjack, at least once",
    )
    .requiredOption("-c, --config <file>", "config file (butteredscones JSON)")
    .option("--check", "check the config, print a summary and exit")
    .action(async (flags: ShipFlags) => {
      await runShip(flags);
    });
}

async function runShip(flags: ShipFlags): Promise<void> {
  const config = await loadShipConfig(flags.config);
  if (flags.check === true) {
    OffsetStore.check(config.statePath);
    process.stdout.write(summary(config));
    // Not an error: the files may appear later (a service not yet run).
    for (const { key, glob } of await emptyGlobs(config.files)) {
      process.stderr.write(
        `lorne ship: warning: ${key} "${glob}" matches no file now\n`,
      );
    }
    return;
  }
  // Shipping must not stop while the log output is not being read.
  const logger = new BufferedLogger({ fd: 2, blockMs: 0 });
  const log = new Context({ data: { app: "lorne", fn: "ship" }, logger });
  const shipper = new Shipper(config, { log });
  let stats: Server | undefined;
  // Statistics first: a taken address fails before any file is opened.
  const start = async (): Promise<void> => {
    if (config.statistics !== undefined) {
      stats = await serveStatistics(shipper, config.statistics, log);
    }
    await shipper.start();
    // A typo in a glob would otherwise only show as files=0.
    for (const { key, glob } of await emptyGlobs(config.files)) {
      log.log({ at: "no_match", key, glob });
    }
  };

  // Listening before the start: a signal while the store is opened or the
  // files are found (a host stopping the jobs it just booted) still shuts
  // down cleanly, once the start is done.
  const ignoreSignals = exitOnSignals({
    log,
    logger,
    force: () => shipper.destroy(),
    close: async () => {
      const started = await starting.then(
        () => true,
        () => false,
      );
      if (!started) return false; // the failed start reports and exits
      stats?.close();
      await shipper.close();
      const c = shipper.counters;
      log.log({
        at: "exit",
        status: "ok",
        lines_acked: c.linesAcked,
        lines_skipped: c.linesSkipped,
      });
    },
  });
  // Also keeps SIGUSR1 from opening Node's debugger in a process that may
  // run as root to read logs.
  process.on("SIGUSR1", () => {
    const c = shipper.counters;
    log.log({
      at: "stats",
      files: shipper.table.size,
      files_open: shipper.table.openReaders,
      lines_read: c.linesRead,
      lines_acked: c.linesAcked,
      lines_retried: c.linesRetried,
      lines_skipped: c.linesSkipped,
      retry_queue: shipper.retryQueue,
    });
  });

  // Signals are handled from the event loop, never before this line.
  const starting = start();
  try {
    await starting;
  } catch (err) {
    ignoreSignals();
    shipper.destroy();
    stats?.close();
    logger.flushSync();
    throw err;
  }
}

function summary(config: ShipConfig): string {
  const { network } = config;
  const lines = [
    `config ok: ${config.configPath ?? "(inline)"}`,
    `state: ${config.statePath}`,
    `servers: ${network.servers.map((s) => s.address).join(", ")} ` +
      `(v${network.version}, compression ${network.compressionLevel}, ` +
      `TLS ${network.servers[0]?.tls === undefined ? "off" : "on"})`,
    ...config.files.map(
      (f, i) =>
        `files[${i}]: ${f.paths.join(" ")}` +
        (f.exclude.length > 0 ? ` excluding ${f.exclude.join(" ")}` : ""),
    ),
  ];
  return lines.join("\n") + "\n";
}
