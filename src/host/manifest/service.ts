/**
 * Validates one service of a manifest and parses its templates. Every check
 * happens here, up front, so that a bad manifest stops the daemon before any
 * service starts; the first problem found is thrown as a ValidationError
 * naming the service and the field.
 */
import { dataShape } from "./data.js";
import {
  describeJson,
  fieldPath,
  manifestError,
  manifestSubject,
  serviceLabel,
  templateFieldError,
} from "./errors.js";
import type { JsonObject, JsonValue } from "./json.js";
import type { ManifestService, ManifestServiceSpec } from "./manifest.js";
import type { Template } from "./template/ast.js";
import { checkTemplate } from "./template/check.js";
import type { Shape } from "./template/check.js";
import { TemplateError } from "./template/errors.js";
import { parseTemplate } from "./template/parser.js";

const MAX_ID_LENGTH = 128;
const ID_CHARS = /^[A-Za-z0-9_.-]*$/;
const MAX_TCP_PORTS = 64;
const ID_RULE = 'only A-Z, a-z, 0-9, "_", "." and "-" are allowed';
// Ids become directory names, where "." and ".." mean something else.
const ONLY_DOTS = /^\.+$/;
const ONLY_DOTS_RULE = "ids made only of dots are not allowed";
const ENV_NAME = /^[^=\0]+$/;
const ENV_NAME_RULE = 'it must be non-empty, without "=" or NUL';
const KNOWN_FIELDS = new Set([
  "id",
  "cmd",
  "entrypoint",
  "args",
  "env",
  "tcp_ports",
  "expose_env",
  "working_dir",
  "image",
  "metadata",
]);

/** Where a service sits: its file, position and the services before it. */
export interface ServiceScope {
  readonly source: string | undefined;
  readonly index: number;
  /** Ids of the services listed earlier, with their positions. */
  readonly earlier: ReadonlyMap<string, number>;
}

/** Validates `value` as the service at `scope.index`; throws on a problem. */
export function validateService(
  value: JsonValue,
  scope: ServiceScope,
): ManifestService {
  const { source, index } = scope;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const subject = manifestSubject(source, serviceLabel(index));
    const reason = `expected an object, found ${describeJson(value)}`;
    throw manifestError(subject, undefined, reason, fieldPath(index));
  }

  const reader = new FieldReader(value, scope);
  const id = reader.id();
  reader.rejectUnknownFields();
  const { field, command, args } = reader.command();
  const env = reader.stringRecord("env", "variable");
  const exposeEnv = reader.exposeEnv(env ?? {});
  const tcpPorts = reader.tcpPorts();
  const workingDir = reader.absolutePath("working_dir");
  const image = reader.nonEmptyString("image");
  const metadata = reader.stringRecord("metadata");

  const raw: ManifestServiceSpec = {
    id,
    ...(field === "cmd" ? { cmd: command } : { entrypoint: command }),
    ...(args === undefined ? {} : { args }),
    ...(env === undefined ? {} : { env }),
    ...(reader.has("tcp_ports") ? { tcp_ports: tcpPorts } : {}),
    ...(reader.has("expose_env") ? { expose_env: exposeEnv } : {}),
    ...(workingDir === undefined ? {} : { working_dir: workingDir }),
    ...(image === undefined ? {} : { image }),
    ...(metadata === undefined ? {} : { metadata }),
  };
  return {
    id,
    index,
    source,
    argv: [
      ...command.map((text, i) => reader.template(`${field}[${i}]`, text)),
      ...(args ?? []).map((text, i) => reader.template(`args[${i}]`, text)),
    ],
    env: Object.fromEntries(
      Object.entries(env ?? {}).map(([name, text]) => [
        name,
        reader.template(`env.${name}`, text),
      ]),
    ),
    tcpPorts,
    exposeEnv,
    workingDir,
    image,
    metadata: metadata ?? {},
    raw,
  };
}

/** Reads and checks the fields of one service object. */
class FieldReader {
  private subject: string;
  private readonly shape: Shape;

  constructor(
    private readonly object: JsonObject,
    private readonly scope: ServiceScope,
  ) {
    this.subject = manifestSubject(scope.source, serviceLabel(scope.index));
    this.shape = dataShape(new Set(scope.earlier.keys()));
  }

  has(field: string): boolean {
    return Object.hasOwn(this.object, field);
  }

  /** Reads the id, and names the service by it from then on. */
  id(): string {
    if (!this.has("id")) this.fail("id", "missing required field");
    const id = this.string("id");
    if (id === "") this.fail("id", "must not be empty");
    if (id.length > MAX_ID_LENGTH) {
      const reason = `too long: ${id.length} characters, at most ${MAX_ID_LENGTH} are allowed`;
      this.fail("id", reason);
    }
    if (!ID_CHARS.test(id)) {
      const quoted = JSON.stringify(id);
      this.fail("id", `invalid id ${quoted}: ${ID_RULE}`);
    }
    if (ONLY_DOTS.test(id)) {
      const quoted = JSON.stringify(id);
      this.fail("id", `invalid id ${quoted}: ${ONLY_DOTS_RULE}`);
    }
    const first = this.scope.earlier.get(id);
    if (first !== undefined) {
      const reason = `duplicate id ${JSON.stringify(id)}, already used by services[${first}]`;
      this.fail("id", reason);
    }
    this.subject = manifestSubject(
      this.scope.source,
      serviceLabel(this.scope.index, id),
    );
    return id;
  }

