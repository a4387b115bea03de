import { test } from "node:test";

import {
  dockerUnavailable,
  removeContainersOf,
  REQUIRED,
  TEST_IMAGE,
  uniqueHostId,
} from "../docker/engine.js";
import { runLorne } from "../helpers.js";
import { defineAttachSuite } from "./suite.js";

const why = await dockerUnavailable();
if (why && REQUIRED) {
  test("docker attach: the engine is required here (LORNE_TEST_DOCKER=1)", () => {
    throw new Error(why);
  });
} else if (why) {
  test("docker attach", (t) => t.skip(why));
} else {
  const hostId = uniqueHostId("attach-docker");
  defineAttachSuite({
    name: "docker",
    hostId,
    daemonArgs: ["--backend", "docker"],
    job: (cmd, extra) => ({ cmd, image: TEST_IMAGE, ...extra }),
    ttyUnsupported: engineTtyUnsupported,
    cleanup: () => removeContainersOf(hostId),
  });
}

// Some engines give containers a terminal they cannot query; then the test
// would measure the engine, not lorne. Ask the docker CLI itself.
async function engineTtyUnsupported(): Promise<string | null> {
  const probe = await runLorne(["--help"]);
  void probe;
  const { docker } = await import("../docker/engine.js");
  const result = await docker([
    "run",
    "--rm",
    "-t",
    TEST_IMAGE,
    "stty",
    "size",
  ]);
  if (result.code === 0 && /^\d+ \d+/.test(result.stdout.trim())) return null;
  return `this engine's containers cannot query their TTY (docker run -t ... stty size: ${(result.stdout + result.stderr).trim()})`;
}
