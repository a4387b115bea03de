import assert from "node:assert/strict";
import { mock, test } from "node:test";

import { Backoff } from "../../src/backoff.js";
import { UnavailableError } from "../../src/errors.js";
import { Reconnector, STABLE_MS } from "../../src/host/reconnect.js";

/** A backoff of 1 ms steps that records what the reconnector asks of it. */
class RecordingBackoff extends Backoff {
  resets = 0;
  waits: number[] = [];

  constructor() {
    super(1, 8, () => 1);
  }

  override next(): number {
    const wait = super.next();
    this.waits.push(wait);
    return wait;
  }

  override reset(): void {
    this.resets++;
    super.reset();
  }
}

const lostConnection = () => new UnavailableError("connection refused");

test("reconnect: an error other than a lost connection ends at once", async () => {
  const lost: Error[] = [];
  const r = new Reconnector({ onLost: (err) => lost.push(err) });
  const refused = new Error("Lorne host refused the token");
  await assert.rejects(r.lost(refused), (err) => err === refused);
  assert.deepEqual(lost, []);
});

test("reconnect: a timeout of 0 never retries", async () => {
  const r = new Reconnector({ timeoutMs: 0 });
  const err = lostConnection();
  await assert.rejects(r.lost(err), (e) => e === err);
});

test("reconnect: gives up once the timeout since the loss has passed, saying so", async () => {
  const backoff = new RecordingBackoff();
  const lost: Error[] = [];
  const r = new Reconnector({
    timeoutMs: 40,
    backoff,
    onLost: (err) => lost.push(err),
  });
  const started = Date.now();
  let attempts = 0;
  const final = await (async () => {
    for (;;) {
      try {
        await r.lost(lostConnection());
        attempts++;
      } catch (err) {
        return err;
      }
    }
  })();
  assert.ok(final instanceof UnavailableError);
  assert.match(
    final.message,
    /^Gave up reconnecting after 40ms: connection refused$/,
  );
  assert.ok(Date.now() - started >= 40, "waited out the timeout");
  assert.ok(attempts >= 2, `retried before giving up (${attempts})`);
  assert.equal(lost.length, 1, "onLost once per loss, not per attempt");
});

test("reconnect: a host that answers and drops at once is retried ever more slowly", async () => {
  const backoff = new RecordingBackoff();
  const back: number[] = [];
  const r = new Reconnector({
    timeoutMs: 60_000,
    backoff,
    onBack: () => back.push(1),
  });
  r.back(); // the first connection
  for (let i = 0; i < 5; i++) {
    await r.lost(lostConnection());
    r.back(); // answered, then dropped again at once
  }
  assert.equal(back.length, 5);
  assert.equal(backoff.resets, 0);
  assert.deepEqual(backoff.waits, [1, 2, 4, 8, 8]);
});

test("reconnect: after a connection that stood, the next loss starts from the first delay", async () => {
  mock.timers.enable({ apis: ["Date"], now: 1_000_000 });
  try {
    const backoff = new RecordingBackoff();
    const r = new Reconnector({ timeoutMs: 60_000, backoff });
    r.back();
    await r.lost(lostConnection());
    await r.lost(lostConnection());
    r.back();
    mock.timers.tick(STABLE_MS);
    await r.lost(lostConnection());
    assert.equal(backoff.resets, 1);
    assert.deepEqual(backoff.waits, [1, 2, 1]);
  } finally {
    mock.timers.reset();
  }
});

test("reconnect: an aborted follower stops waiting at once", async () => {
  const controller = new AbortController();
  const r = new Reconnector(
    { timeoutMs: 60_000, backoff: new Backoff(60_000, 60_000) },
    controller.signal,
  );
  const waiting = r.lost(lostConnection());
  const reason = new Error("stopped by the user");
  controller.abort(reason);
  await assert.rejects(waiting, (err) => err === reason);
});
