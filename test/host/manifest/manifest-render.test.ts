/**
 * Rendering manifest services: argv and env from templates, blank arguments
 * dropped, expose_env, `.TCPPort` allocation, later services reading earlier
 * ones through `.Services`, and render-time errors with exact messages.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { ValidationError } from "../../../src/errors.js";
import {
  parseManifest,
  renderService,
  serviceData,
} from "../../../src/host/manifest/index.js";
import type {
  ManifestService,
  RenderContext,
} from "../../../src/host/manifest/index.js";

/** A context whose allocatePort hands out 6000, 6001, ... */
function context(overrides: Partial<RenderContext> = {}): RenderContext {
  let next = 6000;
  return {
    externalIP: "203.0.113.7",
    internalIP: "10.0.0.2",
    env: { HOME: "/root", DEBUG: "" },
    services: {},
    ports: [],
    allocatePort: () => next++,
    ...overrides,
  };
}

function only(text: string): ManifestService {
  const [service, ...rest] = parseManifest(text);
  assert.ok(service !== undefined && rest.length === 0);
  return service;
}

test("render: a second service reads the first through .Services", () => {
  const [web, api] = parseManifest(`[
    {
      "id": "web",
      "entrypoint": ["/bin/web"],
      "args": ["--listen={{ .InternalIP }}:{{ .TCPPort 0 }}", "--admin={{ .TCPPort 1 }}"],
      "env": { "NAME": "web-{{ .ExternalIP }}" },
      "tcp_ports": 1
    },
    {
      "id": "api",
      "cmd": [
        "/bin/api",
        "--web={{ .Services.web.InternalIP }}:{{ index .Services.web.TCPPorts 1 }}",
        "--name={{ .Services.web.Env.NAME }}",
        "--ports={{ .Services.web.TCPPorts }}"
      ]
    }
  ]`);
  assert.ok(web !== undefined && api !== undefined);
  const ctx = context({ ports: [5000] });

  const renderedWeb = renderService(web, ctx);
  assert.deepEqual(renderedWeb, {
    id: "web",
    argv: ["/bin/web", "--listen=10.0.0.2:5000", "--admin=6000"],
    env: { NAME: "web-203.0.113.7" },
    ports: [5000, 6000],
    metadata: {},
  });
  assert.deepEqual(ctx.ports, [5000]);

  const data = serviceData(renderedWeb, "203.0.113.7", "10.0.0.9");
  assert.deepEqual(data, {
    ExternalIP: "203.0.113.7",
    InternalIP: "10.0.0.9",
    TCPPorts: [5000, 6000],
    Env: { NAME: "web-203.0.113.7" },
  });
  const renderedApi = renderService(api, context({ services: { web: data } }));
  assert.deepEqual(renderedApi.argv, [
    "/bin/api",
    "--web=10.0.0.9:6000",
    "--name=web-203.0.113.7",
    "--ports=[5000 6000]",
  ]);
  assert.deepEqual(renderedApi.ports, []);
});

test("render: arguments that render blank are dropped, env values kept", () => {
  const service = only(`[{
    "id": "web",
    "cmd": ["run", "", "  ", "{{ if .Env.DEBUG }}--debug{{ end }}", " {{ .Env.NOPE }}\\t",
            "{{ if .Env.HOME }}--home{{ end }}", " spaced "],
    "env": { "EMPTY": "", "BLANK": "{{ .Env.NOPE }}", "SPACE": " " }
  }]`);
  const rendered = renderService(service, context());
  assert.deepEqual(rendered.argv, ["run", "--home", " spaced "]);
  assert.deepEqual(rendered.env, { EMPTY: "", BLANK: "", SPACE: " " });
});

test("render: expose_env copies the daemon's variables that exist", () => {
  const service = only(`[{
    "id": "web",
    "cmd": ["run"],
    "env": { "A": "1" },
    "expose_env": ["HOME", "MISSING", "DEBUG"]
  }]`);
  const rendered = renderService(service, context());
  assert.deepEqual(rendered.env, { A: "1", HOME: "/root", DEBUG: "" });
  assert.deepEqual(Object.keys(rendered.env), ["A", "HOME", "DEBUG"]);
});

test("render: .TCPPort allocates in argv order, then env order", () => {
  const service = only(`[{
    "id": "web",
    "entrypoint": ["run", "{{ .TCPPort 0 }}"],
    "args": ["{{ .TCPPort 1 }}", "{{ .TCPPort 0 }}", "{{ .TCPPorts }}"],
    "env": { "B": "{{ .TCPPort 2 }}", "A": "{{ .TCPPort 3 }} {{ .TCPPorts }}" }
  }]`);
  const rendered = renderService(service, context());
  assert.deepEqual(rendered.argv, [
    "run",
    "6000",
    "6001",
    "6000",
    "[6000 6001]",
  ]);
  assert.deepEqual(rendered.env, {
    B: "6002",
    A: "6003 [6000 6001 6002 6003]",
  });
  assert.deepEqual(rendered.ports, [6000, 6001, 6002, 6003]);
});

