/**
 * A strict RFC 6902 applier for tests (add, remove, replace, test): it throws where the apiserver would
 * refuse a patch (a missing parent, replacing or removing what is not there, an index out of range),
 * so a test that applies a webhook's patch also checks that the patch is valid. The input is not changed.
 */

export interface PatchOperation {
  op: string;
  path: string;
  value?: unknown;
}

type Container = Record<string, unknown> | unknown[];

export function applyJsonPatch<T>(document: T, operations: readonly PatchOperation[]): T {
  let result: unknown = structuredClone(document);
  for (const operation of operations) {
    const tokens = parsePointer(operation.path);
    const last = tokens.at(-1);
    if (last === undefined) {
      if (operation.op === 'add' || operation.op === 'replace') result = structuredClone(operation.value);
      else throw new Error(`${operation.op} of the whole document is not supported`);
      continue;
    }
    const parent = resolve(result, tokens.slice(0, -1), operation.path);
    applyTo(parent, last, operation);
  }
  return result as T;
}

/** The value at a JSON pointer, or undefined when there is none. */
export function valueAt(document: unknown, pointer: string): unknown {
  let current = document;
  for (const token of parsePointer(pointer)) {
    if (Array.isArray(current) && /^(0|[1-9]\d*)$/.test(token)) current = current[Number(token)];
    else if (isObject(current) && Object.hasOwn(current, token)) current = current[token];
    else return undefined;
  }
  return current;
}

export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`not a JSON pointer: ${pointer}`);
  return pointer
    .slice(1)
    .split('/')
    .map((token) => {
      if (/~[^01]|~$/.test(token)) throw new Error(`bad escape in JSON pointer: ${pointer}`);
      return token.replaceAll('~1', '/').replaceAll('~0', '~');
    });
}

function applyTo(parent: Container, key: string, operation: PatchOperation): void {
  const value = structuredClone(operation.value);
  if (Array.isArray(parent)) {
    const end = key === '-' && operation.op === 'add';
    const index = end ? parent.length : arrayIndex(key, operation.path);
    const limit = operation.op === 'add' ? parent.length : parent.length - 1;
    if (index > limit) throw new Error(`index out of range: ${operation.path}`);
    switch (operation.op) {
      case 'add':
        parent.splice(index, 0, value);
        return;
      case 'replace':
        parent[index] = value;
        return;
      case 'remove':
        parent.splice(index, 1);
        return;
      case 'test':
        if (JSON.stringify(parent[index]) !== JSON.stringify(operation.value)) {
          throw new Error(`test failed: ${operation.path}`);
        }
        return;
    }
  } else {
    const exists = Object.hasOwn(parent, key);
    if (operation.op !== 'add' && !exists) throw new Error(`no value at ${operation.path}`);
    switch (operation.op) {
      case 'add':
      case 'replace':
        parent[key] = value;
        return;
      case 'remove':
        delete parent[key];
        return;
      case 'test':
        if (JSON.stringify(parent[key]) !== JSON.stringify(operation.value)) {
          throw new Error(`test failed: ${operation.path}`);
        }
        return;
    }
  }
  throw new Error(`unsupported op ${operation.op}`);
}

function resolve(document: unknown, tokens: string[], path: string): Container {
  let current = document;
  for (const token of tokens) {
    if (Array.isArray(current)) current = current[arrayIndex(token, path)];
    else if (isObject(current) && Object.hasOwn(current, token)) current = current[token];
    else throw new Error(`missing parent for ${path}`);
  }
  if (!Array.isArray(current) && !isObject(current)) throw new Error(`parent is not a container: ${path}`);
  return current;
}

function arrayIndex(token: string, path: string): number {
  if (!/^(0|[1-9]\d*)$/.test(token)) throw new Error(`bad array index in ${path}`);
  return Number(token);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
