/**
 * The conformance suite against the process backend: jobs are child
 * processes of the daemon, and a job is gone when its pid is.
 */
import { isAlive } from "../helpers.js";
import { defineHostSuite } from "./suite.js";

defineHostSuite({
  name: "process",
  hostId: "test-host",
  adopts: true,
  keepsStdin: true,
  reportsPid: true,
  ordersStreams: true,
  missingCommand: "failed",
  daemonArgs: [],
  firstPort: 61000,
  job: (cmd, extra = {}) => ({ cmd, ...extra }),
  service: (service) => service,
  baseEnv: { PATH: process.env.PATH ?? "" },
  isGone: (job) => Promise.resolve(job.pid === null || !isAlive(job.pid)),
  hasEnded: (job) => Promise.resolve(job.pid === null || !isAlive(job.pid)),
  destroy: (job) => {
    try {
      // Each job leads a process group of its own.
      if (job.pid !== null) process.kill(-job.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
    return Promise.resolve();
  },
  manifest: {
    // The example manifest minus its receive and ship services, which
    // belong to `npm start` (a fixed port, paths under .lorne-state).
    path: "test/fixtures/process-manifest.json",
    env: { WORKER_INTERVAL_MS: "100" },
    page: (hostId) => [
      /Hello from lorne/,
      new RegExp(`Job <code>web</code> on host\\s+<code>${hostId}</code>`),
    ],
    workerReachedWeb: /at=finish.*status=200/,
    ps: [
      /^web\s+running\s+\d+\s+\d+\s+\S+\s+node examples\/web\.mjs$/m,
      /^worker\s+running\s+\d+\s+-\s+\S+\s+node examples\/worker\.mjs$/m,
    ],
  },
});
