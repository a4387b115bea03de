/**
 * The host's event log: every job transition becomes an event with a
 * sequence number. Subscribers get events as they happen; a bounded ring of
 * recent events lets a client resume after the last id it saw.
 *
 * Events are numbered and kept by the host store, so the numbers go on
 * after a restart and a client resumes across it as long as the store
 * still keeps the events it missed. Numbers count within one log (`logId`):
 * a new state file, or each start with a memory store, begins another. The ring is loaded from the store at
 * construction and mirrors its newest events; fan-out is memory only.
 */
import type { JobRecord } from "./job.js";
import { HostStore } from "./store.js";

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
  /** Where events are numbered and kept; default a memory store. */
  store?: HostStore;
}

/** In-memory event log with fan-out; see the module comment. */
export class EventLog {
  readonly #history: number;
  readonly #store: HostStore;
  readonly #ring: JobEvent[];
  readonly #listeners = new Set<{ filter: EventFilter; fn: EventListener }>();
  #lastId: number;
  /** Which log the numbers count in (HostStore.eventLogId). */
  readonly logId: string;

  constructor(options: EventLogOptions = {}) {
    this.#history = options.history ?? DEFAULT_EVENT_HISTORY;
    this.#store = options.store ?? HostStore.memory();
    this.#ring = this.#store.events(this.#history);
    this.#lastId = this.#store.lastEventId();
    this.logId = this.#store.eventLogId();
  }

  /** The id of the newest event, 0 before the first. */
  get lastId(): number {
    return this.#lastId;
  }

  /**
   * Records an event and hands it to every matching subscriber. Throws
   * (having told nobody) when the store cannot save it.
   */
  emit(event: JobEventType, job: JobRecord): JobEvent {
    return this.publish(this.append(event, job));
  }

  /**
   * Saves an event in the store and returns it, without telling anyone:
   * the first half of `emit`, for a caller that saves other state in the
   * same transaction and publishes once all of it is stored.
   */
  append(event: JobEventType, job: JobRecord): JobEvent {
    return this.#store.addEvent(event, structuredClone(job), this.#history);
  }

  /** Keeps a stored event for resuming and hands it to subscribers. */
  publish(record: JobEvent): JobEvent {
    this.#lastId = record.id;
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
