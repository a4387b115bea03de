/**
 * Runs a boot manifest: each service in order, rendered with the data of
 * the services before it, started as a job, and required to reach
 * `running` before the next one starts. The manifest was validated in full
 * before this runs, so failures here are runtime ones (a port, a command).
 */
import { errorMessage, LorneError } from "../errors.js";
import type { Context } from "../log/index.js";
import type { Host } from "./host.js";
import type { JobRecord, JobSpec } from "./job.js";
import {
  renderService,
  serviceData,
  type ManifestService,
  type ServiceData,
} from "./manifest/index.js";

export interface BootOptions {
  host: Host;
  services: ManifestService[];
  /** The daemon's environment, for `.Env` and `expose_env`. */
  env: Record<string, string>;
  externalIp: string;
  internalIp: string;
  log: Context;
}

/** A service's job failed to start. */
export class BootError extends LorneError {
  constructor(message: string) {
    super("internal", message);
  }
}

/** Starts every service; resolves with the jobs, in manifest order. */
export async function runManifest(options: BootOptions): Promise<JobRecord[]> {
  const { host, log } = options;
  const services: Record<string, ServiceData> = {};
  const jobs: JobRecord[] = [];

  for (const service of options.services) {
    const timer = log.timer({ fn: "boot", "service.id": service.id });
    const allocated: number[] = [];
    const ports = await host.ports
      .allocateFor(service.id, service.tcpPorts)
      .catch((err: unknown) => {
        throw new BootError(
          `Manifest service "${service.id}": ${errorMessage(err)}`,
        );
      });
    allocated.push(...ports);
    const rendered = (() => {
      try {
        return renderService(service, {
          externalIP: options.externalIp,
          internalIP: options.internalIp,
          env: options.env,
          services,
          ports,
          allocatePort: () => {
            const port = host.ports.allocateSyncFor(service.id);
            allocated.push(port);
            return port;
          },
        });
      } catch (err) {
        try {
          host.ports.release(allocated);
        } catch {
          // The store is failing too; the render error says what went wrong.
        }
        throw err;
      }
    })();

    const spec: JobSpec = {
      id: service.id,
      metadata: { ...rendered.metadata, "lorne.manifest": "true" },
      config: {
        cmd: rendered.argv,
        env: rendered.env,
        tcp_ports: rendered.ports.length,
      },
    };
    if (rendered.workingDir) spec.config.working_dir = rendered.workingDir;
    if (rendered.image) spec.config.image = rendered.image;
    const job = await host.create(spec, { ports: rendered.ports });
    if (job.status !== "running") {
      throw new BootError(
        `Manifest service "${service.id}" did not start: ${job.error ?? job.status}`,
      );
    }
    // A container has an address of its own on the engine's network.
    const address = (await host.address(job.id)) ?? options.internalIp;
    services[service.id] = serviceData(rendered, options.externalIp, address);
    jobs.push(job);
    timer.finish();
  }
  return jobs;
}
