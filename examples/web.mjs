// The example web service: answers every request with a small page about
// itself, on the port the host allocated ($PORT), and logs each request as
// logfmt with lorne's own logger.
import { createServer } from "node:http";

import { Context, StreamLogger } from "../dist/log/index.js";

const port = Number(process.env.PORT);
const log = new Context({
  data: { app: "example-web", "job.id": process.env.LORNE_JOB_ID },
  logger: new StreamLogger(),
});
let requests = 0;

const server = createServer((req, res) => {
  requests++;
  const timer = log.timer({ method: req.method, path: req.url });
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end(`<!doctype html>
<title>lorne example</title>
<h1>Hello from lorne</h1>
<p>Job <code>${process.env.LORNE_JOB_ID}</code> on host
<code>${process.env.LORNE_HOST_ID}</code>, port ${port}.</p>
<p>Requests served: ${requests}.</p>
`);
  timer.finish();
});

server.listen(port, "127.0.0.1", () => log.log({ at: "listening", port }));
process.on("SIGTERM", () => {
  log.log({ at: "shutdown", requests });
  server.close(() => process.exit(0));
});