test("render: .TCPPort reads ports allocated from tcp_ports first", () => {
  const service = only(
    '[{"id": "web", "cmd": ["run", "{{ .TCPPort 1 }}", "{{ .TCPPort 2 }}"], "tcp_ports": 2}]',
  );
  const rendered = renderService(service, context({ ports: [5000, 5001] }));
  assert.deepEqual(rendered.argv, ["run", "5001", "6000"]);
  assert.deepEqual(rendered.ports, [5000, 5001, 6000]);
});

test("render: passes the plain fields through", () => {
  const service = only(`[{
    "id": "web", "cmd": ["run"], "working_dir": "/srv", "image": "img",
    "metadata": { "team": "core" }
  }]`);
  assert.deepEqual(renderService(service, context()), {
    id: "web",
    argv: ["run"],
    env: {},
    ports: [],
    workingDir: "/srv",
    image: "img",
    metadata: { team: "core" },
  });
});

const RENDER_ERRORS: readonly [
  string,
  string,
  Partial<RenderContext>,
  string,
  string,
][] = [
  // [case, manifest, context overrides, message, field]
  [
    "a port index past the next one",
    '[{"id": "web", "cmd": ["run", "{{ .TCPPort 2 }}"], "tcp_ports": 1}]',
    { ports: [5000] },
    'Manifest service "web": field "cmd[1]" at 1:4: error calling TCPPort: cannot allocate port 2 before port 1',
    "services[0].cmd[1]",
  ],
  [
    "a negative port index",
    '[{"id": "web", "cmd": ["run", "{{ .TCPPort -1 }}"]}]',
    {},
    'Manifest service "web": field "cmd[1]" at 1:4: error calling TCPPort: port index must be a non-negative integer, found -1',
    "services[0].cmd[1]",
  ],
  [
    "a port index that is a string",
    '[{"id": "web", "entrypoint": ["run"], "args": ["{{ .TCPPort \\"0\\" }}"]}]',
    {},
    'Manifest service "web": field "args[0]" at 1:4: error calling TCPPort: port index must be a non-negative integer, found a string',
    "services[0].args[0]",
  ],
  [
    "a failing port allocation",
    '[{"id": "web", "cmd": ["run"], "env": {"P": "{{ .TCPPort 0 }}"}}]',
    {
      allocatePort: () => {
        throw new Error("no free ports in 55000-65535");
      },
    },
    'Manifest service "web": field "env.P" at 1:4: error calling TCPPort: no free ports in 55000-65535',
    "services[0].env.P",
  ],
  [
    "an index out of range",
    '[{"id": "web", "cmd": ["run", "{{ index .TCPPorts 0 }}"]}]',
    {},
    'Manifest service "web": field "cmd[1]" at 1:4: index out of range: 0 (length 0)',
    "services[0].cmd[1]",
  ],
  [
    "a service missing from the context",
    '[{"id": "a", "cmd": ["x"]}, {"id": "b", "cmd": ["{{ .Services.a.InternalIP }}"]}]',
    {},
    'Manifest service "b": field "cmd[0]" at 1:13: map has no entry for key "a"',
    "services[1].cmd[0]",
  ],
  [
    "a command that renders blank",
    '[{"id": "web", "entrypoint": ["{{ .Env.NOPE }}"], "args": [" "]}]',
    {},
    'Manifest service "web": field "entrypoint": the command is empty after rendering',
    "services[0].entrypoint",
  ],
  [
    "a rendered NUL character",
    '[{"id": "web", "cmd": ["run", "{{ .Env.BAD }}"]}]',
    { env: { BAD: "a\u0000b" } },
    'Manifest service "web": field "cmd[1]": the rendered value contains a NUL character',
    "services[0].cmd[1]",
  ],
];

for (const [name, text, overrides, message, field] of RENDER_ERRORS) {
  test(`render: fails on ${name}`, () => {
    const services = parseManifest(text);
    const service = services[services.length - 1];
    assert.ok(service !== undefined);
    assert.throws(
      () => renderService(service, context(overrides)),
      (err) => {
        assert.ok(err instanceof ValidationError);
        assert.equal(err.message, message);
        assert.equal(err.field, field);
        return true;
      },
    );
  });
}

test("render: errors name the manifest file and chain the cause", () => {
  const [service] = parseManifest(
    '[{"id": "web", "cmd": ["run", "{{ .TCPPort 0 }}"]}]',
    "boot.json",
  );
  assert.ok(service !== undefined);
  const failure = new Error("exhausted");
  const ctx = context({
    allocatePort: () => {
      throw failure;
    },
  });
  assert.throws(
    () => renderService(service, ctx),
    (err) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(
        err.message,
        'Manifest "boot.json": service "web": field "cmd[1]" at 1:4: error calling TCPPort: exhausted',
      );
      assert.ok(err.cause instanceof ValidationError);
      assert.equal(err.cause.cause, failure);
      return true;
    },
  );
});
