import type { FastifyInstance } from 'fastify';

/** Every route that takes a body is capped at this unless it sets its own (the webhook route does). */
export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024;
/**
 * JSON nested deeper than this is refused before it is parsed: deep nesting costs stack and time in
 * JSON.parse and in every later walk over the result. GitHub's webhook examples nest at most 7 levels.
 */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * Whether the JSON text nests objects and arrays deeper than maxDepth. One pass over the text,
 * counting brackets outside strings; malformed text is left for JSON.parse to refuse.
 */
export function jsonTooDeep(text: string, maxDepth = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

export function jsonDepthMessage(maxDepth = MAX_JSON_DEPTH): string {
  return `JSON body is nested deeper than ${maxDepth} levels`;
}

/**
 * Replaces the JSON parser of a Fastify instance (or scope) with one that refuses deep nesting with
 * 400 and otherwise parses as Fastify does (secure-json-parse: __proto__ and constructor.prototype
 * keys are refused).
 */
export function useDepthLimitedJsonParser(app: FastifyInstance, maxDepth = MAX_JSON_DEPTH): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (jsonTooDeep(text, maxDepth)) {
      done(Object.assign(new Error(jsonDepthMessage(maxDepth)), { statusCode: 400 }), undefined);
      return;
    }
    parse(request, text, done);
  });
}
