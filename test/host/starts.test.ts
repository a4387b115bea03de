/**
 * The bound on job starts in flight through the API: beyond it POST and
 * PUT /jobs answer 429 with Retry-After, and a slot frees once a start has
 * finished. The host and API are real, on 127.0.0.1; the backend holds
 * starts until the test opens it, so "in flight" is exact rather than a
 * matter of timing.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiServer } from "../../src/host/api/server.js";
import type {
  Backend,
  RunningJob,
  StartRequest,
} from "../../src/host/backend.js";
import { HostClient } from "../../src/host/client.js";
import { Host } from "../../src/host/host.js";
import { PortPool } from "../../src/host/ports.js";
import { Context, MemoryLogger } from "../../src/log/index.js";
import { tempDir, waitFor } from "../helpers.js";

const TOKEN = "ab".repeat(32);

type Exit = Awaited<RunningJob["exited"]>;

/**
 * A backend whose starts wait until `open()`, then "run" until signalled.
 * An in-memory stand-in behind the Backend seam (the real backends pass
 * the conformance suite there): what is tested is the API's bound, and a
 * real process adds nothing but timing.
 */
class HeldBackend implements Backend {
  readonly name = "held";
  readonly #waiting: (() => void)[] = [];
  #open = false;

  get held(): number {
    return this.#waiting.length;
  }

  open(): void {
    this.#open = true;
    for (const release of this.#waiting.splice(0)) release();
  }

  validate(): void {}

  async start(request: StartRequest): Promise<RunningJob> {
    if (!this.#open) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    let end!: (exit: Exit) => void;
    const exited = new Promise<Exit>((resolve) => (end = resolve));
    return {
      pid: null,
      exited,
      signal: (signal) => {
        request.output.end();
        end({ exitStatus: null, signal });
      },
    };
  }

  status() {
    return { ok: true };
  }

  async close(): Promise<void> {}
}

test("starts: beyond maxStartsInFlight, POST and PUT /jobs answer 429 with Retry-After", async () => {
  const state = tempDir();
  const backend = new HeldBackend();
  const log = new Context({ logger: new MemoryLogger() });
  const host = new Host({
    id: "limits",
    stateDir: state.path,
    backend,
    ports: new PortPool({ range: { min: 64100, max: 64109 } }),
    log,
    graceMs: 500,
  });
  const api = new ApiServer({
    host,
    log,
    version: "test",
    token: TOKEN,
    maxStartsInFlight: 2,
  });
  try {
    const address = await api.listen(0, "127.0.0.1");
    const url = `http://127.0.0.1:${address.port}`;
    const client = new HostClient({ url, token: TOKEN });
    const spec = { config: { cmd: ["sleep", "60"] } };

    const first = client.createJob({ ...spec, id: "one" });
    const second = client.createJob({ ...spec, id: "two" });
    await waitFor(() => backend.held === 2, "two starts held");

    for (const [method, path] of [
      ["POST", "/jobs"],
      ["PUT", "/jobs/three"],
    ] as const) {
      const res = await fetch(url + path, {
        method,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          "content-type": "application/json",
        },
        body: JSON.stringify(spec),
      });
      assert.equal(res.status, 429, path);
      assert.equal(res.headers.get("retry-after"), "1");
      assert.deepEqual(await res.json(), {
        code: "rate_limited",
        message:
          "Cannot create job: the host's limit of 2 starts in progress is reached; retry after 1s",
      });
    }
    // Refused starts never became jobs.
    assert.deepEqual(
      host.list().map((j) => j.id),
      ["one", "two"],
    );

    backend.open();
    assert.equal((await first).status, "running");
    assert.equal((await second).status, "running");
    const third = await client.createJob({ ...spec, id: "three" });
    assert.equal(third.status, "running");
  } finally {
    await host.close();
    await api.close();
    state.remove();
  }
});
