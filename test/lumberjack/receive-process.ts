/**
 * `lorne receive` as a child process for tests: the built binary on
 * 127.0.0.1 port 0, its log lines, and clients of it. Everything started
 * here is ended after the test file.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { after } from "node:test";

import { LumberjackClient } from "../../src/lumberjack/client.js";
import { LORNE, ROOT } from "../helpers.js";

export interface Receive {
  child: ChildProcess;
  port: number;
  /** stderr lines: the receiver's logfmt log. */
  log: string[];
  /** stdout text, for --out -. */
  stdout: () => string;
  exited: Promise<number | null>;
}

const children: ChildProcess[] = [];
const clients: LumberjackClient[] = [];

after(() => {
  for (const c of clients) c.destroy();
  for (const child of children) if (child.exitCode === null) child.kill();
});

/** Starts `lorne receive ARGS` and waits for its `at=listening` line. */
export async function receive(args: string[]): Promise<Receive> {
  const child = spawn(
    process.execPath,
    [LORNE, "receive", "--listen", "127.0.0.1:0", ...args],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  children.push(child);
  let stdout = "";
  child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  const log: string[] = [];
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stderr }).on("line", (line) => {
      log.push(line);
      const match = /fn=receiver at=listening addr=\S+:(\d+)/.exec(line);
      if (match) resolve(Number(match[1]));
    });
    void exited.then((code) =>
      reject(new Error(`lorne receive exited ${code}: ${log.join("\n")}`)),
    );
  });
  return { child, port, log, stdout: () => stdout, exited };
}

/** A client of the receiver on `port`, destroyed after the test file. */
export function client(
  port: number,
  version: 1 | 2,
  tls?: object,
): LumberjackClient {
  const c = new LumberjackClient({ host: "127.0.0.1", port, version, tls });
  clients.push(c);
  return c;
}
