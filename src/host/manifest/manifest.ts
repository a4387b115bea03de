/**
 * The boot manifest: a JSON array of services that the daemon starts in
 * order when it boots. Parsing validates the whole manifest, templates
 * included, before returning anything; see docs/manifest.md for the format.
 */
import { describeJson, manifestError, manifestSubject } from "./errors.js";
import { JsonSyntaxError, parseJson } from "./json.js";
import type { JsonValue } from "./json.js";
import { validateService } from "./service.js";
import type { Template } from "./template/ast.js";

/** A service's fields as written in the manifest, after validation. */
export interface ManifestServiceSpec {
  readonly id: string;
  readonly cmd?: readonly string[];
  readonly entrypoint?: readonly string[];
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly tcp_ports?: number;
  readonly expose_env?: readonly string[];
  readonly working_dir?: string;
  readonly image?: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

/** One validated service, with its templates parsed and defaults applied. */
export interface ManifestService {
  readonly id: string;
  /** The service's position in the manifest, from 0. */
  readonly index: number;
  /** The manifest's file name, used in error messages, if known. */
  readonly source: string | undefined;
  /** `cmd`, or `entrypoint` followed by `args`; each one a template. */
  readonly argv: readonly Template[];
  /** The `env` values as templates, in manifest order. */
  readonly env: Readonly<Record<string, Template>>;
  /** Ports to allocate before rendering (`tcp_ports`, default 0). */
  readonly tcpPorts: number;
  /** Daemon variables copied into the job's env (default none). */
  readonly exposeEnv: readonly string[];
  readonly workingDir: string | undefined;
  readonly image: string | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  readonly raw: ManifestServiceSpec;
}

/**
 * Parses and validates a manifest. `source`, the file name, goes into error
 * messages. Throws a ValidationError naming the file, the service (by id, or
 * as `services[3]`) and the field, with the line and column for bad JSON and
 * bad templates.
 */
export function parseManifest(
  text: string,
  source?: string,
): ManifestService[] {
  const subject = manifestSubject(source);
  let document: JsonValue;
  try {
    document = parseJson(text);
  } catch (err) {
    if (!(err instanceof JsonSyntaxError)) throw err;
    const { line, col } = err.position;
    const reason = `invalid JSON at ${line}:${col}: ${err.reason}`;
    throw manifestError(subject, undefined, reason, undefined, err);
  }
  if (!Array.isArray(document)) {
    const found = describeJson(document);
    const reason = `expected an array of services, found ${found}`;
    throw manifestError(subject, undefined, reason);
  }

  const earlier = new Map<string, number>();
  return document.map((value, index) => {
    const service = validateService(value, { source, index, earlier });
    earlier.set(service.id, index);
    return service;
  });
}
