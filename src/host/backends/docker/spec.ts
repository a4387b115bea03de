/**
 * What the docker backend asks of the engine for a job, and reads back:
 * the container's create options (name, labels, env, ports published on
 * the bind address with the same number inside and out, tini as PID 1,
 * the memory limit), its network address, and an image's stop signal.
 */
import { constants as osConstants } from "node:os";

import type Docker from "dockerode";

import type { StartRequest } from "../../backend.js";
import type { DockerBackendOptions } from "./backend.js";
import { HOST_LABEL, JOB_LABEL } from "./defaults.js";

/** The create options of a job's container. */
export function containerSpec(
  request: StartRequest,
  options: DockerBackendOptions,
): Docker.ContainerCreateOptions {
  const { job, env } = request;
  const config = job.config;
  const bindIp = options.bindIp ?? "127.0.0.1";
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const port of job.ports) {
    exposed[`${port}/tcp`] = {};
    bindings[`${port}/tcp`] = [{ HostIp: bindIp, HostPort: String(port) }];
  }
  const spec: Docker.ContainerCreateOptions = {
    name: `lorne-${job.id}`,
    Image: config.image,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: { [HOST_LABEL]: options.hostId, [JOB_LABEL]: job.id },
    Tty: config.tty ?? false,
    OpenStdin: config.stdin ?? false,
    StdinOnce: config.stdin ?? false,
    AttachStdin: config.stdin ?? false,
    AttachStdout: true,
    AttachStderr: true,
    ExposedPorts: exposed,
    HostConfig: {
      Init: true,
      PortBindings: bindings,
      ...(config.memory_bytes !== undefined
        ? { Memory: config.memory_bytes, MemorySwap: config.memory_bytes }
        : {}),
    },
  };
  if (config.cmd.length > 0) spec.Cmd = config.cmd;
  if (config.entrypoint !== undefined) spec.Entrypoint = config.entrypoint;
  if (config.working_dir !== undefined) spec.WorkingDir = config.working_dir;
  return spec;
}

/** The address the container has on its network, when it has one. */
export function addressOf(
  info: Docker.ContainerInspectInfo | null,
): string | null {
  const networks = Object.values(info?.NetworkSettings.Networks ?? {});
  return networks.find((n) => n.IPAddress)?.IPAddress ?? null;
}

/** An image's stop signal, a name ("SIGQUIT", "QUIT") or a number ("3"). */
export function stopSignalOf(value: string | undefined): NodeJS.Signals {
  if (!value) return "SIGTERM";
  const byNumber = /^\d+$/.test(value)
    ? Object.entries(osConstants.signals).find(([, n]) => n === Number(value))
    : undefined;
  const upper = byNumber ? byNumber[0] : value.toUpperCase();
  const name = upper.startsWith("SIG") ? upper : `SIG${upper}`;
  return name in osConstants.signals ? (name as NodeJS.Signals) : "SIGTERM";
}
