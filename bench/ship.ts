/**
 * bench/ship: a file of 100-byte lines shipped by `lorne ship` to
 * `lorne receive` on loopback (v2, compression 1, acks, durable offsets in
 * SQLite), side by side in one run with two limits on the same file:
 *
 * - cat: `cat FILE > /dev/null`, how fast the file can be read;
 * - raw tcp: the file's bytes streamed over a plain loopback socket to a
 *   child process that only counts them (no framing, no acks).
 *
 * lorne ship and lorne receive run as the built CLI (`npm run build`
 * first), each its own process; the receiver writes every event as an
 * NDJSON line to /dev/null and answers `/stats`, which the bench polls
 * until every line is acked. Timed from spawning the shipper to that
 * moment. Peak memory: the shipper's VmHWM from /proc at the end.
 *
 *   npm run build && npx tsx bench/ship.ts [MiB]   (default 1024 MiB)
 *
 * Prints one line per case and a summary line with MiB/s against the
 * published peers (Vector 76.7 MiB/s on 2 vCPUs, the goal to beat).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createReadStream, createWriteStream, readFileSync } from "node:fs";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const LORNE = join(ROOT, "bin", "lorne");
const LINE_BYTES = 100;
const MIB = 1024 * 1024;
const VECTOR_MIB_S = 76.7;
const RUN_LIMIT_MS = 20 * 60_000;

interface CaseResult {
  name: string;
  seconds: number;
  mibS: number;
  linesS: number;
  peakMib?: number;
}

async function main(): Promise<void> {
  const mib = Number(process.argv[2] ?? 1024);
  if (!Number.isFinite(mib) || mib <= 0) {
    throw new Error(`Invalid size ${process.argv[2]}: expected MiB > 0`);
  }
  const dir = mkdtempSync(join(tmpdir(), "lorne-bench-ship-"));
  const limit = setTimeout(() => {
    process.stderr.write("bench/ship: run limit reached\n");
    rmSync(dir, { recursive: true, force: true });
    process.exit(1);
  }, RUN_LIMIT_MS);
  try {
    const file = join(dir, "logs", "bench.log");
    const lines = await makeFile(file, mib * MIB);
    const bytes = statSync(file).size;
    const results = [
      await timeCat(file, bytes, lines),
      await timeRawTcp(file, bytes, lines),
      await timeShip(dir, file, bytes, lines),
    ];
    for (const r of results) {
      process.stdout.write(
        `case=${r.name} seconds=${r.seconds.toFixed(2)} ` +
          `mib_s=${r.mibS.toFixed(1)} lines_s=${Math.round(r.linesS)}` +
          (r.peakMib === undefined
            ? ""
            : ` peak_rss_mib=${r.peakMib.toFixed(0)}`) +
          "\n",
      );
    }
    const ship = results[2] as CaseResult;
    process.stdout.write(
      `summary file_mib=${(bytes / MIB).toFixed(0)} lines=${lines} ` +
        `ship_mib_s=${ship.mibS.toFixed(1)} ` +
        `of_cat=${(ship.mibS / (results[0] as CaseResult).mibS).toFixed(3)} ` +
        `of_raw_tcp=${(ship.mibS / (results[1] as CaseResult).mibS).toFixed(3)} ` +
        `vs_vector=${(ship.mibS / VECTOR_MIB_S).toFixed(2)}\n`,
    );
  } finally {
    clearTimeout(limit);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes 100-byte lines (99 bytes and "\n") up to `size`; returns how many. */
