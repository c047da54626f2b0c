import { type Logger, pino } from 'pino';

/**
 * Where credentials could sit in a log line: request headers, GitHub tokens, JIT configs, keys and
 * secrets, as fields of any logged object (one level down, or under `err`). Call sites log no
 * credential today; this keeps a future `log.x({ err })` of a raw client error from leaking one.
 */
const REDACTED_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'token',
  '*.token',
  'encodedJitConfig',
  '*.encodedJitConfig',
  'encoded_jit_config',
  '*.encoded_jit_config',
  'jitConfig',
  '*.jitConfig',
  'privateKey',
  '*.privateKey',
  'secret',
  '*.secret',
  'password',
  '*.password',
];

/**
 * An error as a log field: its class, message, status and stack, nothing else. Client errors carry
 * their request and response (headers included); pino's default serializer would log every
 * enumerable property, the `cause` chain too.
 */
export function serializeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  const fields: Record<string, unknown> = { type: err.name, message: err.message };
  // GitHub errors carry `status`, Kubernetes client errors the HTTP status as `code`.
  const { status, code } = err as { status?: unknown; code?: unknown };
  if (typeof status === 'number') fields.status = status;
  else if (typeof code === 'number') fields.status = code;
  if (err.stack) fields.stack = err.stack;
  return fields;
}

/** Gantry's logger: JSON lines, with credentials redacted and errors reduced to what helps. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: { err: serializeError },
  };
  return destination ? pino(options, destination) : pino(options);
}
