/**
 * `lorne/host`: the host agent as a library. The daemon, its parts (for
 * embedding or testing), and the typed API client.
 */
export { Daemon, type DaemonOptions } from "./daemon.js";
export { Host, DEFAULT_GRACE_MS, type HostOptions } from "./host.js";
export {
  HostClient,
  DEFAULT_HOST_URL,
  type HostEndpoint,
  type HostInfo,
} from "./client.js";
export { ApiServer } from "./api/server.js";
export { ProcessBackend } from "./backends/process.js";
export type { Backend, RunningJob, StartRequest } from "./backend.js";
export { EventLog, type JobEvent, type JobEventType } from "./events.js";
export {
  validateJobSpec,
  validateJobId,
  type JobConfig,
  type JobRecord,
  type JobSpec,
  type JobStatus,
} from "./job.js";
export { PortPool, parsePortRange, type PortRange } from "./ports.js";
export { parseManifest, renderService } from "./manifest/index.js";