async function makeFile(path: string, size: number): Promise<number> {
  const { mkdirSync } = await import("node:fs");
  mkdirSync(join(path, ".."), { recursive: true });
  const lines = Math.floor(size / LINE_BYTES);
  const perChunk = 10_000;
  const out = createWriteStream(path);
  let n = 0;
  while (n < lines) {
    let text = "";
    const end = Math.min(lines, n + perChunk);
    for (; n < end; n++) {
      const head = `2026-12-04T00:00:00Z level=info msg="bench line" n=${n} `;
      text += head.padEnd(LINE_BYTES - 1, "x") + "\n";
    }
    if (!out.write(text)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
  return lines;
}

async function timeCat(
  file: string,
  bytes: number,
  lines: number,
): Promise<CaseResult> {
  const start = performance.now();
  const child = spawn("sh", ["-c", 'cat "$0" > /dev/null', file], {
    stdio: "ignore",
  });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`cat exited ${code}`);
  return result("cat", start, bytes, lines);
}

async function timeRawTcp(
  file: string,
  bytes: number,
  lines: number,
): Promise<CaseResult> {
  // The counting side runs in a child so each side has a core.
  const counter = spawn(
    process.execPath,
    [
      "-e",
      `const s=require("net").createServer(c=>{let n=0;c.on("data",d=>{n+=d.length});` +
        `c.on("end",()=>{process.stdout.write(String(n));process.exit(0)})});` +
        `s.listen(0,"127.0.0.1",()=>process.stderr.write(String(s.address().port)+"\\n"))`,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const port = Number(await firstLine(counter, "stderr"));
  const start = performance.now();
  const socket = connect({ host: "127.0.0.1", port });
  await once(socket, "connect");
  createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(socket);
  let counted = "";
  counter.stdout?.on("data", (d: Buffer) => (counted += d.toString()));
  await once(counter, "exit");
  if (Number(counted) !== bytes)
    throw new Error(`raw tcp counted ${counted} of ${bytes}`);
  return result("raw_tcp", start, bytes, lines);
}

async function timeShip(
  dir: string,
  file: string,
  bytes: number,
  lines: number,
): Promise<CaseResult> {
  const receiver = spawn(
    process.execPath,
    [
      LORNE,
      "receive",
      "--listen",
      "127.0.0.1:0",
      "--out",
      "/dev/null",
      "--stats-listen",
      "127.0.0.1:0",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const listening = await logLines(receiver, 2);
  const port = addrPort(listening, "listening");
  const statsPort = addrPort(listening, "stats");
  const config = {
    state: join(dir, "state.db"),
    network: {
      servers: [{ addr: `127.0.0.1:${port}` }],
      tls: false,
      version: 2,
      compression_level: 1,
      spool_size: Number(process.env.BENCH_SPOOL ?? 4096),
    },
    max_length: 1024,
    files: [{ paths: [join(dir, "logs", "*.log")], fields: { type: "bench" } }],
  };
  const configPath = join(dir, "ship.json");
  writeFileSync(configPath, JSON.stringify(config));

  const start = performance.now();
  const shipper = spawn(
    process.execPath,
    [LORNE, "ship", "--config", configPath],
    {
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  let peakMib = 0;
  for (;;) {
    peakMib = Math.max(peakMib, vmHwmMib(shipper.pid));
    const stats = await getJson(`http://127.0.0.1:${statsPort}/stats`);
    if (Number(stats.events) >= lines) break;
    if (shipper.exitCode !== null) throw new Error("lorne ship exited early");
    await new Promise((r) => setTimeout(r, 20));
  }
  const done = result("lorne_ship", start, bytes, lines);
  peakMib = Math.max(peakMib, vmHwmMib(shipper.pid));
  const cpu = (pid: number | undefined) =>
    (cpuSeconds(pid) / done.seconds).toFixed(2);
  process.stdout.write(
    `cpu ship=${cpu(shipper.pid)} receive=${cpu(receiver.pid)} (cores busy)\n`,
  );
  shipper.kill("SIGTERM");
  receiver.kill("SIGTERM");
  await Promise.all([once(shipper, "exit"), once(receiver, "exit")]);
  return { ...done, peakMib };
}

function result(
  name: string,
  start: number,
  bytes: number,
  lines: number,
): CaseResult {
  const seconds = (performance.now() - start) / 1000;
  return {
    name,
    seconds,
    mibS: bytes / MIB / seconds,
    linesS: lines / seconds,
  };
}

function vmHwmMib(pid: number | undefined): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kb === undefined ? 0 : Number(kb) / 1024;
  } catch {
    return 0;
  }
}

/** User plus system CPU seconds of a live process, from /proc. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

async function getJson(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url);
  return (await res.json()) as Record<string, unknown>;
}

function firstLine(
  child: ChildProcess,
  stream: "stdout" | "stderr",
): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    child[stream]?.on("data", (d: Buffer) => {
      text += d.toString();
      const nl = text.indexOf("\n");
      if (nl >= 0) resolve(text.slice(0, nl));
    });
    child.once("exit", () =>
      reject(new Error("child exited before its first line")),
    );
  });
}

/** The first `n` log lines of a child's stderr. */
function logLines(child: ChildProcess, n: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let text = "";
    child.stderr?.on("data", (d: Buffer) => {
      text += d.toString();
      const lines = text.split("\n").filter((l) => l !== "");
      if (lines.length >= n) resolve(lines);
    });
    child.once("exit", () => reject(new Error(`child exited early: ${text}`)));
  });
}

function addrPort(lines: string[], at: string): number {
  const line = lines.find(
    (l) => l.includes(`at=${at}`) || l.includes(`fn=${at}`),
  );
  const port = /addr=\S*:(\d+)/.exec(line ?? "")?.[1];
  if (port === undefined)
    throw new Error(`no ${at} address in: ${lines.join(" | ")}`);
  return Number(port);
}

await main();
