/**
 * Hostile input for the host API: fast-check builds thousands of requests
 * (methods, paths with odd and escaping ids, queries, headers, tokens,
 * bodies that are near-valid job specs, mutated JSON, random bytes,
 * oversize) and sends them to a real daemon on 127.0.0.1. Every answer
 * must be a 4xx with a JSON `{code, message}`, or a 2xx for the rare valid
 * request; a created job is remembered and stopped at the end. The daemon
 * must stay up and `GET /jobs` must list exactly the jobs made. Manifests
 * get the same treatment through parseManifest: a result or a
 * ValidationError, nothing else. Bounded in runs and time.
 *
 * The daemon's PATH is an empty directory, so a random command name can
 * never run a real program; the specs' env never sets PATH.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";

import fc from "fast-check";

import { ValidationError } from "../../src/errors.js";
import { MAX_BODY_BYTES } from "../../src/host/api/body.js";
import { HostClient } from "../../src/host/client.js";
import { parseManifest } from "../../src/host/manifest/index.js";
import {
  authHeader,
  startDaemon,
  tempDir,
  waitFor,
  type DaemonProcess,
} from "../helpers.js";

const RUNS = 5000;
const TIME_LIMIT_MS = 35_000;
const MANIFEST_RUNS = 3000;

let daemon: DaemonProcess;
let client: HostClient;
const emptyPath = tempDir("lorne-empty-path-");
const agent = new Agent({ keepAlive: true, maxSockets: 4 });
/** Ids of jobs fuzzed requests created (2xx on POST or PUT). */
const created = new Set<string>();

before(async () => {
  daemon = await startDaemon(
    ["--ports", "64300-64309", "--grace-ms", "200", "--max-starts", "4"],
    { env: { ...process.env, PATH: emptyPath.path } },
  );
  client = new HostClient(daemon);
  const anchor = await client.createJob({
    id: "anchor",
    config: { cmd: ["/bin/sleep", "600"] },
  });
  assert.equal(anchor.status, "running");
});

after(async () => {
  agent.destroy();
  await daemon.stop();
  emptyPath.remove();
});

// --- requests ------------------------------------------------------------

const printable = (max: number) =>
  fc.stringMatching(new RegExp(`^[ -~]{0,${max}}$`));
const urlSafe = (max: number) =>
  fc.stringMatching(new RegExp(`^[A-Za-z0-9._~%=&+-]{0,${max}}$`));

const id = fc.oneof(
  fc.constantFrom(
    "anchor",
    "..",
    ".",
    "%2e%2e",
    "..%2f..%2fetc",
    "%2F",
    "%00",
    "%ZZ",
    "a".repeat(129),
    "jobs",
    "",
  ),
  fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/),
  urlSafe(20),
);

const path = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(
        "/jobs/ID",
        "/jobs/ID/signal",
        "/jobs/ID/logs",
        "/jobs/ID/attach",
        "/jobs/ID/ID",
      ),
      id,
    )
    .map(([pattern, i]) => pattern.replaceAll("ID", i)),
  fc.constantFrom("/host", "/jobs", "/events", "/metrics", "/", "//jobs"),
  fc
    .array(fc.oneof(id, urlSafe(8)), { maxLength: 5 })
    .map((s) => `/${s.join("/")}`),
  fc.constantFrom("*", "jobs", "http://example.invalid/jobs"),
  fc.constant("/jobs"), // where valid specs make jobs
);

const query = fc.option(
  fc.oneof(
    fc.constantFrom(
      "stream=stdout",
      "stream=nope",
      "job=anchor",
      "job=..",
      "last_event_id=abc",
      "last_event_id=99999999999999999999",
      "wait_ms=-1",
      "height=0&width=9",
    ),
    urlSafe(30),
  ),
  { nil: undefined },
);

const sleepy = fc.constantFrom("/nonexistent/x", "nope", "", "/", "/bin/true");
const envName = fc
  .oneof(fc.stringMatching(/^[A-Z_]{1,8}$/), printable(6), fc.constant("A=B"))
  .filter((name) => name !== "PATH");
