// The example worker: every $INTERVAL_MS it checks the web service at
// $WEB_URL and logs the outcome as a logfmt line, with a counter metric.
import { Context, StreamLogger } from "../dist/log/index.js";

const url = process.env.WEB_URL;
const intervalMs = Number(process.env.INTERVAL_MS ?? 2000);
const log = new Context({
  data: { app: "example-worker", "job.id": process.env.LORNE_JOB_ID },
  logger: new StreamLogger(),
});
let tick = 0;

async function check() {
  tick++;
  const timer = log.timer({ fn: "check", tick, url });
  try {
    const res = await fetch(url);
    timer.log({ at: "finish", status: res.status });
    log.counter(1, "worker.checks.ok");
  } catch (err) {
    log.report(err, { fn: "check", tick });
  }
}

log.log({ at: "start", interval_ms: intervalMs });
const timer = setInterval(check, intervalMs);
process.on("SIGTERM", () => {
  clearInterval(timer);
  log.log({ at: "shutdown", ticks: tick });
  process.exit(0);
});
