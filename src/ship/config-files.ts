/**
 * The `files` section of a `lorne ship` config: groups of globs to tail,
 * with the fields their events carry. Globs stay text (made absolute);
 * expanding them is the pipeline's job, on every glob refresh.
 */
import type { ShipFileGroup } from "./config.js";

import { ValidationError } from "../errors.js";
import {
  arrayAt,
  booleanAt,
  invalid,
  itemPath,
  keyPath,
  member,
  missing,
  objectAt,
  oneOf,
  pathAt,
} from "./config-values.js";

const FILE_KEYS = [
  "paths",
  "fields",
  "exclude",
  "read_from",
  "include_file_fields",
] as const;
const READ_FROM = ["beginning", "end"] as const;

/** Fields every event carries, and why each one is taken. */
const RESERVED_FIELDS: Readonly<Record<string, string>> = {
  line: "every event carries its line",
  host: "every event carries the shipping host",
};
/** Fields taken when include_file_fields is true. */
const FILE_FIELDS = ["file", "offset"];

/** Checks the `files` array: at least one group, each with a glob. */
export function parseFileGroups(
  value: unknown,
  baseDir: string,
): ShipFileGroup[] {
  if (value === undefined) missing("files");
  const list = arrayAt(value, "files", "an array of file groups");
  if (list.length === 0) {
    throw new ValidationError(
      "Invalid files: expected at least one file group, found none",
      "files",
    );
  }
  return list.map((item, index) =>
    parseFileGroup(item, itemPath("files", index), baseDir),
  );
}

function parseFileGroup(
  value: unknown,
  path: string,
  baseDir: string,
): ShipFileGroup {
  const group = objectAt(value, path, FILE_KEYS);

  const pathsValue = member(group, "paths");
  if (pathsValue === undefined) missing(keyPath(path, "paths"));
  const paths = parseGlobs(pathsValue, keyPath(path, "paths"), baseDir);
  if (paths.length === 0) {
    throw new ValidationError(
      `Invalid ${keyPath(path, "paths")}: expected at least one glob, ` +
        "found none",
      keyPath(path, "paths"),
    );
  }
  const excludeValue = member(group, "exclude");
  const exclude =
    excludeValue === undefined
      ? []
      : parseGlobs(excludeValue, keyPath(path, "exclude"), baseDir);

  const includeValue = member(group, "include_file_fields");
  const includeFileFields =
    includeValue === undefined
      ? false
      : booleanAt(includeValue, keyPath(path, "include_file_fields"));
  const fieldsValue = member(group, "fields");
  const fields =
    fieldsValue === undefined
      ? {}
      : parseFields(fieldsValue, path, includeFileFields);

  const readFromValue = member(group, "read_from");
  const readFrom =
    readFromValue === undefined
      ? "beginning"
      : oneOf(readFromValue, keyPath(path, "read_from"), READ_FROM);
  return { paths, exclude, fields, readFrom, includeFileFields };
}

function parseGlobs(value: unknown, field: string, baseDir: string): string[] {
  const list = arrayAt(value, field, "an array of globs");
  return list.map((glob, index) =>
    pathAt(glob, itemPath(field, index), baseDir, "a non-empty glob"),
  );
}

function parseFields(
  value: unknown,
  groupPath: string,
  includeFileFields: boolean,
): Record<string, string> {
  const parent = keyPath(groupPath, "fields");
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(parent, value, "an object of string fields");
  }
  const entries = Object.entries(value).map(([name, text]) => {
    const field = keyPath(parent, name);
    if (name === "") {
      throw new ValidationError(
        `Invalid ${field}: a field name must not be empty`,
        field,
      );
    }
    const why = Object.hasOwn(RESERVED_FIELDS, name)
      ? RESERVED_FIELDS[name]
      : includeFileFields && FILE_FIELDS.includes(name)
        ? `${keyPath(groupPath, "include_file_fields")} is true`
        : undefined;
    if (why !== undefined) {
      throw new ValidationError(
        `Invalid ${field}: the field name "${name}" is reserved (${why})`,
        field,
      );
    }
    if (typeof text !== "string") throw invalid(field, text, "a string");
    return [name, text] as const;
  });
  // fromEntries defines own properties: a "__proto__" field stays data.
  return Object.fromEntries(entries);
}