const looseValue = fc.jsonValue({ maxDepth: 2 });

/** Job specs, valid or nearly: each field right, wrong or missing. */
const spec = fc.record(
  {
    id: fc.oneof(id, looseValue),
    metadata: fc.oneof(fc.dictionary(printable(8), printable(8)), looseValue),
    config: fc.oneof(
      fc.record(
        {
          cmd: fc.oneof(
            fc
              .tuple(sleepy, fc.array(printable(8), { maxLength: 3 }))
              .map(([c, args]) => [c, ...args]),
            looseValue,
          ),
          entrypoint: fc.oneof(fc.array(sleepy, { maxLength: 2 }), looseValue),
          env: fc.oneof(fc.dictionary(envName, printable(12)), looseValue),
          secret_env: fc.oneof(fc.array(envName, { maxLength: 2 }), looseValue),
          working_dir: fc.oneof(
            fc.constantFrom("/", "/nonexistent"),
            looseValue,
          ),
          tcp_ports: fc.oneof(fc.integer({ min: -2, max: 70 }), looseValue),
          stdin: fc.oneof(fc.boolean(), looseValue),
          tty: fc.oneof(fc.boolean(), looseValue),
          memory_bytes: fc.oneof(fc.integer(), looseValue),
          ports: looseValue, // not a field: refused
        },
        { requiredKeys: [] },
      ),
      looseValue,
    ),
    signal: fc.oneof(fc.constantFrom("HUP", "SIGUSR1", "NOPE", ""), looseValue),
  },
  { requiredKeys: [] },
);

/** Valid specs: a job is made (running, done or failed to start). */
const validSpec = fc.record(
  {
    metadata: fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), printable(8)),
    config: fc.record(
      {
        cmd: fc
          .tuple(
            sleepy.filter((c) => c !== ""),
            fc.array(printable(8), { maxLength: 2 }),
          )
          .map(([c, args]) => [c, ...args]),
        env: fc.dictionary(
          fc
            .stringMatching(/^[A-Z][A-Z_]{0,7}$/)
            .filter((n) => n !== "PATH" && !/^PORT/.test(n)),
          printable(12),
          { maxKeys: 3 },
        ),
        tcp_ports: fc.integer({ min: 0, max: 2 }),
        stdin: fc.boolean(),
      },
      { requiredKeys: ["cmd"] },
    ),
  },
  { requiredKeys: ["config"] },
);

type Body =
  | { kind: "none" }
  | { kind: "text"; text: string }
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "oversize" };

const body: fc.Arbitrary<Body> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<Body>({ kind: "none" }) },
  {
    weight: 2,
    arbitrary: validSpec.map<Body>((s) => ({
      kind: "text",
      text: JSON.stringify(s),
    })),
  },
  {
    weight: 6,
    arbitrary: spec.map<Body>((s) => ({
      kind: "text",
      text: JSON.stringify(s),
    })),
  },
  {
    // A near-valid spec, cut or with one character changed.
    weight: 2,
    arbitrary: fc
      .tuple(spec, fc.nat(), fc.nat(), printable(1))
      .map<Body>(([s, cut, at, ch]) => {
        const text = JSON.stringify(s);
        return {
          kind: "text",
          text:
            cut % 2 === 0
              ? text.slice(0, cut % (text.length + 1))
              : text.slice(0, at % text.length) +
                ch +
                text.slice((at % text.length) + 1),
        };
      }),
  },
  {
    weight: 2,
    arbitrary: fc
      .jsonValue({ maxDepth: 3 })
      .map<Body>((v) => ({ kind: "text", text: JSON.stringify(v) ?? "" })),
  },
  {
    weight: 1,
    arbitrary: fc
      .uint8Array({ maxLength: 200 })
      .map<Body>((b) => ({ kind: "bytes", bytes: b })),
  },
  { weight: 1, arbitrary: fc.constant<Body>({ kind: "oversize" }) },
);

