/**
 * The conformance suite against the docker backend: jobs are containers
 * of the busybox test image, and a job is gone when no container labelled
 * with its host and job id remains. Skipped with the reason when Docker is
 * not usable here; with LORNE_TEST_DOCKER=1 (CI) that is a failure instead.
 */
import { after } from "node:test";

import {
  containersOf,
  describeDocker,
  removeContainersOf,
  runningContainersOf,
  TEST_IMAGE,
  uniqueHostId,
} from "../docker/engine.js";
import { defineHostSuite } from "./suite.js";

// A host id of its own: other runs on this engine never see its containers.
const hostId = uniqueHostId("test-docker");

await describeDocker("conformance", () => {
  after(() => removeContainersOf(hostId));
  defineHostSuite({
    name: "docker",
    hostId,
    adopts: true,
    keepsStdin: false,
    reportsPid: false,
    ordersStreams: false,
    missingCommand: "exit127",
    daemonArgs: ["--backend", "docker"],
    firstPort: 62000,
    job: (cmd, extra = {}) => ({ cmd, ...extra, image: TEST_IMAGE }),
    service: (service) => ({ ...service, image: TEST_IMAGE }),
    // The image's PATH, not the daemon's; HOME and HOSTNAME from the engine.
    baseEnv: {
      PATH: "/bin",
      HOME: "/root",
      HOSTNAME: /^[A-Za-z0-9][A-Za-z0-9.-]*$/,
    },
    hasEnded: async (job, host) =>
      (await runningContainersOf(host, job.id)).length === 0,
    isGone: async (job, host) =>
      (await containersOf(host, job.id)).length === 0,
    destroy: (_job, host) => removeContainersOf(host),
    manifest: {
      path: "test/fixtures/docker-manifest.json",
      page: () => [/Hello from lorne-test-busybox/],
      workerReachedWeb: /^at=check status=ok url=http:\/\/\S+:\d+\/$/m,
      ps: [
        /^web\s+running\s+(\d+|-)\s+\d+\s+\S+\s+httpd -f -p \d+ -h \/www$/m,
        /^worker\s+running\s+(\d+|-)\s+-\s+\S+\s+sh -c trap 'exit 0' TERM; /m,
      ],
    },
  });
});