  rejectUnknownFields(): void {
    const unknown = Object.keys(this.object).filter(
      (field) => !KNOWN_FIELDS.has(field),
    );
    if (unknown.length === 0) return;
    const names = unknown.map((field) => JSON.stringify(field)).join(", ");
    const plural = unknown.length > 1 ? "s" : "";
    throw manifestError(
      this.subject,
      undefined,
      `unknown field${plural} ${names}`,
      fieldPath(this.scope.index, unknown[0]),
    );
  }

  /** Reads `cmd`, or `entrypoint` and `args`: exactly one form is allowed. */
  command(): {
    field: "cmd" | "entrypoint";
    command: string[];
    args: string[] | undefined;
  } {
    const hasCmd = this.has("cmd");
    if (hasCmd === this.has("entrypoint")) {
      const found = hasCmd ? "both" : "neither";
      const reason = `fields "cmd" and "entrypoint": exactly one is required, found ${found}`;
      throw manifestError(this.subject, undefined, reason, this.path("cmd"));
    }
    if (hasCmd && this.has("args")) {
      this.fail("args", 'not allowed with "cmd", list every argument in "cmd"');
    }
    const field = hasCmd ? "cmd" : "entrypoint";
    const command = this.stringList(field) ?? [];
    if (command.length === 0) this.fail(field, "must not be empty");
    return { field, command, args: this.stringList("args") };
  }

  exposeEnv(env: Readonly<Record<string, string>>): string[] {
    const names = this.stringList("expose_env") ?? [];
    names.forEach((name, i) => {
      const field = `expose_env[${i}]`;
      this.checkVariableName(field, name);
      if (names.indexOf(name) < i) {
        this.fail(field, `duplicate name ${JSON.stringify(name)}`);
      }
      if (Object.hasOwn(env, name)) {
        this.fail(field, `${JSON.stringify(name)} is also set in "env"`);
      }
    });
    return names;
  }

  tcpPorts(): number {
    if (!this.has("tcp_ports")) return 0;
    const value = this.object.tcp_ports as JsonValue;
    const valid =
      typeof value === "number" &&
      Number.isInteger(value) &&
      value >= 0 &&
      value <= MAX_TCP_PORTS;
    if (valid) return value;
    const found = typeof value === "number" ? `${value}` : describeJson(value);
    this.fail(
      "tcp_ports",
      `expected an integer from 0 to ${MAX_TCP_PORTS}, found ${found}`,
    );
  }

  nonEmptyString(field: string): string | undefined {
    if (!this.has(field)) return undefined;
    const value = this.string(field);
    if (value === "") this.fail(field, "must not be empty");
    return value;
  }

  absolutePath(field: string): string | undefined {
    const value = this.nonEmptyString(field);
    if (value !== undefined && !value.startsWith("/")) {
      this.fail(
        field,
        `expected an absolute path, found ${JSON.stringify(value)}`,
      );
    }
    return value;
  }

  stringList(field: string): string[] | undefined {
    if (!this.has(field)) return undefined;
    const value = this.object[field] as JsonValue;
    if (!Array.isArray(value)) {
      const found = describeJson(value);
      this.fail(field, `expected an array of strings, found ${found}`);
    }
    return value.map((item, i) => this.expectString(`${field}[${i}]`, item));
  }

  /** An object of strings; `keys` = "variable" also checks env names. */
  stringRecord(
    field: string,
    keys?: "variable",
  ): Record<string, string> | undefined {
    if (!this.has(field)) return undefined;
    const value = this.object[field] as JsonValue;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      const found = describeJson(value);
      this.fail(field, `expected an object of strings, found ${found}`);
    }
    const entries = Object.entries(value).map(([key, item]) => {
      if (keys === "variable") this.checkVariableName(field, key);
      return [key, this.expectString(`${field}.${key}`, item)] as const;
    });
    return Object.fromEntries(entries);
  }

  /** Parses one template and checks it against the data it will get. */
  template(field: string, text: string): Template {
    try {
      const template = parseTemplate(text, field);
      checkTemplate(template, this.shape);
      return template;
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      throw templateFieldError(this.subject, err, this.path(field));
    }
  }

  private checkVariableName(field: string, name: string): void {
    if (ENV_NAME.test(name)) return;
    const quoted = JSON.stringify(name);
    this.fail(field, `invalid variable name ${quoted}: ${ENV_NAME_RULE}`);
  }

  private string(field: string): string {
    return this.expectString(field, this.object[field] as JsonValue);
  }

  private expectString(field: string, value: JsonValue): string {
    if (typeof value === "string") return value;
    this.fail(field, `expected a string, found ${describeJson(value)}`);
  }

  private path(field: string): string {
    return fieldPath(this.scope.index, field);
  }

  private fail(field: string, reason: string): never {
    throw manifestError(this.subject, field, reason, this.path(field));
  }
}
