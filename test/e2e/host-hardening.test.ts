/**
 * End to end: hostile and broken input against a real daemon. Each case
 * came from a break test; the daemon must answer clearly and stay up.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { request, type IncomingHttpHeaders } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { test } from "node:test";

import { HostClient } from "../../src/host/client.js";
import {
  authHeader,
  cliEnv,
  isAlive,
  LORNE,
  readText,
  ROOT,
  runLorne,
  startDaemon,
  tempDir,
  waitFor,
  type DaemonProcess,
  useDaemon,
} from "../helpers.js";

let daemon: DaemonProcess;
let client: HostClient;
useDaemon(["--grace-ms", "500"], (d, c) => ((daemon = d), (client = c)));

/** A raw HTTP request with full control over target and headers. */
function raw(
  target: string,
  headers: Record<string, string> = {},
  method = "GET",
  body?: string,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const url = new URL(daemon.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: target,
        method,
        headers: { ...authHeader(daemon), ...headers },
        setHost: !("host" in headers),
      },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text,
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

test("hardening: malformed request targets get a 400 and the daemon stays up", async () => {
  for (const target of ["//[", "http://[", "http://x:99999/host"]) {
    const res = await raw(target);
    assert.equal(res.status, 400, target);
    assert.equal(
      (JSON.parse(res.body) as { code: string }).code,
      "validation_error",
    );
  }
  assert.equal((await client.host()).id, "test-host");
});

test("hardening: browser-originated and rebound requests are refused", async () => {
  const origin = await raw("/host", { origin: "http://evil.example" });
  assert.equal(origin.status, 403);
  assert.deepEqual(JSON.parse(origin.body), {
    code: "forbidden",
    message:
      "Requests from web pages are refused: the request has an Origin header",
  });
  const rebound = await raw("/host", { host: "evil.example:1113" });
  assert.equal(rebound.status, 403);
  assert.match(
    rebound.body,
    /Host header \\"evil.example:1113\\" is not an address of this host/,
  );
  for (const host of ["localhost:1", "127.0.0.1", "[::1]:9"]) {
    assert.equal((await raw("/host", { host })).status, 200, host);
  }
  const job = '{"config":{"cmd":["true"]}}';
  const noType = await raw("/jobs", {}, "POST", job);
  assert.equal(noType.status, 400);
  assert.match(noType.body, /content-type must be application\/json, got none/);
  const seq = await raw(
    "/jobs",
    { "content-type": "application/json-seq" },
    "POST",
    job,
  );
  assert.equal(seq.status, 400);
  const ok = await raw(
    "/jobs",
    { "content-type": "application/json; charset=utf-8" },
    "POST",
    job,
  );
  assert.equal(ok.status, 201);
});

test("hardening: bad job specs are refused naming the field", async () => {
  const cases: [unknown, string, string][] = [
    [
      { config: { cmd: [""] } },
      "config.cmd[0]",
      "Invalid config.cmd[0]: the program to run must not be empty",
    ],
    [
      { config: { cmd: ["true"], env: { PORT: "1" } } },
      "config.env.PORT",
      "Invalid config.env.PORT: the host sets it",
    ],
    [
      { config: { cmd: ["true"], env: { PORT_5: "1" } } },
      "config.env.PORT_5",
      "Invalid config.env.PORT_5: the host sets it",
    ],
    [
      { config: { cmd: [], image: "x" } },
      "config.cmd",
      "Invalid config.cmd: the process backend needs a command to run",
    ],
    [
      { config: { cmd: ["true"], image: "busybox" } },
      "config.image",
      "Invalid config.image: not supported by the process backend",
    ],
    [
      { config: { cmd: ["true"], memory_bytes: 1 << 30 } },
      "config.memory_bytes",
      "Invalid config.memory_bytes: not supported by the process backend",
    ],
    [
      { metadata: { big: "x".repeat(70_000) }, config: { cmd: ["true"] } },
      "metadata",
      "Invalid metadata: 70010 bytes as JSON, more than 65536",
    ],
  ];
  for (const [body, field, message] of cases) {
    const res = await raw(
      "/jobs",
      { "content-type": "application/json" },
      "POST",
      JSON.stringify(body),
    );
    assert.equal(res.status, 400, message);
    assert.deepEqual(JSON.parse(res.body), {
      code: "validation_error",
      message,
      field,
    });
  }
  const proto = await client.createJob({
    config: {
      cmd: ["sh", "-c", 'printf %s "$__proto__"'],
      env: JSON.parse('{"__proto__":"kept"}') as Record<string, string>,
    },
  });
  await waitFor(
    async () => (await client.getJob(proto.id)).status === "done",
    "job end",
  );
  assert.equal(await readText(client.logs(proto.id)), "kept");
  assert.equal((await raw("/events?job=")).status, 400);
});

test("hardening: a full disk drops the job's output, not the daemon", async () => {
  const id = "disk-full";
  const dir = join(daemon.stateDir, "jobs", id);
  mkdirSync(dir, { recursive: true });
  // Writes to the job's stdout file fail with ENOSPC.
  symlinkSync("/dev/full", join(dir, "stdout.log"));
  const job = await client.createJob({
    id,
    config: { cmd: ["sh", "-c", "echo one; echo two; echo three >&2"] },
  });
  assert.equal(job.status, "running");
  const ended = await waitFor(async () => {
    const j = await client.getJob(id);
    return j.status === "done" && j;
  }, "job to end");
  assert.equal(ended.exit_status, 0);
  await waitFor(
    () =>
      daemon.lines.some((l) =>
        /job\.id=disk-full at=output_error err=.*ENOSPC.* resolution="dropping output"/.test(
          l,
        ),
      ),
    "the error logged",
  );
  // The first failed write drops the rest of the job's output, so every
  // view is consistent (and empty) rather than partly written.
  assert.equal(await readText(client.logs(id)), "");
  assert.equal(await readText(client.logs(id, { stream: "stderr" })), "");
  assert.equal(readFileSync(join(dir, "output.idx")).length, 0);
  assert.equal(
    daemon.lines.filter((l) => /job\.id=disk-full at=output_error/.test(l))
      .length,
    1,
  );
  assert.equal((await client.host()).id, "test-host");
});

test("hardening: a job whose output dir cannot be made fails instead of hanging", async () => {
  writeFileSync(join(daemon.stateDir, "jobs", "blocked"), "x");
  const job = await client.createJob({
    id: "blocked",
    config: { cmd: ["true"] },
  });
  assert.equal(job.status, "failed");
  assert.match(
    job.error ?? "",
    /^Cannot create output files for job "blocked": /,
  );
  assert.deepEqual(
    await client.stopJob("blocked"),
    await client.getJob("blocked"),
  );
});

test("hardening: the CLI refuses odd ids and bad flags with exit status 2 and one line", async () => {
  const env = cliEnv(daemon);
  const cases: [string[], RegExp][] = [
    [["inspect", ".."], /^lorne: Invalid job id "\.\.": /],
    [["inspect", "."], /^lorne: Invalid job id "\.": /],
    [["logs", ""], /^lorne: Invalid job id "": /],
    [["run", "--id", "..", "--", "true"], /^lorne: Invalid job id "\.\.": /],
    [["ps", "--bogus"], /^lorne: unknown option '--bogus' \(see --help\)$/],
    [
      ["ps", "--host", "ftp://x"],
      /^lorne: Invalid --host "ftp:\/\/x": expected an http URL/,
    ],
    [
      ["host", "--grace-ms", "9999999999"],
      /^lorne host: Invalid --grace-ms "9999999999": expected a whole number of milliseconds from 0 to 2147483647$/,
    ],
  ];
  for (const [args, pattern] of cases) {
    const result = await runLorne(args, { env });
    assert.equal(result.code, 2, args.join(" "));
    assert.match(
      result.stderr.trim().split("\n")[0] ?? "",
      pattern,
      args.join(" "),
    );
    if (args[0] !== "host")
      assert.equal(result.stderr.trim().split("\n").length, 1, args.join(" "));
  }
});

test("hardening: a reader that goes away gives the job SIGPIPE, and run exits 141", async () => {
  const child = spawn(
    "sh",
    [
      "-c",
      `"${process.execPath}" "${LORNE}" run --id yes-pipe -- yes | head -2`,
    ],
    {
      cwd: ROOT,
      env: cliEnv(daemon),
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  await new Promise((resolve) => child.once("close", resolve));
  assert.equal(out, "y\ny\n");
  const job = await waitFor(async () => {
    const j = await client.getJob("yes-pipe");
    return j.status !== "running" && j;
  }, "yes to end");
  assert.equal(job.status, "crashed");
  assert.equal(job.signal, "SIGPIPE");
  const logs = await runLorne(["logs", "yes-pipe"], {
    env: cliEnv(daemon),
  });
  void logs; // output of yes can be large; reading it to a pipe must not crash
  const head = spawn(
    "sh",
    [
      "-c",
      `"${process.execPath}" "${LORNE}" logs yes-pipe | head -1; echo "rc=\${PIPESTATUS:-done}"`,
    ],
    {
      env: cliEnv(daemon),
    },
  );
  let stderr = "";
  head.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  await new Promise((resolve) => head.once("close", resolve));
  assert.equal(stderr, "");
});

test("hardening: a method a path does not take is 405 with Allow; an unknown path 404", async () => {
  const patch = await raw("/jobs/some-id", {}, "PATCH");
  assert.equal(patch.status, 405);
  assert.equal(patch.headers.allow, "PUT, GET, DELETE");
  assert.deepEqual(JSON.parse(patch.body), {
    code: "method_not_allowed",
    message: "No route for PATCH /jobs/some-id: allowed PUT, GET, DELETE",
  });
  const unknown = await raw("/nope");
  assert.equal(unknown.status, 404);
  assert.equal(unknown.headers.allow, undefined);
});

test("hardening: CONNECT gets a 405 (or 401 without the token), not a closed socket", async () => {
  const url = new URL(daemon.url);
  const ask = (headers: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () =>
        socket.write(`CONNECT /jobs HTTP/1.1\r\nHost: x\r\n${headers}\r\n`),
      );
      let answer = "";
      socket.on("data", (d: Buffer) => (answer += d.toString("latin1")));
      socket.on("close", () => resolve(answer));
      socket.on("error", reject);
      socket.setTimeout(10_000, () => socket.destroy(new Error("no answer")));
    });
  const allowed = await ask(`Authorization: Bearer ${daemon.token}\r\n`);
  assert.match(
    allowed,
    /^HTTP\/1\.1 405 Method Not Allowed\r\nallow: GET, POST\r\n/,
  );
  assert.match(allowed, /"code":"method_not_allowed"/);
  assert.match(await ask(""), /^HTTP\/1\.1 401 Unauthorized\r\n/);
});

test("hardening: a body with a key given twice or that is not JSON is refused with where", async () => {
  const cases: [string, string][] = [
    [
      '{"id":"dup-x","id":"dup-y","config":{"cmd":["true"]}}',
      'Invalid request: body is not JSON: Invalid JSON at 1:15: duplicate key "id"',
    ],
    [
      '{"config":{"cmd":["true"]}',
      'Invalid request: body is not JSON: Invalid JSON at 1:27: expected "," or "}", found end of input',
    ],
  ];
  for (const [body, message] of cases) {
    const res = await raw(
      "/jobs",
      { "content-type": "application/json" },
      "POST",
      body,
    );
    assert.equal(res.status, 400, body);
    assert.deepEqual(JSON.parse(res.body), {
      code: "validation_error",
      message,
      field: "body",
    });
  }
  assert.equal(
    (await client.listJobs()).filter((j) => j.id.startsWith("dup-")).length,
    0,
  );
});

test("hardening: values checked as the daemon starts exit 2 too, naming the value", async () => {
  const dir = tempDir();
  try {
    const manifest = join(dir.path, "manifest.json");
    writeFileSync(
      manifest,
      '[{"id":"web","cmd":["true"],"working_dir":"srv"}]',
    );
    const cases: [string[], RegExp][] = [
      [["--id", "a/b"], /Invalid host id "a\/b"/],
      [["--socket", ""], /^lorne host: Invalid --socket "": expected a path\n/],
      [
        ["--listen", "0.0.0.0:0", "--no-auth"],
        /Invalid listen address "0\.0\.0\.0": without token auth/,
      ],
      [
        ["--manifest", manifest],
        /field "working_dir": expected an absolute path/,
      ],
    ];
    for (const [i, [args, pattern]] of cases.entries()) {
      const result = await runLorne([
        "host",
        "--state",
        join(dir.path, `state-${i}`),
        "--listen",
        "127.0.0.1:0",
        ...args,
      ]);
      assert.equal(result.code, 2, args.join(" "));
      assert.match(result.stderr, pattern, args.join(" "));
    }
  } finally {
    dir.remove();
  }
});

test("hardening: a state dir that cannot be made is refused at once (exit 1)", async () => {
  // Node's recursive mkdir spins for ever under /proc.
  const result = await runLorne(
    ["host", "--state", "/proc/lorne-nope/state", "--listen", "127.0.0.1:0"],
    { timeoutMs: 10_000 },
  );
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /^lorne host: Cannot use state dir "\/proc\/lorne-nope\/state": ENOENT/,
  );
});

