/**
 * Parsing valid manifests: every field, the defaults, and keys that must
 * stay plain data. Bad manifests are in manifest-errors.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { parseManifest } from "../../../src/host/manifest/index.js";

const EXAMPLE = `[
  {
    "id": "web",
    "entrypoint": ["/bin/web"],
    "args": ["--port", "{{ .TCPPort 0 }}", "{{ if .Env.DEBUG }}--debug{{ end }}"],
    "env": { "LISTEN": "{{ .InternalIP }}:{{ index .TCPPorts 0 }}" },
    "tcp_ports": 1,
    "expose_env": ["HOME"],
    "working_dir": "/srv/web",
    "image": "lorne/web",
    "metadata": { "team": "core" }
  },
  {
    "id": "api",
    "cmd": ["/bin/api", "--web={{ .Services.web.InternalIP }}:{{ index .Services.web.TCPPorts 0 }}"]
  }
]`;

test("manifest: parses every field of a valid manifest", () => {
  const [web, api, ...rest] = parseManifest(EXAMPLE, "example.json");
  assert.equal(rest.length, 0);
  assert.ok(web !== undefined && api !== undefined);

  assert.equal(web.id, "web");
  assert.equal(web.index, 0);
  assert.equal(web.source, "example.json");
  assert.deepEqual(
    web.argv.map((t) => [t.name, t.source]),
    [
      ["entrypoint[0]", "/bin/web"],
      ["args[0]", "--port"],
      ["args[1]", "{{ .TCPPort 0 }}"],
      ["args[2]", "{{ if .Env.DEBUG }}--debug{{ end }}"],
    ],
  );
  assert.deepEqual(Object.keys(web.env), ["LISTEN"]);
  assert.equal(web.env.LISTEN?.name, "env.LISTEN");
  assert.equal(web.tcpPorts, 1);
  assert.deepEqual(web.exposeEnv, ["HOME"]);
  assert.equal(web.workingDir, "/srv/web");
  assert.equal(web.image, "lorne/web");
  assert.deepEqual(web.metadata, { team: "core" });
  assert.deepEqual(web.raw, (JSON.parse(EXAMPLE) as unknown[])[0]);

  assert.equal(api.index, 1);
  assert.deepEqual(
    api.argv.map((t) => t.name),
    ["cmd[0]", "cmd[1]"],
  );
});

test("manifest: applies the defaults of optional fields", () => {
  const [service] = parseManifest('[{ "id": "a", "cmd": ["x"] }]');
  assert.ok(service !== undefined);
  assert.equal(service.source, undefined);
  assert.deepEqual(service.env, {});
  assert.equal(service.tcpPorts, 0);
  assert.deepEqual(service.exposeEnv, []);
  assert.equal(service.workingDir, undefined);
  assert.equal(service.image, undefined);
  assert.deepEqual(service.metadata, {});
  assert.deepEqual(service.raw, { id: "a", cmd: ["x"] });
});

test("manifest: an empty array is a manifest with no services", () => {
  assert.deepEqual(parseManifest(" [ ] "), []);
});

test("manifest: ids may use every allowed character", () => {
  const id = "Az09_.-".padEnd(128, "x");
  const [service] = parseManifest(JSON.stringify([{ id, cmd: ["x"] }]));
  assert.equal(service?.id, id);
});

test("manifest: ids with dots and other characters are accepted", () => {
  const ids = [".a", "a.", "..a", "a..b", "-", "_"];
  const text = JSON.stringify(ids.map((id) => ({ id, cmd: ["x"] })));
  assert.deepEqual(
    parseManifest(text).map((service) => service.id),
    ids,
  );
});

test("manifest: templates nested 100 levels deep are accepted", () => {
  const parens = `{{ ${"(".repeat(100)}1${")".repeat(100)} }}`;
  const ifs = "{{ if true }}".repeat(100) + "x" + "{{ end }}".repeat(100);
  const [service] = parseManifest(
    JSON.stringify([{ id: "a", cmd: [parens, ifs] }]),
  );
  assert.deepEqual(
    service?.argv.map((t) => t.source),
    [parens, ifs],
  );
});

test("manifest: keys such as __proto__ stay data", () => {
  const text =
    '[{"id": "a", "cmd": ["x"], "env": {"__proto__": "1"}, "metadata": {"constructor": "2"}}]';
  const [service] = parseManifest(text);
  assert.ok(service !== undefined);
  assert.deepEqual(Object.keys(service.env), ["__proto__"]);
  assert.equal(Object.getPrototypeOf(service.env), Object.prototype);
  assert.deepEqual(Object.entries(service.metadata), [["constructor", "2"]]);
});