const HEADER_NAME = /^[a-z][a-z0-9-]{0,15}$/;
// Hop-by-hop and framing headers are the HTTP client's business.
const RESERVED_HEADERS = new Set([
  "connection",
  "upgrade",
  "content-length",
  "transfer-encoding",
  "host",
  "expect",
  "te",
  "trailer",
  "keep-alive",
  "authorization",
  "content-type",
]);

const headers = fc.record(
  {
    auth: fc.oneof(
      { weight: 8, arbitrary: fc.constant("good") },
      { weight: 1, arbitrary: fc.constant("none") },
      { weight: 1, arbitrary: fc.constant("mutated") },
      { weight: 1, arbitrary: printable(80) },
    ),
    type: fc.oneof(
      { weight: 6, arbitrary: fc.constant("application/json") },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          "application/json; charset=utf-8",
          "text/plain",
          "APPLICATION/JSON",
          "application/jsonx",
        ),
      },
      { weight: 1, arbitrary: printable(30) },
      { weight: 1, arbitrary: fc.constant(undefined) },
    ),
    host: fc.option(
      fc.constantFrom("localhost", "evil.example", "127.0.0.1:1", "[::1]", ""),
      { nil: undefined },
    ),
    origin: fc.option(fc.constantFrom("http://evil.example", "null"), {
      nil: undefined,
    }),
    extra: fc.dictionary(fc.stringMatching(HEADER_NAME), printable(40), {
      maxKeys: 3,
    }),
  },
  { requiredKeys: ["auth", "type", "extra"] },
);

const method = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom("GET", "POST", "PUT", "DELETE") },
  {
    weight: 1,
    arbitrary: fc.constantFrom("PATCH", "HEAD", "OPTIONS", "FOO", "CONNECTX"),
  },
);

const STANDARD_METHODS = [
  "GET",
  "POST",
  "PUT",
  "DELETE",
  "PATCH",
  "HEAD",
  "OPTIONS",
];

// Node's parser refuses these at the request line and closes at once, so
// a large body would still be in flight: the answer is lost to a reset.
const refusedByParser = (r: { method: string; path: string }) =>
  !STANDARD_METHODS.includes(r.method) || !r.path.startsWith("/");

const hostileRequest = fc
  .record({ method, path, query, headers, body })
  .filter((r) => !refusedByParser(r) || r.body.kind !== "oversize");

type HostileRequest =
  typeof hostileRequest extends fc.Arbitrary<infer T> ? T : never;

interface Answer {
  status: number;
  type: string;
  body: string;
}

function send(r: HostileRequest): Promise<Answer> {
  const token = daemon.token as string;
  const head: Record<string, string> = {};
  for (const [name, value] of Object.entries(r.headers.extra)) {
    if (!RESERVED_HEADERS.has(name)) head[name] = value;
  }
  if (r.headers.auth === "good") head.authorization = `Bearer ${token}`;
  else if (r.headers.auth === "mutated") {
    head.authorization = `Bearer ${token.slice(1)}x`;
  } else if (r.headers.auth !== "none") head.authorization = r.headers.auth;
  if (r.headers.type !== undefined) head["content-type"] = r.headers.type;
  if (r.headers.host !== undefined) head.host = r.headers.host;
  if (r.headers.origin !== undefined) head.origin = r.headers.origin;
  const payload =
    r.body.kind === "none"
      ? undefined
      : r.body.kind === "text"
        ? Buffer.from(r.body.text)
        : r.body.kind === "bytes"
          ? Buffer.from(r.body.bytes)
          : Buffer.alloc(MAX_BODY_BYTES + 1, "{");
  // Node's client frames a GET body with neither length nor chunks.
  if (payload !== undefined) head["content-length"] = String(payload.length);
  const url = new URL(daemon.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        agent,
        method: r.method,
        path: r.query === undefined ? r.path : `${r.path}?${r.query}`,
        headers: head,
        setHost: r.headers.host === undefined,
        timeout: 10_000,
      },
      (res) => {
        const type = res.headers["content-type"] ?? "";
        // Streams (events, logs) stay open: the status and type say enough.
        if (
          /^text\/(event-stream|plain)/.test(type) &&
          res.statusCode === 200
        ) {
          req.destroy();
          return resolve({ status: 200, type, body: "" });
        }
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, type, body: text }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () =>
      req.destroy(new Error(`${r.method} ${r.path} hung`)),
    );
    req.on("error", reject);
    req.end(payload);
  });
}