test("hardening: config files with odd keys, wrong types or duplicates are refused", async () => {
  const dir = tempDir();
  try {
    const cases: [string, RegExp][] = [
      ['{"toString":"x"}', /unknown field "toString"/],
      ['{"__proto__":{}}', /unknown field "__proto__"/],
      [
        '{"grace_ms":1e20}',
        /field "grace_ms" must be a whole number of milliseconds up to 2147483647/,
      ],
      [
        '{"listen":"a","listen":"b"}',
        /duplicate key "listen"|Duplicate key "listen"|listen/,
      ],
      ['{"listen":"nope"}', /Invalid config listen "nope"/],
      ['{"socket":""}', /Invalid config socket "": expected a path/],
      ['{"ports":"1-2-3"}', /Invalid config ports "1-2-3": expected MIN-MAX/],
    ];
    for (const [text, pattern] of cases) {
      const file = join(dir.path, "config.json");
      writeFileSync(file, text);
      const result = await runLorne([
        "host",
        "--config",
        file,
        "--state",
        join(dir.path, "state"),
      ]);
      assert.equal(result.code, 2, text);
      assert.match(result.stderr, pattern, text);
    }
  } finally {
    dir.remove();
  }
});

test("hardening: a stale lock naming a live non-lorne pid does not block start", async () => {
  const state = tempDir();
  const sleeper = spawn("sleep", ["30"]);
  try {
    writeFileSync(join(state.path, "host.pid"), `${sleeper.pid}\n`);
    const second = await startDaemon([], { stateDir: state.path });
    assert.equal(await second.stop(), 0);
  } finally {
    sleeper.kill();
    state.remove();
  }
});

