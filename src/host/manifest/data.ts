/**
 * What a service's templates see as dot: its addresses, ports, the daemon's
 * environment and the services started before it. The same description
 * exists twice, as a Shape to check templates when the manifest is parsed,
 * and as values to render them when the service starts; keep them in step.
 */
import type { Shape } from "./template/check.js";
import { TemplateMap, describeValue } from "./template/values.js";
import type { TemplateStruct, TemplateValue } from "./template/values.js";

/** What a later service's templates see of a started one, `.Services.<id>`. */
export interface ServiceData {
  ExternalIP: string;
  InternalIP: string;
  TCPPorts: number[];
  /** The job's environment after rendering. */
  Env: Record<string, string>;
}

/** The inputs of one service's template data. */
export interface DataInput {
  readonly externalIP: string;
  readonly internalIP: string;
  readonly env: Readonly<Record<string, string>>;
  readonly services: Readonly<Record<string, ServiceData>>;
  /** This service's ports; `.TCPPort` appends the ones it allocates. */
  readonly ports: number[];
  allocatePort(): number;
}

const STRING_MAP: Shape = { kind: "map", value: { kind: "string" } };
const SERVICE_SHAPE: Shape = {
  kind: "struct",
  fields: {
    ExternalIP: { kind: "string" },
    InternalIP: { kind: "string" },
    TCPPorts: { kind: "array" },
    Env: STRING_MAP,
  },
};

/** The shape of dot for a service listed after the services `earlier`. */
export function dataShape(earlier: ReadonlySet<string>): Shape {
  return {
    kind: "struct",
    fields: {
      ExternalIP: { kind: "string" },
      InternalIP: { kind: "string" },
      TCPPorts: { kind: "array" },
      TCPPort: { kind: "method", arity: 1, result: { kind: "number" } },
      Env: STRING_MAP,
      Services: {
        kind: "map",
        value: SERVICE_SHAPE,
        keys: earlier,
        missingKey: (id) =>
          `unknown service ${JSON.stringify(id)}: only services listed before this one can be used`,
      },
    },
  };
}

/**
 * Dot for one service. `.TCPPorts` reads the ports live, so it includes
 * those allocated by `.TCPPort` earlier in the same service.
 */
export function templateData(input: DataInput): TemplateStruct {
  const { ports } = input;
  const services = Object.entries(input.services).map(
    ([id, data]): [string, TemplateValue] => [id, serviceStruct(data)],
  );
  return {
    ExternalIP: input.externalIP,
    InternalIP: input.internalIP,
    get TCPPorts(): TemplateValue {
      return [...ports];
    },
    TCPPort: (n: TemplateValue): TemplateValue => tcpPort(input, n),
    Env: TemplateMap.ofStrings(input.env),
    Services: new TemplateMap(services),
  };
}

/**
 * `.TCPPort n`: port n of this service. Asking for the next port after the
 * last one allocates it; skipping ahead is an error rather than a silent
 * allocation of the ports in between.
 */
function tcpPort(input: DataInput, n: TemplateValue): number {
  const { ports } = input;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0) {
    const found = typeof n === "number" ? `${n}` : describeValue(n);
    throw new Error(
      `port index must be a non-negative integer, found ${found}`,
    );
  }
  const port = ports[n];
  if (port !== undefined) return port;
  if (n > ports.length) {
    throw new Error(`cannot allocate port ${n} before port ${ports.length}`);
  }
  const allocated = input.allocatePort();
  ports.push(allocated);
  return allocated;
}

function serviceStruct(data: ServiceData): TemplateStruct {
  return {
    ExternalIP: data.ExternalIP,
    InternalIP: data.InternalIP,
    TCPPorts: [...data.TCPPorts],
    Env: TemplateMap.ofStrings(data.Env),
  };
}
