/**
 * End to end: the API's token on TCP, its Unix socket, and where the CLI
 * finds the token, against real daemons. A request without the right
 * token must get 401 on every route and method, upgrades and event
 * streams included, and change nothing.
 */
import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import { join } from "node:path";
import { test } from "node:test";

import { WebSocket } from "ws";

import { AttachConnection } from "../../src/host/attach/client.js";
import { HostClient } from "../../src/host/client.js";
import type { JobEvent } from "../../src/host/events.js";
import {
  cliEnv,
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

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One raw request to `target` (a daemon URL) with exactly these headers. */
function send(
  target: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      target + path,
      { method, headers, timeout: 10_000 },
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
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} hung`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** The status and headers an attach upgrade is refused with. */
function upgrade(
  headers: Record<string, string>,
): Promise<{ status: number; auth: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const url = `${daemon.url.replace(/^http/, "ws")}/jobs/live/attach?stdin=1`;
    const ws = new WebSocket(url, { headers });
    ws.on("unexpected-response", (_req, res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          auth: res.headers["www-authenticate"],
          body: text,
        }),
      );
    });
    ws.on("open", () => {
      ws.terminate();
      reject(new Error("upgraded without the token"));
    });
    ws.on("error", reject);
  });
}

const JSON_TYPE = { "content-type": "application/json" };
const SPEC = JSON.stringify({ config: { cmd: ["sleep", "60"] } });

// Every route and method the API has, and some it has not.
const ROUTES: [string, string, Record<string, string>, string?][] = [
  ["GET", "/host", {}],
  ["GET", "/jobs", {}],
  ["POST", "/jobs", JSON_TYPE, SPEC],
  ["PUT", "/jobs/intruder", JSON_TYPE, SPEC],
  ["GET", "/jobs/live", {}],
  ["DELETE", "/jobs/live", {}],
  ["POST", "/jobs/live/signal", JSON_TYPE, '{"signal":"KILL"}'],
  ["GET", "/jobs/live/logs?follow=1", {}],
  ["GET", "/jobs/live/attach", {}],
  ["GET", "/events", {}],
  ["GET", "/events?job=live&last_event_id=0", {}],
  ["GET", "/metrics", {}],
  ["GET", "/nope", {}],
  ["PATCH", "/jobs/live", JSON_TYPE, "{}"],
];

test("auth: every route and method answers 401 without the right token and touches nothing", async () => {
  const live = await client.createJob({
    id: "live",
    config: { cmd: ["sleep", "60"] },
  });
  assert.equal(live.status, "running");
  const token = daemon.token as string;
  assert.match(token, /^[0-9a-f]{64}$/);
  const wrong = token.replace(/^./, (c) => (c === "0" ? "1" : "0"));
  const credentials: [string, Record<string, string>][] = [
    ["none", {}],
    ["wrong token", { authorization: `Bearer ${wrong}` }],
    ["token prefix", { authorization: `Bearer ${token.slice(0, 63)}` }],
    ["longer token", { authorization: `Bearer ${token}0` }],
    ["empty bearer", { authorization: "Bearer " }],
    ["other scheme", { authorization: `Basic ${token}` }],
    ["token alone", { authorization: token }],
  ];

  // A live event stream, known to be subscribed once it saw "ready".
  const seen: JobEvent[] = [];
  const watching = new AbortController();
  const watcher = (async () => {
    const live = client.events({ after: 999_999_999, signal: watching.signal });
    for await (const event of live) seen.push(event);
  })().catch(() => undefined);
  await waitFor(async () => {
    if (!(await client.listJobs()).some((j) => j.id === "ready")) {
      await client.createJob({ id: "ready", config: { cmd: ["true"] } });
    }
    return seen.some((e) => e.job_id === "ready");
  }, "the event stream to be subscribed");
  await waitFor(
    async () => (await client.getJob("ready")).status === "done",
    "the ready job to end",
  );
  seen.length = 0;
  const before = await client.listJobs();

  for (const [what, auth] of credentials) {
    for (const [method, path, headers, body] of ROUTES) {
      const answer = await send(
        daemon.url,
        method,
        path,
        { ...headers, ...auth },
        body,
      );
      const name = `${what}: ${method} ${path}`;
      assert.equal(answer.status, 401, name);
      assert.equal(answer.headers["www-authenticate"], 'Bearer realm="lorne"');
      const json = JSON.parse(answer.body) as Record<string, unknown>;
      assert.equal(json.code, "unauthorized", name);
      assert.equal(typeof json.message, "string", name);
      assert.equal(answer.body.includes(token), false, name);
    }
    const refused = await upgrade(auth);
    assert.equal(refused.status, 401, `${what}: attach upgrade`);
    assert.equal(refused.auth, 'Bearer realm="lorne"');
    assert.equal(
      (JSON.parse(refused.body) as { code: string }).code,
      "unauthorized",
    );
  }

  // Nothing changed: the same jobs, the live one still running, no files,
  // and the only event since is the marker made with the token.
  assert.deepEqual(await client.listJobs(), before);
  assert.equal((await client.getJob("live")).status, "running");
  assert.deepEqual(readdirSync(join(daemon.stateDir, "jobs")).sort(), [
    "live",
    "ready",
  ]);
  await client.createJob({ id: "marker", config: { cmd: ["true"] } });
  await waitFor(
    () => seen.some((e) => e.job_id === "marker"),
    "the marker's event",
  );
  assert.deepEqual([...new Set(seen.map((e) => e.job_id))], ["marker"]);
  watching.abort();
  await watcher;
  await client.stopJob("live");
});

test("auth: the token file is 0600, 64 hex digits, and kept across restarts", async () => {
  const own = await startDaemon();
  const path = join(own.stateDir, "token");
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const token = readFileSync(path, "utf8");
  assert.match(token, /^[0-9a-f]{64}\n$/);
  assert.equal(await own.stop(), 0);
  const again = await startDaemon([], { stateDir: own.stateDir });
  try {
    assert.equal(again.token, token.trim());
    assert.equal(
      own.lines.some((l) => l.includes(token.trim())),
      false,
      "the token is never logged",
    );
    assert.match(
      own.lines.join("\n"),
      /at=listening url=\S+ backend=process auth=token token_file=\S+token/,
    );
  } finally {
    await again.stop();
  }
});

test("auth: a token file others can read stops the daemon with the path", async () => {
  const state = tempDir();
  try {
    mkdirSync(join(state.path, "jobs"));
    const path = join(state.path, "token");
    writeFileSync(path, `${"ab".repeat(32)}\n`, { mode: 0o644 });
    chmodSync(path, 0o644);
    await assert.rejects(
      startDaemon([], { stateDir: state.path }),
      (err: Error) => {
        assert.match(
          err.message,
          new RegExp(
            `lorne host: Invalid token file "${path}": readable by others \\(mode 644\\); make it 600`,
          ),
        );
        return true;
      },
    );
  } finally {
    state.remove();
  }
});

test("auth: --no-auth is refused off loopback, and is loud on it", async () => {
  const refused = await runLorne(
    ["host", "--listen", "0.0.0.0:0", "--no-auth", "--state", "/nonexistent"],
    { timeoutMs: 10_000 },
  );
  assert.equal(refused.code, 2);
  assert.match(
    refused.stderr,
    /^lorne host: Invalid listen address "0\.0\.0\.0": without token auth the API may listen on a loopback address only\n$/,
  );

  const open = await startDaemon(["--no-auth"]);
  try {
    assert.equal(open.token, null);
    assert.match(open.lines.join("\n"), /at=auth_disabled warning=/);
    assert.deepEqual(await new HostClient(open.url).listJobs(), []);
  } finally {
    await open.stop();
  }
});

test("auth: the Unix socket is 0600 and needs no token, for the API, attach and the CLI", async () => {
  const dir = tempDir();
  const socket = join(dir.path, "api.sock");
  const own = await startDaemon(["--socket", socket]);
  try {
    assert.equal(statSync(socket).isSocket(), true);
    assert.equal(statSync(socket).mode & 0o777, 0o600);
    assert.match(own.lines.join("\n"), /at=listening socket=\S+api\.sock/);
    const local = new HostClient({
      url: "http://localhost",
      socketPath: socket,
    });
    const job = await local.createJob({
      id: "by-socket",
      config: { cmd: ["sh", "-c", "echo over the socket"] },
    });
    assert.equal(job.status, "running");

    let output = "";
    const conn = await AttachConnection.open(local.endpoint, "by-socket", {
      logs: true,
      onData: (_stream, data) => (output += data.toString()),
    });
    assert.equal((await conn.exit)?.status, "done");
    assert.equal(output, "over the socket\n");

    const ps = await runLorne(["ps", "--all", "--socket", socket], {
      env: { ...process.env, LORNE_TOKEN: "", LORNE_HOST: "" },
    });
    assert.equal(ps.stderr, "");
    assert.match(ps.stdout, /^by-socket\s+done \(0\)/m);

    // LORNE_SOCKET works too; an explicit --host outranks it.
    const viaEnv = await runLorne(["ps", "--all", "--json"], {
      env: { ...process.env, LORNE_SOCKET: socket, LORNE_TOKEN: "" },
    });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    const overridden = await runLorne(["ps", "--host", "http://127.0.0.1:1"], {
      env: { ...process.env, LORNE_SOCKET: socket },
    });
    assert.equal(overridden.code, 1);
    assert.match(
      overridden.stderr,
      /Cannot reach lorne host at http:\/\/127\.0\.0\.1:1/,
    );
  } finally {
    const code = await own.stop();
    const left = existsSync(socket);
    dir.remove();
    assert.equal(code, 0);
    assert.equal(left, false, "the socket file is removed");
  }
});

test("auth: a stale socket file is replaced; a socket something listens on is refused", async () => {
  const dir = tempDir();
  const live = createServer();
  try {
    // A hard link keeps a socket file once its server has closed: stale.
    const first = join(dir.path, "first.sock");
    const stale = join(dir.path, "stale.sock");
    const gone = createServer();
    await new Promise<void>((resolve) => gone.listen(first, resolve));
    linkSync(first, stale);
    await new Promise<void>((resolve) => gone.close(() => resolve()));
    const own = await startDaemon(["--socket", stale]);
    const local = new HostClient({
      url: "http://localhost",
      socketPath: stale,
    });
    assert.deepEqual(await local.listJobs(), []);
    assert.equal(await own.stop(), 0);

    const taken = join(dir.path, "taken.sock");
    await new Promise<void>((resolve) => live.listen(taken, resolve));
    await assert.rejects(startDaemon(["--socket", taken]), (err: Error) => {
      assert.match(
        err.message,
        /lorne host: Cannot listen on socket "\S+taken\.sock": another server is listening on it/,
      );
      return true;
    });
  } finally {
    live.close();
    dir.remove();
  }
});

test("auth: the CLI takes the token from LORNE_TOKEN, --token-file or ./.lorne-state, and says what to do without one", async () => {
  const dir = tempDir();
  const stateDir = join(dir.path, ".lorne-state");
  const own = await startDaemon([], { stateDir });
  try {
    const bare = {
      ...process.env,
      LORNE_HOST: own.url,
      LORNE_TOKEN: "",
      LORNE_TOKEN_FILE: "",
    };
    const fromEnv = await runLorne(["ps"], { env: cliEnv(own) });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);

    const fromFlag = await runLorne(
      ["ps", "--token-file", join(stateDir, "token")],
      { env: bare },
    );
    assert.equal(fromFlag.code, 0, fromFlag.stderr);

    // `npm start` keeps its state in .lorne-state: found from that dir.
    const found = await runLorne(["ps"], { env: bare, cwd: dir.path });
    assert.equal(found.code, 0, found.stderr);

    const lost = await runLorne(["ps"], { env: bare, cwd: "/" });
    assert.equal(lost.code, 1);
    assert.match(
      lost.stderr,
      /^lorne: Missing token: send Authorization: Bearer <token> .*; token: none found \(no \.lorne-state\/token; .*\); set LORNE_TOKEN or --token-file to the host's <state>\/token, or use --socket\n$/,
    );

    const wrong = await runLorne(["ps"], {
      env: { ...bare, LORNE_TOKEN: "0".repeat(64) },
    });
    assert.equal(wrong.code, 1);
    assert.match(
      wrong.stderr,
      /^lorne: Invalid token: Authorization does not carry this host's token; token: from LORNE_TOKEN\n$/,
    );

    const missingFile = await runLorne(
      ["ps", "--token-file", join(dir.path, "none")],
      { env: bare },
    );
    assert.equal(missingFile.code, 2);
    assert.match(
      missingFile.stderr,
      /^lorne: Cannot read token file "\S+none" \(--token-file\): ENOENT/,
    );
  } finally {
    await own.stop();
    dir.remove();
  }
});
