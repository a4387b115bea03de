/**
 * End to end: env values marked secret (`config.secret_env`) reach the job
 * and nothing else: not the daemon's log, not API answers, not events, not
 * error messages. The token is never logged either. Checked by searching
 * everything a real daemon printed and answered for the values.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { test } from "node:test";

import { ValidationError } from "../../src/errors.js";
import { HostClient } from "../../src/host/client.js";
import type { JobEvent } from "../../src/host/events.js";
import {
  authHeader,
  cliEnv,
  readText,
  runLorne,
  startDaemon,
  waitFor,
} from "../helpers.js";

// Distinctive, so a match anywhere is a leak.
const SECRET = "s3cret-4d9f1c-value";
const OTHER = "0therS3cret-77aa";

test("secrets: secret env values reach the job only; the daemon never logs them or the token", async () => {
  const daemon = await startDaemon(["--grace-ms", "500"]);
  const client = new HostClient(daemon);
  const answers: string[] = [];
  try {
    const created = await client.createJob({
      id: "secretive",
      config: {
        cmd: ["sh", "-c", 'echo "db=$DB_PASSWORD"; sleep 60'],
        env: { DB_PASSWORD: SECRET, API_KEY: OTHER, PLAIN: "visible" },
        secret_env: ["DB_PASSWORD", "API_KEY"],
      },
    });
    answers.push(JSON.stringify(created));
    assert.deepEqual(created.config.env, {
      DB_PASSWORD: "<redacted>",
      API_KEY: "<redacted>",
      PLAIN: "visible",
    });
    assert.deepEqual(created.config.secret_env, ["DB_PASSWORD", "API_KEY"]);

    // The job got the real value.
    await waitFor(
      async () =>
        (await readText(client.logs("secretive"))) === `db=${SECRET}\n`,
      "the job's output",
    );

    answers.push(JSON.stringify(await client.getJob("secretive")));
    answers.push(JSON.stringify(await client.listJobs()));
    answers.push(JSON.stringify(await client.host()));
    const inspect = await runLorne(["inspect", "secretive"], {
      env: cliEnv(daemon),
    });
    assert.equal(inspect.code, 0);
    answers.push(inspect.stdout);

    // Errors about a request holding secrets quote none of them.
    await assert.rejects(
      client.createJob({
        id: "secretive",
        config: {
          cmd: ["true"],
          env: { DB_PASSWORD: SECRET },
          secret_env: ["DB_PASSWORD"],
        },
      }),
      (err: Error) => {
        answers.push(err.message);
        return (
          err.message === 'Cannot create job "secretive": it exists already'
        );
      },
    );
    await assert.rejects(
      client.createJob({
        config: {
          cmd: ["true"],
          env: { DB_PASSWORD: `${SECRET}\0` },
          secret_env: ["DB_PASSWORD"],
        },
      }),
      (err: Error) => {
        answers.push(err.message);
        assert.ok(err instanceof ValidationError);
        assert.equal(
          err.message,
          "Invalid config.env.DB_PASSWORD: must be a string without NUL, got one with NUL",
        );
        return true;
      },
    );
    const stopped = await client.stopJob("secretive");
    answers.push(JSON.stringify(stopped));
    assert.equal(stopped.config.env?.DB_PASSWORD, "<redacted>");

    // Every event, as the SSE stream carries it.
    const events = await readEvents(daemon.url, authHeader(daemon));
    answers.push(events);
    const parsed = events
      .split("\n")
      .filter((l) => l.startsWith("data: "))
      .map((l) => JSON.parse(l.slice(6)) as JobEvent);
    assert.deepEqual(
      parsed.map((e) => [e.event, e.job.config.env?.DB_PASSWORD]),
      [
        ["create", "<redacted>"],
        ["start", "<redacted>"],
        ["stop", "<redacted>"],
      ],
    );
  } finally {
    assert.equal(await daemon.stop(), 0);
  }

  const log = daemon.lines.join("\n");
  assert.match(log, /at=create/, "the log has the job's lines");
  for (const text of [log, ...answers]) {
    assert.equal(text.includes(SECRET), false, text);
    assert.equal(text.includes(OTHER), false, text);
    assert.equal(text.includes(daemon.token as string), false, text);
  }
});

// The kept events, read from a stream that is closed once they are in.
function readEvents(
  url: string,
  headers: Record<string, string>,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/events?job=secretive&last_event_id=0`,
      { headers },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => {
          text += d.toString();
          if ((text.match(/^data: /gm) ?? []).length >= 3) {
            req.destroy();
            resolve(text);
          }
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error("events hung")));
    req.on("error", reject);
    req.end();
  });
}
