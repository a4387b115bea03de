/**
 * `lorne receive` end to end: the built binary on 127.0.0.1 port 0, fed by
 * our client. Build first (`npm test` does).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { get } from "node:http";
import { join } from "node:path";
import { after, test } from "node:test";

import { encodeCompressed, encodeFrame } from "../../src/lumberjack/index.js";
import { runLorne, tempDir, waitFor } from "../helpers.js";
import { CertFactory } from "./certs.js";
import { exchange } from "./peer.js";
import { client, receive } from "./receive-process.js";

const dir = tempDir("lorne-receive-");

after(() => dir.remove());

test("receive: v1 and v2 events land in the file as ndjson before the ack, and SIGTERM exits 0", async () => {
  const out = join(dir.path, "events.ndjson");
  const r = await receive(["--out", out, "--fsync"]);
  const v1 = client(r.port, 1);
  const v2 = client(r.port, 2);

  await v1.send([{ line: "first", n: 1 }, { line: "second" }]);
  // The ack came after the write: the lines are there now.
  assert.equal(
    readFileSync(out, "utf8"),
    '{"line":"first","n":"1"}\n{"line":"second"}\n',
  );
  await v2.send([{ line: "third", n: 3, tags: ["a"] }]);
  assert.equal(
    readFileSync(out, "utf8").split("\n").at(-2),
    '{"line":"third","n":3,"tags":["a"]}',
  );

  r.child.kill("SIGTERM");
  assert.equal(await r.exited, 0);
  assert.ok(r.log.some((l) => /at=signal signal=SIGTERM/.test(l)));
  assert.ok(
    r.log.some((l) =>
      /at=exit status=ok connections=0 events=3 batches=2 bytes=\d+/.test(l),
    ),
    r.log.join("\n"),
  );
  await waitFor(() => !v1.connected && !v2.connected, "the clients to see it");
});

test("receive: v2 payloads are written byte for byte (CR and LF whitespace as spaces), v1 events as the JSON of their pairs, bad events not at all", async () => {
  const out = join(dir.path, "raw.ndjson");
  const r = await receive(["--out", out, "--fsync"]);
  const json = (seq: number, payload: Buffer) =>
    encodeFrame({ type: "json", version: 2, seq, payload });
  const badUtf8 = Buffer.from([
    0x7b, 0x22, 0x73, 0x22, 0x3a, 0x22, 0xff, 0xc3, 0x22, 0x7d,
  ]);
  const v2 = await exchange(r.port, [
    encodeFrame({ type: "window", version: 2, size: 3 }),
    json(1, Buffer.from(' { "b" : [1, 2.50] ,"a":"\\u00e9\\n" } ')),
    encodeCompressed(
      2,
      Buffer.concat([
        json(2, badUtf8),
        json(3, Buffer.from('{\r\n"k":\t[1,\n2]}\n')),
      ]),
      1,
    ),
  ]);
  assert.equal(v2.acks.length, 1);
  const v1 = await exchange(r.port, [
    encodeFrame({ type: "window", version: 1, size: 1 }),
    encodeFrame({
      type: "data",
      version: 1,
      seq: 1,
      pairs: [[Buffer.from("line"), Buffer.from([0x61, 0xff, 0x62])]],
    }),
  ]);
  assert.equal(v1.acks.length, 1);
  const bad = await exchange(r.port, [
    encodeFrame({ type: "window", version: 2, size: 1 }),
    json(1, Buffer.from("[1]")),
  ]);
  assert.deepEqual(bad.acks, []);

  assert.deepEqual(
    readFileSync(out),
    Buffer.concat([
      Buffer.from(' { "b" : [1, 2.50] ,"a":"\\u00e9\\n" } \n'),
      badUtf8,
      Buffer.from('\n{  "k":\t[1, 2]} \n{"line":"a\ufffdb"}\n'),
    ]),
  );
  await waitFor(
    () => r.log.some((l) => l.includes("at=protocol_error")),
    "the protocol error",
  );
  assert.ok(
    r.log.some((l) =>
      l.includes(
        `err="Invalid JSON event at sequence 1: unexpected '[' at byte 0, expected an object"`,
      ),
    ),
    r.log.join("\n"),
  );
  r.child.kill("SIGTERM");
  assert.equal(await r.exited, 0);
});

test("receive: --format logfmt to stdout, and SIGINT exits 0 too", async () => {
  const r = await receive(["--format", "logfmt"]);
  const c = client(r.port, 2);
  await c.send([
    { line: "hello world", level: "info" },
    { line: "x=y", n: 2 },
  ]);
  await client(r.port, 1).send([{ line: "v1", n: 3 }]);
  await waitFor(() => r.stdout().split("\n").length === 4, "three lines");
  assert.equal(
    r.stdout(),
    'line="hello world" level=info\nline="x=y" n=2\nline=v1 n=3\n',
  );
  r.child.kill("SIGINT");
  assert.equal(await r.exited, 0);
});

test("receive: statistics by SIGUSR1 and by GET /stats on --stats-listen", async () => {
  const r = await receive(["--out", join(dir.path, "stats.ndjson")]);
  const c = client(r.port, 2);
  await c.send([{ a: 1 }, { a: 2 }]);

  r.child.kill("SIGUSR1");
  await waitFor(
    () =>
      r.log.some((l) =>
        /at=stats connections=1 events=2 batches=1 bytes=\d+/.test(l),
      ),
    "the stats line",
  );
  r.child.kill("SIGTERM");
  assert.equal(await r.exited, 0);

  const s = await receive([
    "--out",
    join(dir.path, "stats2.ndjson"),
    "--stats-listen",
    "127.0.0.1:0",
  ]);
  const line = await waitFor(
    () => s.log.find((l) => /fn=stats at=listening/.test(l)),
    "the stats listener",
  );
  const statsPort = Number(/addr=\S+:(\d+)/.exec(line)?.[1]);
  const d = client(s.port, 1);
  await d.send([{ a: "1" }]);
  const body = await new Promise<string>((resolve, reject) => {
    get(`http://127.0.0.1:${statsPort}/stats`, (res) => {
      let text = "";
      res.on("data", (chunk: Buffer) => (text += chunk.toString()));
      res.on("end", () => resolve(text));
    }).on("error", reject);
  });
  const stats = JSON.parse(body) as Record<string, number>;
  assert.deepEqual(
    { ...stats, bytes: 0 },
    { connections: 1, events: 1, batches: 1, bytes: 0 },
  );
  assert.ok((stats.bytes ?? 0) > 0);
  s.child.kill("SIGTERM");
  assert.equal(await s.exited, 0);
});

test("receive: TLS with a required client certificate", async () => {
  const certs = new CertFactory();
  try {
    const ca = certs.ca("cli-ca");
    const server = certs.leaf("cli-server", ca, { san: ["IP:127.0.0.1"] });
    const user = certs.leaf("cli-client", ca, { usage: "client" });
    const out = join(dir.path, "tls.ndjson");
    const r = await receive([
      "--out",
      out,
      "--tls-cert",
      server.certPath,
      "--tls-key",
      server.keyPath,
      "--tls-ca",
      ca.certPath,
      "--client-auth",
      "required",
    ]);
    await client(r.port, 2, {
      ca: ca.cert,
      cert: user.cert,
      key: user.key,
    }).send([{ secure: true }]);
    assert.equal(readFileSync(out, "utf8"), '{"secure":true}\n');
    await assert.rejects(client(r.port, 2, { ca: ca.cert }).send([{ a: 1 }]), {
      code: "unavailable",
    });
    r.child.kill("SIGTERM");
    assert.equal(await r.exited, 0);
    assert.ok(r.log.some((l) => /at=tls_error/.test(l)));
  } finally {
    certs.remove();
  }
});

test("receive: bad flags exit 2 with a message naming the flag", async () => {
  const cases: [string[], string][] = [
    [
      ["--fsync"],
      "lorne: Invalid --fsync: it needs --out FILE, stdout cannot be fsynced\n",
    ],
    [
      ["--tls-key", "k.pem"],
      "lorne: Invalid --tls-key: TLS needs both --tls-cert and --tls-key\n",
    ],
    [
      [
        "--tls-cert",
        "c.pem",
        "--tls-key",
        "k.pem",
        "--client-auth",
        "required",
      ],
      "lorne: Invalid --client-auth required: it needs --tls-ca to check " +
        "client certificates against\n",
    ],
    [
      ["--listen", "example.com:5044"],
      'lorne: Invalid --listen "example.com:5044": expected ip:port, e.g. 127.0.0.1:1113\n',
    ],
    [
      ["--max-window", "0"],
      'lorne: Invalid --max-window "0": expected a whole number from 1 to 4294967295\n',
    ],
    [
      ["--keepalive-ms", "soon"],
      'lorne: Invalid --keepalive-ms "soon": expected a whole number from 1 to 2147483647\n',
    ],
    [
      ["--format", "xml"],
      "lorne: option '--format <format>' argument 'xml' is invalid. Allowed choices are ndjson, logfmt. (see --help)\n",
    ],
  ];
  for (const [args, message] of cases) {
    const result = await runLorne(["receive", ...args]);
    assert.equal(result.stderr, message, args.join(" "));
    assert.equal(result.code, 2, args.join(" "));
  }
});

test("receive: a port in use exits 1 with the reason", async () => {
  const r = await receive(["--out", join(dir.path, "busy.ndjson")]);
  const result = await runLorne(["receive", "--listen", `127.0.0.1:${r.port}`]);
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    new RegExp(
      `^lorne: Cannot listen on 127\\.0\\.0\\.1:${r.port}: .*EADDRINUSE`,
    ),
  );
  r.child.kill("SIGTERM");
  assert.equal(await r.exited, 0);
});
