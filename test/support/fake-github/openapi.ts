import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

/**
 * Validators built from GitHub's published REST description (`@octokit/openapi`, api.github.com.json),
 * for checking what the fake sends. OpenAPI 3.0 quirks are adapted for Ajv: examples and x-* keys are
 * dropped, and `null` is added to nullable enums (Ajv does not let null through such an enum otherwise).
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const require = createRequire(import.meta.url);
const SPEC_ID = 'github-rest';

function adapt(node: Json): Json {
  if (Array.isArray(node)) return node.map(adapt);
  if (node === null || typeof node !== 'object') return node;
  const out: { [key: string]: Json } = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'example' || key === 'examples' || key.startsWith('x-')) continue;
    out[key] =
      key === '$ref' && typeof value === 'string' && value.startsWith('#/')
        ? `${SPEC_ID}${value}`
        : adapt(value);
  }
  if (out.nullable === true && Array.isArray(out.enum) && !out.enum.includes(null))
    out.enum = [...out.enum, null];
  return out;
}

export interface OpenApiValidators {
  /** Validator of the JSON body GitHub documents for `method path` answering `status`; throws if undocumented. */
  response(method: string, pathTemplate: string, status: number): ValidateFunction;
  /** Validator of a webhook payload, by x-webhooks key (e.g. `workflow-job-queued`). */
  webhook(name: string): ValidateFunction;
  /** Whether the description documents that status for that operation. */
  documents(method: string, pathTemplate: string, status: number): boolean;
  /** Validator of a named component schema (e.g. `basic-error`). */
  schema(name: string): ValidateFunction;
}

let cached: OpenApiValidators | undefined;

export function loadOpenApiValidators(): OpenApiValidators {
  if (cached) return cached;
  const path = require.resolve('@octokit/openapi/generated/api.github.com.json');
  const spec = JSON.parse(readFileSync(path, 'utf8')) as {
    paths: Record<string, Record<string, { responses: Record<string, Json> }>>;
    components: { responses: Record<string, Json>; schemas: Record<string, Json> };
    'x-webhooks': Record<
      string,
      { post: { requestBody: { content: { 'application/json': { schema: Json } } } } }
    >;
  };
  const addFormats = addFormatsModule as unknown as (ajv: Ajv) => void;
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  ajv.addSchema({ $id: SPEC_ID, components: adapt(spec.components as unknown as Json) } as object);
  const compiled = new Map<string, ValidateFunction>();

  const responseObject = (method: string, pathTemplate: string, status: number): Json | undefined => {
    const operation = spec.paths[pathTemplate]?.[method.toLowerCase()];
    let response = operation?.responses[String(status)];
    if (
      response &&
      typeof response === 'object' &&
      !Array.isArray(response) &&
      typeof response.$ref === 'string'
    ) {
      response = spec.components.responses[response.$ref.split('/').pop() ?? ''];
    }
    return response;
  };

  const compile = (key: string, schema: Json): ValidateFunction => {
    let validate = compiled.get(key);
    if (!validate) {
      validate = ajv.compile(adapt(schema) as object);
      compiled.set(key, validate);
    }
    return validate;
  };

  cached = {
    documents: (method, pathTemplate, status) => responseObject(method, pathTemplate, status) !== undefined,
    response(method, pathTemplate, status) {
      const response = responseObject(method, pathTemplate, status) as
        | { content?: { 'application/json'?: { schema: Json } } }
        | undefined;
      const schema = response?.content?.['application/json']?.schema;
      if (!response || !schema)
        throw new Error(`no documented JSON body for ${method} ${pathTemplate} ${status}`);
      return compile(`${method} ${pathTemplate} ${status}`, schema);
    },
    schema(name) {
      if (!spec.components.schemas[name]) throw new Error(`no schema ${name} in the description`);
      return compile(`schema ${name}`, { $ref: `#/components/schemas/${name}` });
    },
    webhook(name) {
      const hook = spec['x-webhooks'][name];
      if (!hook) throw new Error(`no webhook ${name} in the description`);
      return compile(`webhook ${name}`, hook.post.requestBody.content['application/json'].schema);
    },
  };
  return cached;
}
