/**
 * `lorne ship` from the command line (the built binary: `npm run build`
 * first): help, a missing config, `--check`, and bad configs that must
 * never start a shipper.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { test, type TestContext } from "node:test";

import { LORNE, runLorne, tempDir, waitFor } from "../helpers.js";
import {
  configObject,
  savedEntries,
  spawnShip,
  startReceiver,
  waitForLines,
  writeConfig,
} from "./harness.js";

function setup(t: TestContext): string {
  const dir = tempDir("lorne-ship-cli-");
  t.after(dir.remove);
  return dir.path;
}

/**
 * `lorne ship` on `logs/a.log` (holding "one") and a receiver, once the
 * line is there; `paths` are extra globs besides `logs/*.log`.
 */
async function shipOne(t: TestContext, paths: string[] = []) {
  const dir = setup(t);
  mkdirSync(join(dir, "logs"));
  writeFileSync(join(dir, "logs", "a.log"), "one\n");
  const received = await startReceiver();
  t.after(() => received.close());
  const config = configObject(dir, received.port, {}, [
    { paths: [join(dir, "logs", "*.log"), ...paths] },
  ]);
  const child = spawnShip(writeConfig(dir, config));
  t.after(() => child.kill("SIGKILL"));
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  await waitFor(() => received.lines().includes("one"), "the line");
  const exited = async () => {
    const [code, signal] = (await once(child, "exit")) as [
      number | null,
      string | null,
    ];
    return { code, signal };
  };
  return { dir, child, stderr: () => stderr, exited };
}

test("ship cli: --help describes the command and its flags", async () => {
  const { code, stdout, stderr } = await runLorne(["ship", "--help"]);
  assert.equal(code, 0);
  assert.equal(stderr, "");
  assert.equal(
    stdout,
    [
      "Usage: lorne ship [options]",
      "",
      "tail files by glob and ship their lines over Lumberjack, at least once",
      "",
      "Options:",
      "  -c, --config <file>  config file (butteredscones JSON)",
      "  --check              check the config, print a summary and exit",
      "  -h, --help           display help for command",
      "",
    ].join("\n"),
  );
});

test("ship cli: a missing config file is one line naming it, exit 2", async (t) => {
  const dir = setup(t);
  const path = join(dir, "missing.json");
  const { code, stdout, stderr } = await runLorne(["ship", "--config", path]);
  assert.deepEqual(
    { code, stdout, stderr },
    {
      code: 2,
      stdout: "",
      stderr: `lorne: Cannot read config "${path}": no such file\n`,
    },
  );
});

test("ship cli: no --config is a usage error, exit 2", async () => {
  const { code, stdout, stderr } = await runLorne(["ship"]);
  assert.deepEqual(
    { code, stdout, stderr },
    {
      code: 2,
      stdout: "",
      stderr:
        "lorne: required option '-c, --config <file>' not specified (see --help)\n",
    },
  );
});

test("ship cli: --check prints a summary and touches no state", async (t) => {
  const dir = setup(t);
  mkdirSync(join(dir, "logs"));
  writeFileSync(join(dir, "logs", "a.log"), "");
  writeFileSync(join(dir, "messages"), "");
  const config = configObject(dir, 5044, {}, [
    {
      paths: ["logs/*.log", join(dir, "messages")],
      exclude: ["logs/*.gz"],
    },
    { paths: ["other/**/*.log"] },
  ]);
  (config.network as Record<string, unknown>).compression_level = 3;
  const path = writeConfig(dir, config);
  const { code, stdout, stderr } = await runLorne([
    "ship",
    "--config",
    path,
    "--check",
  ]);
  assert.deepEqual(
    { code, stderr },
    {
      code: 0,
      stderr:
        "lorne ship: warning: files[1].paths[0] " +
        `"${join(dir, "other/**/*.log")}" matches no file now\n`,
    },
  );
  assert.equal(
    stdout,
    [
      `config ok: ${path}`,
      `state: ${join(dir, "state.db")}`,
      "servers: 127.0.0.1:5044 (v2, compression 3, TLS off)",
      `files[0]: ${join(dir, "logs/*.log")} ${join(dir, "messages")} excluding ${join(dir, "logs/*.gz")}`,
      `files[1]: ${join(dir, "other/**/*.log")}`,
      "",
    ].join("\n"),
  );
  assert.equal(existsSync(join(dir, "state.db")), false);
});

