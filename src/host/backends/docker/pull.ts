/**
 * Pulls an image with a deadline, logging progress as the engine reports
 * it: one line each time a layer changes step (not every byte count), and
 * a timer around the whole pull. Concurrent pulls of one image share one
 * request.
 */
import type Docker from "dockerode";

import { errorMessage, UnavailableError } from "../../../errors.js";
import type { Context } from "../../../log/index.js";
import { DEFAULT_PULL_TIMEOUT_MS } from "./defaults.js";

interface ProgressEvent {
  id?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/** Pulls images, sharing in-flight pulls of the same reference. */
export class ImagePuller {
  readonly #docker: Docker;
  readonly #timeoutMs: number;
  readonly #inFlight = new Map<string, Promise<void>>();

  constructor(docker: Docker, timeoutMs = DEFAULT_PULL_TIMEOUT_MS) {
    this.#docker = docker;
    this.#timeoutMs = timeoutMs;
  }

  /** Resolves once `image` is present; rejects with the engine's text. */
  pull(image: string, log: Context): Promise<void> {
    let pending = this.#inFlight.get(image);
    if (!pending) {
      pending = this.#pull(image, log).finally(() =>
        this.#inFlight.delete(image),
      );
      this.#inFlight.set(image, pending);
    }
    return pending;
  }

  async #pull(image: string, log: Context): Promise<void> {
    const timer = log.timer({ fn: "pull", image });
    const steps = new Map<string, string>();
    let stream: NodeJS.ReadableStream | undefined;
    let deadline: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        deadline = setTimeout(() => {
          reject(
            new UnavailableError(
              `Cannot pull image "${image}": timed out after ${this.#timeoutMs} ms`,
            ),
          );
          (stream as { destroy?: () => void } | undefined)?.destroy?.();
        }, this.#timeoutMs);

        const onProgress = (event: ProgressEvent) => {
          const failure = event.errorDetail?.message ?? event.error;
          if (failure) return reject(pullError(image, failure));
          if (!event.id || !event.status) return;
          if (steps.get(event.id) === event.status) return;
          steps.set(event.id, event.status);
          log.log({ at: "pull", image, layer: event.id, step: event.status });
        };
        this.#docker.pull(
          image,
          {},
          (err: unknown, s?: NodeJS.ReadableStream) => {
            if (err || !s) return reject(pullError(image, engineMessage(err)));
            stream = s;
            this.#docker.modem.followProgress(
              s,
              (done: unknown) => {
                if (done) reject(pullError(image, engineMessage(done)));
                else resolve();
              },
              onProgress,
            );
          },
        );
      });
      timer.finish();
    } catch (err) {
      log.log({ fn: "pull", at: "error", image, err: errorMessage(err) });
      throw err;
    } finally {
      clearTimeout(deadline);
    }
  }
}

function pullError(image: string, reason: string): UnavailableError {
  return new UnavailableError(`Cannot pull image "${image}": ${reason}`);
}

/**
 * The engine's own message for a failed call: dockerode puts the JSON body
 * in `json.message` and a generic "(HTTP code N) ..." text in `message`.
 */
export function engineMessage(err: unknown): string {
  const json = (err as { json?: unknown } | null)?.json;
  if (typeof json === "object" && json !== null) {
    const message = (json as { message?: unknown }).message;
    if (typeof message === "string") return message.trim();
  }
  if (typeof json === "string" && json.trim() !== "") return json.trim();
  // Drop dockerode's "(HTTP code 500) server error - " framing.
  return errorMessage(err)
    .replace(/^\(HTTP code \d+\) [^-]*- /, "")
    .trim();
}