test(
  "fuzz: random and mutated requests get a 4xx JSON error or a real 2xx, and the daemon stays consistent",
  { timeout: 60_000 },
  async () => {
    let answered = 0;
    let ok = 0;
    await fc.assert(
      fc.asyncProperty(hostileRequest, async (r) => {
        const answer = await send(r);
        answered++;
        const what = `${r.method} ${r.path}${r.query ? `?${r.query}` : ""} -> ${answer.status} ${answer.body.slice(0, 200)}`;
        if (answer.status >= 200 && answer.status < 300) {
          ok++;
          if (answer.status === 201) {
            const job = JSON.parse(answer.body) as {
              id: string;
              status: string;
            };
            assert.ok(
              ["running", "failed", "done", "crashed"].includes(job.status),
              what,
            );
            created.add(job.id);
          }
          return;
        }
        assert.ok(answer.status >= 400 && answer.status < 500, what);
        assert.match(answer.type, /^application\/json/, what);
        if (r.method === "HEAD") return; // a HEAD answer has no body
        const error = JSON.parse(answer.body) as Record<string, unknown>;
        assert.equal(typeof error.code, "string", what);
        assert.equal(typeof error.message, "string", what);
      }),
      {
        numRuns: RUNS,
        interruptAfterTimeLimit: TIME_LIMIT_MS,
        // fast-check prints a failure's seed and path; these replay it.
        ...(process.env.LORNE_FUZZ_SEED
          ? {
              seed: Number(process.env.LORNE_FUZZ_SEED),
              path: process.env.LORNE_FUZZ_PATH,
            }
          : {}),
      },
    );
    assert.ok(answered >= 1000, `only ${answered} requests in the time limit`);

    // Still up, and the job list is exactly the anchor plus what was made.
    const host = await client.host();
    assert.equal(host.id, "test-host");
    const ids = (await client.listJobs()).map((j) => j.id).sort();
    assert.deepEqual(ids, ["anchor", ...created].sort());
    for (const jobId of created) await client.stopJob(jobId);
    await waitFor(
      async () =>
        (await client.listJobs()).every(
          (j) =>
            (j.status !== "starting" && j.status !== "running") ||
            j.id === "anchor",
        ),
      "fuzzed jobs to end",
    );
    const anchor = await client.getJob("anchor");
    assert.ok(["running", "stopped", "crashed"].includes(anchor.status));
    // Each valid request is rare, but some must have got through.
    assert.ok(ok > 0, "no request was valid");
  },
);

// --- manifests -----------------------------------------------------------

const service = fc.record(
  {
    id: fc.oneof(fc.stringMatching(/^[a-z]{1,6}$/), looseValue),
    cmd: fc.oneof(fc.array(printable(10), { maxLength: 3 }), looseValue),
    env: fc.oneof(fc.dictionary(envName, printable(20)), looseValue),
    tcp_ports: fc.oneof(fc.integer({ min: -1, max: 5 }), looseValue),
    args: fc.oneof(fc.array(printable(10), { maxLength: 2 }), looseValue),
    expose_env: fc.oneof(fc.array(envName, { maxLength: 2 }), looseValue),
  },
  { requiredKeys: [] },
);
const template = fc.constantFrom(
  "{{ .Env.HOME }}",
  "{{ index .Services.web.TCPPorts 0 }}",
  "{{ if .Env.X }}a{{ else }}b{{ end }}",
  "{{ .Nope ",
  "{{",
  "}}",
  "{{ range . }}{{ end }}",
);
const manifestText = fc.oneof(
  fc.array(service, { maxLength: 4 }).map((s) => JSON.stringify(s)),
  fc
    .tuple(
      fc.array(service, { minLength: 1, maxLength: 3 }),
      template,
      fc.nat(),
    )
    .map(([s, t, at]) => {
      const text = JSON.stringify(s);
      const i = at % text.length;
      return text.slice(0, i) + t + text.slice(i);
    }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? ""),
  printable(200),
);

