/**
 * The shim's two exchanges with the daemon that started it, on its stdin
 * and stdout: one spec line in, one answer line out. Everything after
 * goes over the job's control socket (protocol.ts).
 */
import type { ShimReply } from "./spec.js";

// A daemon killed before it read the answer is no reason to stop: the
// job runs on, and the next daemon takes it over through the socket.
export function reply(answer: ShimReply): Promise<void> {
  return new Promise((resolve) => {
    process.stdout.on("error", () => resolve());
    process.stdout.write(`${JSON.stringify(answer)}\n`, () => {
      process.stdout.end();
      resolve();
    });
  });
}

// The first line of a stream, or null at end of stream before any.
export function readLine(
  stream: NodeJS.ReadableStream,
  maxBytes: number,
): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const onData = (chunk: Buffer) => {
      const newline = chunk.indexOf(10);
      if (newline >= 0) {
        chunks.push(chunk.subarray(0, newline));
        cleanup();
        resolve(Buffer.concat(chunks).toString("utf8"));
        return;
      }
      chunks.push(chunk);
      bytes += chunk.length;
      if (bytes > maxBytes) {
        cleanup();
        reject(new Error(`Invalid shim spec: longer than ${maxBytes} bytes`));
      }
    };
    const onEnd = () => {
      cleanup();
      resolve(null);
    };
    const cleanup = () => {
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("error", onEnd);
    };
    stream.on("data", onData);
    stream.on("end", onEnd);
    stream.on("error", onEnd);
  });
}
