/**
 * The host's event log: every job transition becomes an event with a
 * sequence number. Subscribers get events as they happen; a bounded ring of
 * recent events lets a client resume after the last id it saw.
 */
import type { JobRecord } from "./job.js";

/** How many past events are kept for resuming; older ones are dropped. */
export const DEFAULT_EVENT_HISTORY = 10_000;

export type JobEventType = "create" | "start" | "stop" | "error";

export interface JobEvent {
  /** Sequence number, from 1, increasing by one per event. */
  id: number;
  event: JobEventType;
  job_id: string;
  /** When the event happened, ISO 8601 UTC. */
  time: string;
  /** The job as it was right after the event. */
  job: JobRecord;
}

export interface EventFilter {
  jobId?: string;
}

export type EventListener = (event: JobEvent) => void;

export interface EventLogOptions {
  history?: number;
}

/** In-memory event log with fan-out; see the module comment. */
export class EventLog {
  readonly #history: number;
  readonly #ring: JobEvent[] = [];
  readonly #listeners = new Set<{ filter: EventFilter; fn: EventListener }>();
  #lastId = 0;

  constructor(options: EventLogOptions = {}) {
    this.#history = options.history ?? DEFAULT_EVENT_HISTORY;
  }

  /** The id of the newest event, 0 before the first. */
  get lastId(): number {
    return this.#lastId;
  }

  /** Records an event and hands it to every matching subscriber. */
  emit(event: JobEventType, job: JobRecord): JobEvent {
    const record: JobEvent = {
      id: ++this.#lastId,
      event,
      job_id: job.id,
      time: new Date().toISOString(),
      job: structuredClone(job),
    };
    this.#ring.push(record);
    if (this.#ring.length > this.#history) this.#ring.shift();
    for (const listener of this.#listeners) {
      if (matches(record, listener.filter)) listener.fn(record);
    }
    return record;
  }

  /**
   * Subscribes to events. With `afterId`, first replays the kept events
   * newer than it (synchronously, before returning), so a resuming client
   * sees no gap as long as the ring still holds the events it missed.
   * Returns the function that unsubscribes.
   */
  subscribe(
    fn: EventListener,
    filter: EventFilter = {},
    afterId?: number,
  ): () => void {
    if (afterId !== undefined) {
      for (const event of this.since(afterId, filter)) fn(event);
    }
    const listener = { filter, fn };
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Kept events with an id greater than `afterId`, oldest first. */
  since(afterId: number, filter: EventFilter = {}): JobEvent[] {
    return this.#ring.filter((e) => e.id > afterId && matches(e, filter));
  }

  /** The oldest id still kept, or lastId + 1 when nothing is kept. */
  get oldestId(): number {
    return this.#ring[0]?.id ?? this.#lastId + 1;
  }
}

function matches(event: JobEvent, filter: EventFilter): boolean {
  return filter.jobId === undefined || event.job_id === filter.jobId;
}
