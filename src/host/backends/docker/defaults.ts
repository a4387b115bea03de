/**
 * The docker backend's defaults and label names, apart from the backend so
 * the CLI can show them without loading the engine client.
 */
export const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";
export const DEFAULT_START_CONCURRENCY = 8;
/** Default time a pull may take before the job fails. */
export const DEFAULT_PULL_TIMEOUT_MS = 5 * 60_000;
export const HOST_LABEL = "lorne.host.id";
export const JOB_LABEL = "lorne.job.id";