// A typo in a glob would otherwise pass as "config ok" and a quiet files=0.
test("ship cli: --check warns about each glob that matches no file (after exclude), and still exits 0", async (t) => {
  const dir = setup(t);
  mkdirSync(join(dir, "logs"));
  writeFileSync(join(dir, "logs", "a.log"), "");
  writeFileSync(join(dir, "logs", "b.gz"), "");
  const path = writeConfig(
    dir,
    configObject(dir, 5044, {}, [
      { paths: ["logs/*.log", "/nonexistent/dir/*.log"] },
      { paths: ["logs/*.gz"], exclude: ["logs/b.*"] },
    ]),
  );
  const { code, stderr } = await runLorne(["ship", "-c", path, "--check"]);
  assert.deepEqual(
    { code, stderr },
    {
      code: 0,
      stderr: [
        'lorne ship: warning: files[0].paths[1] "/nonexistent/dir/*.log" ' +
          "matches no file now",
        `lorne ship: warning: files[1].paths[0] "${join(dir, "logs/*.gz")}" ` +
          "matches no file now",
        "",
      ].join("\n"),
    },
  );
});

test("ship cli: a run logs at=no_match for each glob that matches nothing at start", async (t) => {
  const { child, stderr, exited } = await shipOne(t, [
    "/nonexistent/dir/*.log",
  ]);
  await waitFor(() => stderr().includes("at=no_match"), "the warning");

  assert.match(stderr(), /at=start files=1 /);
  const warnings = stderr()
    .split("\n")
    .filter((l) => l.includes("at=no_match"));
  assert.deepEqual(
    warnings.map((l) => l.slice(l.indexOf("at="))),
    ["at=no_match key=files[0].paths[1] glob=/nonexistent/dir/*.log"],
  );
  child.kill("SIGTERM");
  assert.deepEqual(await exited(), { code: 0, signal: null });
});

// Each config is otherwise good: a shipper that started would create the
// state file and send the waiting line to the receiver.
const BAD: {
  name: string;
  change: (config: Record<string, unknown>, dir: string) => void;
  message: (dir: string) => string;
}[] = [
  {
    name: "a number out of range",
    change: (c) => {
      (c.network as Record<string, unknown>).spool_size = 0;
    },
    message: () =>
      "Invalid network.spool_size 0: expected a whole number from 1 to 1048576",
  },
  {
    name: "an unknown key",
    change: (c) => {
      (c.files as Record<string, unknown>[])[0]!.feilds = {};
    },
    message: () =>
      "Unknown key files[0].feilds: expected one of paths, fields, exclude, read_from, include_file_fields",
  },
  {
    name: "a bad server address",
    change: (c) => {
      (c.network as Record<string, unknown>).servers = [{ addr: "127.0.0.1" }];
    },
    message: () =>
      'Invalid network.servers[0].addr "127.0.0.1": expected "host:port"',
  },
  {
    name: "a state file in a folder that does not exist",
    change: (c, dir) => {
      c.state = join(dir, "nowhere", "state.db");
    },
    message: (dir) =>
      `Cannot open state "${join(dir, "nowhere", "state.db")}": directory "${join(dir, "nowhere")}" does not exist`,
  },
];

for (const bad of BAD) {
  test(`ship cli: a config with ${bad.name} never starts (exit 2, names the key)`, async (t) => {
    const dir = setup(t);
    mkdirSync(join(dir, "logs"));
    writeFileSync(join(dir, "logs", "a.log"), "must not be sent\n");
    const received = await startReceiver();
    t.after(() => received.close());
    const config = configObject(dir, received.port);
    bad.change(config, dir);
    const path = writeConfig(dir, config);

    const { code, stdout, stderr } = await runLorne(["ship", "-c", path]);
    assert.deepEqual(
      { code, stdout, stderr },
      { code: 2, stdout: "", stderr: `lorne: ${bad.message(dir)}\n` },
    );
    assert.equal(existsSync(join(dir, "state.db")), false);
    assert.deepEqual(received.lines(), []);
  });
}

