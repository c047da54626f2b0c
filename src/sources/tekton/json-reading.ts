/**
 * Reading JSON an author wrote (a PipelineRun under review) without trusting its shape: every field
 * may be missing, null or of another type, and keys such as `__proto__` must never reach a prototype.
 */

export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isObjectOrAbsent(value: unknown): boolean {
  return value === undefined || value === null || isObject(value);
}

/** Kubernetes treats an absent, null and (for names) empty value alike: not set. */
export function isUnset(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

/** A field of the object itself, never one inherited (`constructor`, `__proto__`, …). */
export function own(object: JsonObject, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

/** The field at `path` through objects only; undefined where any step is missing or not an object. */
export function ownPath(object: unknown, ...path: string[]): unknown {
  let at: unknown = object;
  for (const key of path) {
    if (!isObject(at)) return undefined;
    at = own(at, key);
  }
  return at;
}

/** The entries of an array field, or none when it is absent or not an array. */
export function arrayAt(object: unknown, ...path: string[]): unknown[] {
  const value = ownPath(object, ...path);
  return Array.isArray(value) ? value : [];
}

/** The string-valued entries of a label map; the apiserver refuses any other value later. */
export function stringValues(value: unknown): Record<string, string> {
  if (!isObject(value)) return {};
  const labels: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry === 'string') labels[key] = entry;
  }
  return labels;
}

/** Keys sorted, so that equal JSON compares equal whatever order it was written in. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** A value for a message: short (warnings over 120 characters may be cut), quoted when a string. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 39)}…` : value);
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `a ${typeof value}`;
}
