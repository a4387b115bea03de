/**
 * The host's boot manifest: parsing and validating it, and rendering each
 * service's templates (a subset of Go's text/template) when it starts.
 * See docs/manifest.md.
 */
export { parseManifest } from "./manifest.js";
export type { ManifestService, ManifestServiceSpec } from "./manifest.js";
export { renderService, serviceData } from "./render.js";
export type { RenderContext, RenderedService } from "./render.js";
export type { ServiceData } from "./data.js";
export { parseTemplate } from "./template/parser.js";
export { renderTemplate } from "./template/eval.js";
export type { Template } from "./template/ast.js";
export { checkTemplate } from "./template/check.js";
export type { Shape } from "./template/check.js";
export { TemplateError } from "./template/errors.js";
export { TemplateMap } from "./template/values.js";
export type {
  TemplateMethod,
  TemplateStruct,
  TemplateValue,
} from "./template/values.js";