test("hardening: an id a leftover process no record explains is refused until --force", async () => {
  // State in memory: the next daemons have no record of the job, so they
  // cannot take it over; it is a leftover.
  const memory = ["--state-store", "memory"];
  const first = await startDaemon(memory);
  const job = await new HostClient(first).createJob({
    id: "held",
    config: { cmd: ["sleep", "60"] },
  });
  first.child.kill("SIGKILL");
  await first.exited;
  const second = await startDaemon(memory, { stateDir: first.stateDir });
  try {
    await assert.rejects(
      new HostClient(second).createJob({
        id: "held",
        config: { cmd: ["true"] },
      }),
      {
        message:
          'Cannot create job "held": a process an earlier daemon left running has this id; stop it or restart the host with --force',
      },
    );
  } finally {
    await second.stop();
  }
  const third = await startDaemon(
    [...memory, "--force", "--id", "another-host"],
    {
      stateDir: first.stateDir,
    },
  );
  try {
    await waitFor(
      () => !isAlive(job.pid as number),
      "leftover stopped by --force under another host id",
    );
  } finally {
    await third.stop();
  }
});

test("hardening: lorne run says so when the host goes away mid-run", async () => {
  const own = await startDaemon();
  const child = spawn(
    process.execPath,
    [LORNE, "run", "--no-stdin", "--", "sh", "-c", "echo started; sleep 30"],
    { cwd: ROOT, env: cliEnv(own) },
  );
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = new Promise<number | null>((resolve) =>
    child.once("close", resolve),
  );
  await waitFor(() => out === "started\n", "the job to start");
  own.child.kill("SIGKILL");
  assert.equal(await code, 1);
  assert.equal(
    err,
    "lorne run: lost the connection to the host before the job ended\n",
  );
  // The job outlives its killed daemon; clean it up by its pid file.
  for (const id of readdirSync(join(own.stateDir, "jobs"))) {
    try {
      const pid = Number(
        readFileSync(join(own.stateDir, "jobs", id, "pid"), "utf8"),
      );
      process.kill(-pid, "SIGKILL");
    } catch {
      // Gone already.
    }
  }
});