test("ship cli: SIGUSR1 logs statistics (and opens no debugger); SIGTERM exits 0", async (t) => {
  const { child, stderr, exited } = await shipOne(t);

  child.kill("SIGUSR1");
  await waitFor(() => stderr().includes("at=stats"), "the stats line");
  assert.match(
    stderr(),
    /at=stats files=1 files_open=\d lines_read=1 lines_acked=1/,
  );
  assert.doesNotMatch(stderr(), /Debugger/);
  child.kill("SIGTERM");
  assert.deepEqual(await exited(), { code: 0, signal: null });
});

// A closed terminal or a logrotate postrotate sends SIGHUP: the shipper
// writes no file to reopen, so it stops cleanly as on SIGTERM.
test("ship cli: SIGHUP stops like SIGTERM: offsets saved, at=exit, exit 0", async (t) => {
  const { dir, child, stderr, exited } = await shipOne(t);

  child.kill("SIGHUP");
  assert.deepEqual(await exited(), { code: 0, signal: null });
  assert.match(stderr(), /at=signal signal=SIGHUP\n/);
  assert.match(stderr(), /at=closed\n/);
  assert.match(stderr(), /at=exit status=ok lines_acked=1 lines_skipped=0\n/);
  assert.deepEqual(
    savedEntries(join(dir, "state.db")).map((e) => e.offset),
    [4],
  );
});

test("ship cli: a statistics address in use fails before any file or state is opened", async (t) => {
  const dir = setup(t);
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
  t.after(() => taken.close());
  const port = (taken.address() as AddressInfo).port;
  const config = configObject(dir, 1, {
    statistics: { addr: `127.0.0.1:${port}` },
  });
  const { code, stderr } = await runLorne([
    "ship",
    "--config",
    writeConfig(dir, config),
  ]);
  assert.equal(code, 1);
  assert.match(
    stderr,
    new RegExp(`Cannot listen on statistics.addr 127.0.0.1:${port}`),
  );
  assert.equal(existsSync(join(dir, "state.db")), false);
});

test("ship cli: under a descriptor limit lower than max_open_files, every file is shipped", async (t) => {
  const dir = setup(t);
  mkdirSync(join(dir, "logs"));
  const lines: string[] = [];
  for (let i = 0; i < 300; i++) {
    writeFileSync(join(dir, "logs", `f${i}.log`), `file ${i}\n`);
    lines.push(`file ${i}`);
  }
  const received = await startReceiver();
  t.after(() => received.close());
  const configPath = writeConfig(dir, configObject(dir, received.port));
  // max_open_files stays at its default, 1024, far above the limit.
  const child = spawn(
    "sh",
    [
      "-c",
      'ulimit -n 150 && exec "$0" "$@"',
      process.execPath,
      LORNE,
      "ship",
      "--config",
      configPath,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  t.after(() => child.kill("SIGKILL"));
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  await waitForLines(received, lines, 30_000);
  assert.match(stderr, /at=start files=300 servers=1 max_open_files=86/);
  child.kill("SIGTERM");
  const [code] = (await once(child, "exit")) as [number | null];
  assert.equal(code, 0);
});

test("ship cli: --check refuses a state file that is not lorne ship state", async (t) => {
  const dir = setup(t);
  writeFileSync(join(dir, "state.db"), "not a database\n".repeat(100));
  const { code, stdout, stderr } = await runLorne([
    "ship",
    "--config",
    writeConfig(dir, configObject(dir, 5044)),
    "--check",
  ]);
  assert.equal(code, 2);
  assert.equal(stdout, "");
  assert.equal(
    stderr,
    `lorne: Cannot open state "${join(dir, "state.db")}": it is not an SQLite database\n`,
  );
});
