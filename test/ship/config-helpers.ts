/**
 * Shared by the `lorne ship` config tests: a small valid config to vary
 * key by key, and helpers that catch the ValidationError a bad config
 * must throw.
 */
import assert from "node:assert/strict";

import { ValidationError } from "../../src/errors.js";
import { loadShipConfig, parseShipConfig } from "../../src/ship/config.js";

export type Obj = Record<string, unknown>;

/** The one server of config(). */
export const SERVER = { addr: "127.0.0.1:5043" };

/** A valid network section with `extra` merged in. */
export function net(extra: Obj = {}): Obj {
  return { servers: [SERVER], ...extra };
}

/** A valid files[] entry with `extra` merged in. */
export function group(extra: Obj = {}): Obj {
  return { paths: ["*.log"], ...extra };
}

/** A small valid config with `extra` merged in at the top. */
export function config(extra: Obj = {}): Obj {
  return { state: "state.db", network: net(), files: [group()], ...extra };
}

/** A copy of `object` without `key`. */
export function without(object: Obj, key: string): Obj {
  const copy = { ...object };
  delete copy[key];
  return copy;
}

/** The ValidationError parseShipConfig throws for `value`. */
export function parseError(value: unknown, baseDir: string): ValidationError {
  try {
    parseShipConfig(value, baseDir);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    assert.equal(err.code, "validation_error");
    return err;
  }
  assert.fail("the config was accepted");
}

/** The ValidationError loadShipConfig rejects with for the file `path`. */
export async function loadError(path: string): Promise<ValidationError> {
  try {
    await loadShipConfig(path);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    assert.equal(err.code, "validation_error");
    return err;
  }
  assert.fail("the config was accepted");
}
