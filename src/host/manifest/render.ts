/**
 * Renders a validated manifest service into what a backend runs: argv, env,
 * ports and the plain fields. Templates render in a fixed order, argv first
 * and then env in manifest order, so `.TCPPort` allocates ports in an order
 * the manifest's author can read off the file.
 */
import { templateData } from "./data.js";
import type { ServiceData } from "./data.js";
import {
  fieldPath,
  manifestError,
  manifestSubject,
  serviceLabel,
  templateFieldError,
} from "./errors.js";
import type { ManifestService } from "./manifest.js";
import type { Template } from "./template/ast.js";
import { TemplateError } from "./template/errors.js";
import { renderTemplate } from "./template/eval.js";
import type { TemplateStruct } from "./template/values.js";

/** What the daemon knows when it starts a service. */
export interface RenderContext {
  externalIP: string;
  internalIP: string;
  /** The daemon's own environment, `.Env`. */
  env: Record<string, string>;
  /** The services started earlier, by id, `.Services`. */
  services: Record<string, ServiceData>;
  /** This service's ports, allocated already (its `tcp_ports`). */
  ports: number[];
  /** Allocates one more port for `.TCPPort n`; may throw. */
  allocatePort(): number;
}

/** A service ready to run. */
export interface RenderedService {
  id: string;
  /** The rendered argv, without the arguments that rendered blank. */
  argv: string[];
  /** Rendered `env` values, then the `expose_env` variables that exist. */
  env: Record<string, string>;
  /** `ctx.ports`, then any ports `.TCPPort` allocated, in order. */
  ports: number[];
  workingDir?: string;
  image?: string;
  metadata: Record<string, string>;
}

/**
 * Renders `service`. An argument that renders blank (empty or whitespace)
 * is dropped, so `{{ if ... }}--flag{{ end }}` adds a flag conditionally;
 * an env value is kept even when empty. Throws a ValidationError naming the
 * service and field, with the template error as its cause; `ctx.ports` is
 * not modified.
 */
export function renderService(
  service: ManifestService,
  ctx: RenderContext,
): RenderedService {
  const ports = [...ctx.ports];
  const data = templateData({
    ...ctx,
    ports,
    allocatePort: () => ctx.allocatePort(),
  });
  const render = (template: Template): string =>
    renderOne(service, template, data);

  const argv = service.argv.map(render).filter((arg) => arg.trim() !== "");
  if (argv.length === 0) {
    const field = service.raw.cmd === undefined ? "entrypoint" : "cmd";
    fail(service, field, "the command is empty after rendering");
  }
  const entries: [string, string][] = Object.entries(service.env).map(
    ([name, template]) => [name, render(template)],
  );
  for (const name of service.exposeEnv) {
    const value = ctx.env[name];
    if (Object.hasOwn(ctx.env, name) && value !== undefined) {
      entries.push([name, value]);
    }
  }
  const env = Object.fromEntries(entries);

  return {
    id: service.id,
    argv,
    env,
    ports,
    ...(service.workingDir === undefined
      ? {}
      : { workingDir: service.workingDir }),
    ...(service.image === undefined ? {} : { image: service.image }),
    metadata: { ...service.metadata },
  };
}

/** What later services see of a rendered one, as `.Services.<id>`. */
export function serviceData(
  rendered: RenderedService,
  externalIP: string,
  internalIP: string,
): ServiceData {
  return {
    ExternalIP: externalIP,
    InternalIP: internalIP,
    TCPPorts: [...rendered.ports],
    Env: { ...rendered.env },
  };
}

function renderOne(
  service: ManifestService,
  template: Template,
  data: TemplateStruct,
): string {
  const field = template.name ?? "template";
  let text: string;
  try {
    text = renderTemplate(template, data);
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    throw templateFieldError(
      subject(service),
      err,
      fieldPath(service.index, field),
    );
  }
  if (text.includes("\0")) {
    fail(service, field, "the rendered value contains a NUL character");
  }
  return text;
}

function fail(service: ManifestService, field: string, reason: string): never {
  const path = fieldPath(service.index, field);
  throw manifestError(subject(service), field, reason, path);
}

function subject(service: ManifestService): string {
  return manifestSubject(
    service.source,
    serviceLabel(service.index, service.id),
  );
}
