/**
 * The host's Prometheus metrics (`GET /metrics`), on a registry of its own
 * so two hosts in one process never share counters.
 *
 * Counters and the start-latency histogram follow the host's event log
 * (create -> start or error), so jobs started by the manifest count the
 * same as jobs started through the API. Gauges are read when scraped: job
 * statuses from the job table, ports from the pool, attach sessions and
 * event subscribers from the API, which hands in how to count them.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

import type { JobEvent } from "./events.js";
import type { Host } from "./host.js";
import { JOB_STATUSES } from "./job.js";

/** Start latency buckets, in seconds: a spawn takes ms, a pull minutes. */
const START_BUCKETS_S = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];

export interface HostMetricsOptions {
  host: Host;
  /** Open attach sessions right now. */
  attachSessions: () => number;
  /** Open event streams (GET /events) right now. */
  eventSubscribers: () => number;
}

/** See the module comment. */
export class HostMetrics {
  readonly registry = new Registry();
  readonly #starts: Counter;
  readonly #failures: Counter;
  readonly #startSeconds: Histogram;
  /** When each starting job was created (performance.now() ms). */
  readonly #createdMs = new Map<string, number>();
  readonly #unsubscribe: () => void;

  constructor(options: HostMetricsOptions) {
    const { host } = options;
    const registers = [this.registry];
    new Gauge({
      name: "lorne_host_jobs",
      help: "Jobs the host knows, by status",
      labelNames: ["status"],
      registers,
      collect() {
        const counts = new Map<string, number>(JOB_STATUSES.map((s) => [s, 0]));
        for (const job of host.list()) {
          counts.set(job.status, (counts.get(job.status) ?? 0) + 1);
        }
        for (const [status, n] of counts) this.set({ status }, n);
      },
    });
    this.#starts = new Counter({
      name: "lorne_host_job_starts_total",
      help: "Jobs that started (reached running)",
      registers,
    });
    this.#failures = new Counter({
      name: "lorne_host_job_start_failures_total",
      help: "Jobs that failed to start",
      registers,
    });
    this.#startSeconds = new Histogram({
      name: "lorne_host_job_start_seconds",
      help: "Time from a job's creation to its start",
      buckets: START_BUCKETS_S,
      registers,
    });
    gauge(
      "lorne_host_attach_sessions",
      "Open attach sessions",
      options.attachSessions,
      registers,
    );
    gauge(
      "lorne_host_event_subscribers",
      "Open event streams (GET /events)",
      options.eventSubscribers,
      registers,
    );
    gauge(
      "lorne_host_ports_in_use",
      "Ports allocated to jobs",
      () => host.ports.used,
      registers,
    );
    this.#unsubscribe = host.events.subscribe((event) => this.#follow(event));
  }

  /** The metrics in the Prometheus text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Stops following the host's events. Idempotent. */
  close(): void {
    this.#unsubscribe();
    this.#createdMs.clear();
  }

  #follow(event: JobEvent): void {
    const id = event.job_id;
    if (event.event === "create") {
      this.#createdMs.set(id, performance.now());
      return;
    }
    const created = this.#createdMs.get(id);
    this.#createdMs.delete(id);
    if (event.event === "start") {
      this.#starts.inc();
      if (created !== undefined) {
        this.#startSeconds.observe((performance.now() - created) / 1000);
      }
    } else if (event.event === "error") {
      this.#failures.inc();
    }
  }
}

function gauge(
  name: string,
  help: string,
  read: () => number,
  registers: Registry[],
): void {
  new Gauge({
    name,
    help,
    registers,
    collect() {
      this.set(read());
    },
  });
}