test("fuzz: parseManifest returns services or throws a ValidationError, nothing else", () => {
  fc.assert(
    fc.property(manifestText, (text) => {
      try {
        const services = parseManifest(text, "fuzz.json");
        assert.ok(Array.isArray(services));
      } catch (err) {
        assert.ok(err instanceof ValidationError, String(err));
        assert.match(err.message, /^Manifest "fuzz\.json"/);
      }
    }),
    { numRuns: MANIFEST_RUNS, interruptAfterTimeLimit: 15_000 },
  );
});

test("fuzz: job ids that would leave the state dir are refused and create nothing", async () => {
  const inside = readdirSync(join(daemon.stateDir, "jobs"));
  const ids = [
    "..",
    ".",
    "...",
    "../escape",
    "a/../../escape",
    "/etc",
    "a\\b",
    "%2e%2e",
  ];
  for (const bad of ids) {
    for (const [method, path, body] of [
      [
        "PUT",
        `/jobs/${encodeURIComponent(bad)}`,
        { config: { cmd: ["/bin/true"] } },
      ],
      ["POST", "/jobs", { id: bad, config: { cmd: ["/bin/true"] } }],
    ] as const) {
      const res = await fetch(daemon.url + path, {
        method,
        headers: { ...authHeader(daemon), "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const what = `${method} ${path} ${JSON.stringify(bad)}`;
      // "." and ".." are folded away by URL rules before routing: what is
      // left is /jobs or /, which do not take PUT (405) or do not exist.
      assert.ok([400, 404, 405].includes(res.status), what);
      const error = (await res.json()) as { code: string; field?: string };
      if (res.status === 400) {
        assert.equal(error.code, "validation_error", what);
        assert.equal(error.field, "id", what);
      }
    }
  }
  // Other tests make temp dirs beside the state dir: look for ours only.
  for (const dir of [daemon.stateDir, join(daemon.stateDir, "..")]) {
    assert.equal(existsSync(join(dir, "escape")), false, dir);
  }
  assert.deepEqual(readdirSync(join(daemon.stateDir, "jobs")), inside);
});

// The raw answer to bytes written in two parts, the second after a pause
// (so the server reads them as two packets).
function rawExchange(first: string, second: string): Promise<string> {
  const url = new URL(daemon.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(first);
      setTimeout(() => socket.write(second), 100);
    });
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString("latin1")));
    socket.on("close", () => resolve(answer));
    socket.on("error", reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error("no answer")));
  });
}

test("fuzz: bytes refused after a HEAD on its connection get an answer without a body; a refused GET gets the JSON error", async () => {
  // A HEAD, then bytes that are no request (a body sent with it): the
  // answer to them must not carry a body the client would read as junk.
  const head = await rawExchange(
    `HEAD /host HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${daemon.token}\r\n\r\n`,
    '{"id":"%2e%2e","metadata":{},"con\r\n\r\n',
  );
  const second = head.slice(head.indexOf("HTTP/1.1 400"));
  assert.match(head, /^HTTP\/1\.1 405 Method Not Allowed\r\nallow: GET\r\n/); // no HEAD route
  assert.match(second, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(second, /\r\ncontent-type: application\/json/);
  assert.match(second, /\r\ncontent-length: 0\r\n/);
  assert.ok(second.endsWith("\r\n\r\n"), `no body: ${JSON.stringify(second)}`);

  // Refused in its request line's packet, a GET gets the JSON body.
  const get = await rawExchange("GET /jobs HTTP/1.1\r\nBad Header\r\n\r\n", "");
  const [, body] = get.split("\r\n\r\n");
  const error = JSON.parse(body ?? "") as { code: string; message: string };
  assert.equal(error.code, "protocol_error");
  assert.match(error.message, /^Invalid HTTP request: HPE_/);
});
