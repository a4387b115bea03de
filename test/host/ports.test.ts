import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { test } from "node:test";

import { UnavailableError, ValidationError } from "../../src/errors.js";
import { parsePortRange, PortPool } from "../../src/host/ports.js";

test("ports: parses a range and rejects bad ones", () => {
  assert.deepEqual(parsePortRange("55000-65535"), { min: 55000, max: 65535 });
  for (const bad of ["", "5-", "0-10", "10-5", "1-65536", "a-b"]) {
    assert.throws(() => parsePortRange(bad), ValidationError, bad);
  }
});

test("ports: hands out each port once and takes it back on release", async () => {
  const pool = new PortPool({ range: { min: 100, max: 102 }, probe: false });
  const first = await pool.allocateFor("job", 2);
  assert.deepEqual(first, [100, 101]);
  assert.deepEqual(await pool.allocateFor("job", 1), [102]);
  await assert.rejects(pool.allocateFor("job", 1), UnavailableError);
  pool.release([101]);
  assert.deepEqual(await pool.allocateFor("job", 1), [101]);
  assert.equal(pool.used, 3);
});

test("ports: exhaustion takes nothing and names the range", async () => {
  const pool = new PortPool({ range: { min: 100, max: 101 }, probe: false });
  await assert.rejects(pool.allocateFor("job", 3), {
    message: "Cannot allocate a TCP port: all ports in 100-101 are in use",
  });
  assert.equal(pool.used, 0);
});

test("ports: skips a port another program is listening on", async () => {
  // Below the kernel's ephemeral range, so no other socket of the suite
  // takes the neighbouring port while the pool probes it.
  const { blocker, busy } = await blockPortWithFreeNeighbour(20_000, 20_400);
  try {
    const pool = new PortPool({ range: { min: busy, max: busy + 1 } });
    const ports = await pool.allocateFor("job", 1);
    assert.notEqual(ports[0], busy);
  } finally {
    blocker.close();
  }
});

test("ports: concurrent allocations never share a port", async () => {
  const pool = new PortPool({ range: { min: 58000, max: 58199 } });
  const results = await Promise.all(
    Array.from({ length: 50 }, () => pool.allocateFor("job", 2)),
  );
  const all = results.flat();
  assert.equal(new Set(all).size, 100);
});

// Listens on a port in [min, max) whose next port is free, and returns it.
async function blockPortWithFreeNeighbour(
  min: number,
  max: number,
): Promise<{ blocker: Server; busy: number }> {
  for (let port = min; port < max; port += 2) {
    const blocker = await listenOn(port);
    if (!blocker) continue;
    const neighbour = await listenOn(port + 1);
    if (neighbour) {
      await new Promise((resolve) => neighbour.close(resolve));
      return { blocker, busy: port };
    }
    blocker.close();
  }
  throw new Error(`No free pair of ports in ${min}-${max}`);
}

function listenOn(port: number): Promise<Server | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(null));
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}
