import { defineAttachSuite } from "./suite.js";

defineAttachSuite({
  name: "process",
  hostId: "attach-process",
  daemonArgs: [],
  job: (cmd, extra) => ({ cmd, ...extra }),
  ttyUnsupported: () => Promise.resolve(null),
});
