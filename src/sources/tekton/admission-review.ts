import { jsonTooDeep } from '../../http/body-limits.ts';
import { describe, isObject, type JsonObject, own } from './json-reading.ts';

/**
 * The AdmissionReview envelope (admission.k8s.io/v1): reading the apiserver's request from the body
 * text and writing the answer. Whatever is wrong with a request is answered with a denial at HTTP 200,
 * never with an HTTP error: the apiserver honours a denial whatever the webhook's failurePolicy, while
 * an error under failurePolicy Ignore would let the run through unqueued and without its class's
 * settings. An author controls most of the body (their PipelineRun), so every refusal of it must be a
 * denial.
 */

export const REVIEW_API_VERSION = 'admission.k8s.io/v1';
export const REVIEW_KIND = 'AdmissionReview';

/**
 * JSON nested deeper than this is denied without being parsed. The apiserver already bounds a run's
 * size (3 MiB), but not its nesting (up to 10,000 levels in free-form fields such as a custom task's
 * spec), and the checks walk the run recursively. A PipelineRun's deepest regular field (an affinity
 * term inside an embedded Task's pod template) is under 30 levels deep, the review adds 3.
 */
export const MAX_REVIEW_DEPTH = 256;

/** What the HTTPS server sends: the status code and the JSON body. */
export interface AdmissionAnswer {
  httpStatus: number;
  body: unknown;
}

/** The operations this webhook emits (RFC 6902). */
export interface JsonPatchOperation {
  op: 'add' | 'replace' | 'remove';
  path: string;
  value?: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** Base64 of the JSON array of operations. */
  patch?: string;
  status?: { code: number; message: string };
  warnings?: string[];
}

export interface AdmissionReviewAnswer {
  apiVersion: typeof REVIEW_API_VERSION;
  kind: typeof REVIEW_KIND;
  response: AdmissionResponse;
}

export type ReadReview =
  | { ok: true; uid: string; request: JsonObject }
  /** `uid` is empty when none could be read: the apiserver then treats the answer as a failed call. */
  | { ok: false; uid: string; problem: string };

/** The review in a request body, or what is wrong with it (with its uid when one can be read). */
export function readReview(text: string, maxDepth = MAX_REVIEW_DEPTH): ReadReview {
  const problem = (message: string): ReadReview => ({
    ok: false,
    uid: scanRequestUid(text) ?? '',
    problem: message,
  });
  if (text.trim() === '') return problem('the request body is empty; an AdmissionReview was expected');
  if (jsonTooDeep(text, maxDepth)) {
    return problem(`the object nests JSON deeper than ${maxDepth} levels, which Gantry does not read`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return problem('the request body is not valid JSON; an AdmissionReview was expected');
  }
  if (!isObject(body)) return problem(`expected an AdmissionReview JSON object, got ${describe(body)}`);
  if (own(body, 'apiVersion') !== REVIEW_API_VERSION) {
    return problem(`apiVersion: expected "${REVIEW_API_VERSION}", got ${describe(own(body, 'apiVersion'))}`);
  }
  if (own(body, 'kind') !== REVIEW_KIND) {
    return problem(`kind: expected "${REVIEW_KIND}", got ${describe(own(body, 'kind'))}`);
  }
  const request = own(body, 'request');
  if (!isObject(request)) return problem(`request: expected an object, got ${describe(request)}`);
  const uid = own(request, 'uid');
  if (typeof uid !== 'string' || uid === '') {
    return problem(`request.uid: expected a non-empty string, got ${describe(uid)}`);
  }
  return { ok: true, uid, request };
}

export function allow(
  uid: string,
  operations: JsonPatchOperation[] = [],
  warnings: string[] = [],
): AdmissionAnswer {
  const response: AdmissionResponse = { uid, allowed: true };
  if (operations.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(operations)).toString('base64');
  }
  if (warnings.length > 0) response.warnings = warnings;
  return answer(response);
}

/**
 * A refusal the apiserver passes on to whoever created the run, as "admission webhook … denied the
 * request: <message>" with `code` as the HTTP status: 400 for a request Gantry cannot read, 403 for a
 * run a class forbids.
 */
export function deny(uid: string, message: string, code: 400 | 403 = 400): AdmissionAnswer {
  return answer({ uid, allowed: false, status: { code, message } });
}

function answer(response: AdmissionResponse): AdmissionAnswer {
  const body: AdmissionReviewAnswer = { apiVersion: REVIEW_API_VERSION, kind: REVIEW_KIND, response };
  return { httpStatus: 200, body };
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MAX_UID_LENGTH = 128;

/**
 * `request.uid` of a body that cannot be parsed (nested too deep, cut short), found by one pass over
 * the text that tracks only the key each open object or array sits under. The apiserver writes the
 * uid first in the request, so a denial of such a body still names the request it answers.
 */
export function scanRequestUid(text: string): string | undefined {
  /** openedUnder[d]: the key under which the container at depth d+1 was opened. */
  const openedUnder: (string | undefined)[] = [];
  let depth = 0;
  let key: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      if (end < 0) return undefined;
      let next = end + 1;
      while (next < text.length && /\s/.test(text[next] ?? '')) next++;
      if (text[next] === ':') {
        key = end - i <= MAX_UID_LENGTH + 2 ? parseString(text.slice(i, end + 1)) : undefined;
        i = next;
        continue;
      }
      if (depth === 2 && openedUnder[1] === 'request' && key === 'uid' && end - i <= MAX_UID_LENGTH + 2) {
        return parseString(text.slice(i, end + 1));
      }
      key = undefined;
      i = end;
    } else if (c === '{' || c === '[') {
      // An array under "request" is no request object: nothing inside it is its uid.
      openedUnder[depth] = c === '{' ? key : undefined;
      depth++;
      key = undefined;
    } else if (c === '}' || c === ']') {
      depth--;
      key = undefined;
    } else if (c === ',') {
      key = undefined;
    }
  }
  return undefined;
}

/** The index of the quote that closes the string opening at `start`, or -1 when it never closes. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) i++;
    else if (c === QUOTE) return i;
  }
  return -1;
}

function parseString(literal: string): string | undefined {
  try {
    const value: unknown = JSON.parse(literal);
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}
