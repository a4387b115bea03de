/**
 * End to end: GET /metrics after a known sequence of jobs on a real
 * daemon, every value checked exactly; and the route wants the token like
 * every other.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { AttachConnection } from "../../src/host/attach/client.js";
import { HostClient } from "../../src/host/client.js";
import { authHeader, startDaemon, waitFor } from "../helpers.js";

/** `name{labels}` -> value, for every sample line of a scrape. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

test("metrics: jobs by status, starts, failures, latency, attach, subscribers and ports, exactly", async () => {
  const daemon = await startDaemon([
    "--ports",
    "64200-64209",
    "--grace-ms",
    "500",
  ]);
  const client = new HostClient(daemon);
  const scrape = async () => {
    const res = await fetch(`${daemon.url}/metrics`, {
      headers: authHeader(daemon),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    return parseMetrics(await res.text());
  };
  const events = new AbortController();
  let attach: AttachConnection | undefined;
  try {
    const empty = await scrape();
    assert.equal(empty.get("lorne_host_job_starts_total"), 0);
    assert.equal(empty.get('lorne_host_jobs{status="running"}'), 0);

    const sleep = { cmd: ["sleep", "60"] };
    await client.createJob({ id: "a", config: { ...sleep, tcp_ports: 2 } });
    await client.createJob({ id: "b", config: { ...sleep, tcp_ports: 1 } });
    const failed = await client.createJob({
      id: "c",
      config: { cmd: ["/no/such/cmd"] },
    });
    assert.equal(failed.status, "failed");
    await client.createJob({ id: "d", config: { cmd: ["true"] } });
    await client.createJob({
      id: "e",
      config: { cmd: ["sh", "-c", "exit 3"] },
    });
    await waitFor(async () => {
      const jobs = await client.listJobs();
      return jobs.filter((j) => j.status === "running").length === 2;
    }, "d and e to end");
    assert.equal((await client.stopJob("b")).status, "stopped");

    attach = await AttachConnection.open(client.endpoint, "a", {});
    const stream = client.events({ signal: events.signal });
    const listening = (async () => {
      for await (const _ of stream);
    })().catch(() => undefined);

    let metrics = await waitFor(async () => {
      const m = await scrape();
      return m.get("lorne_host_event_subscribers") === 1 && m;
    }, "the event subscriber to count");
    const expected: [string, number][] = [
      ['lorne_host_jobs{status="starting"}', 0],
      ['lorne_host_jobs{status="running"}', 1],
      ['lorne_host_jobs{status="done"}', 1],
      ['lorne_host_jobs{status="crashed"}', 1],
      ['lorne_host_jobs{status="stopped"}', 1],
      ['lorne_host_jobs{status="failed"}', 1],
      ["lorne_host_job_starts_total", 4],
      ["lorne_host_job_start_failures_total", 1],
      ["lorne_host_job_start_seconds_count", 4],
      ['lorne_host_job_start_seconds_bucket{le="+Inf"}', 4],
      ["lorne_host_attach_sessions", 1],
      ["lorne_host_event_subscribers", 1],
      ["lorne_host_ports_in_use", 2],
    ];
    for (const [name, value] of expected) {
      assert.equal(metrics.get(name), value, name);
    }
    assert.ok((metrics.get("lorne_host_job_start_seconds_sum") ?? -1) >= 0);

    attach.close();
    events.abort();
    await listening;
    metrics = await waitFor(async () => {
      const m = await scrape();
      return (
        m.get("lorne_host_attach_sessions") === 0 &&
        m.get("lorne_host_event_subscribers") === 0 &&
        m
      );
    }, "attach and subscriber to be gone");
    await client.stopJob("a");
    metrics = await scrape();
    assert.equal(metrics.get("lorne_host_ports_in_use"), 0);
    assert.equal(metrics.get('lorne_host_jobs{status="stopped"}'), 2);

    const refused = await fetch(`${daemon.url}/metrics`);
    assert.equal(refused.status, 401);
  } finally {
    attach?.close();
    events.abort();
    assert.equal(await daemon.stop(), 0);
  }
});
