import type { Logger } from 'pino';
import { backoffDelayMs } from '../../util/retry.ts';
import { CALL_RETRIES, doublingDelayMs } from '../../util/schedules.ts';
import type { GithubClient } from '../github/client.ts';
import type { Clock } from '../github/clock.ts';
import { GithubApiError } from '../github/errors.ts';
import type { ScaleSetMetrics } from './metrics.ts';
import { jwtExpiry, readServiceError } from './wire.ts';

/**
 * The client side of GitHub's Actions service, as runner scale sets use it. Bootstrap: a registration
 * token from the REST API (the App's installation token or the PAT), traded at
 * `POST /actions/runner-registration` for the service's URL and an admin token, which is renewed
 * ahead of the expiry its own claims state. Every call has a timeout; idempotent ones are retried,
 * boundedly, after no answer, a 5xx or a 429.
 */

/** Every Actions service call names the API version it speaks (query and Accept header). */
export const API_VERSION = '6.0-preview';

/** A refusal or failure of the Actions service, with the service's exception name when it gave one. */
export class ActionsServiceError extends Error {
  override name = 'ActionsServiceError';
  readonly operation: string;
  /** HTTP status; 0 when there was no answer (network error, timeout). */
  readonly status: number;
  /** The service's exception type, e.g. RunnerScaleSetSessionConflictException; '' when none. */
  readonly exception: string;

  constructor(operation: string, status: number, exception: string, message: string) {
    super(
      `Actions service ${operation} failed${status ? ` with ${status}` : ''}${exception ? ` (${exception})` : ''}: ${message}`,
    );
    this.operation = operation;
    this.status = status;
    this.exception = exception;
  }
}

export function isServiceError(err: unknown, status: number, exception?: string): err is ActionsServiceError {
  return (
    err instanceof ActionsServiceError &&
    err.status === status &&
    (exception === undefined || err.exception.includes(exception))
  );
}

/** No answer, a 5xx or a 429: asking again later may work. */
export function isTransient(err: unknown): boolean {
  if (err instanceof ActionsServiceError) return err.status === 0 || err.status >= 500 || err.status === 429;
  if (err instanceof GithubApiError) return err.status === 0 || err.status >= 500 || err.status === 429;
  return false;
}

export interface AdminConnection {
  /** The service's base URL (ends with a slash). */
  url: string;
  token: string;
  /** Epoch ms, from the token's `exp` claim. */
  expiresAtMs: number;
}

export interface ActionsServiceOptions {
  /** REST access (installation token or PAT) for the registration token. */
  github: GithubClient;
  /** The organisation the scale sets belong to. */
  org: string;
  /** What registration names: https://github.com/ORG (or https://HOST/ORG). */
  configUrl: string;
  clock: Clock;
  logger: Logger;
  metrics: ScaleSetMetrics;
  /** Timeout of one request (long polls give their own). */
  timeoutMs: number;
  maxRetries: number;
  /** Renew the admin token this long before its expiry. */
  refreshMarginMs: number;
}

export interface ServiceRequest {
  /** Low-cardinality name for metrics and logs, e.g. `create_session`. */
  operation: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Relative to the service's URL (`_apis/...`), or absolute (the message queue's URL). */
  path: string;
  /** The admin token (default), or a session's message-queue token. */
  bearer?: string;
  body?: unknown;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  /** Safe to send again after no answer or a 5xx. */
  idempotent: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ServiceResponse {
  status: number;
  body: unknown;
}

export type ActionsService = ReturnType<typeof createActionsService>;

export function createActionsService(options: ActionsServiceOptions) {
  const { github, clock, metrics } = options;
  const log = options.logger.child({ component: 'actions-service' });
  let admin: AdminConnection | null = null;
  let pending: Promise<AdminConnection> | null = null;

  async function registrationToken(): Promise<string> {
    const { data } = await github.call(
      { operation: 'create_registration_token', idempotent: true },
      (extras) =>
        github.octokit.request('POST /orgs/{org}/actions/runners/registration-token', {
          org: options.org,
          ...extras,
        }),
    );
    return data.token;
  }

  async function register(): Promise<AdminConnection> {
    const token = await registrationToken();
    for (let attempt = 0; ; attempt++) {
      try {
        const { data } = await github.call(
          {
            operation: 'runner_registration',
            idempotent: true,
            authorization: `RemoteAuth ${token}`,
            observeQuota: false,
          },
          // `url` is octokit's own option (the request's URL): the body goes in as `data`.
          (extras) =>
            github.octokit.request({
              method: 'POST',
              url: '/actions/runner-registration',
              data: { url: options.configUrl, runner_event: 'register' },
              ...extras,
            }) as Promise<{ status: number; headers: Record<string, string>; data: unknown }>,
        );
        const body = (data ?? {}) as { url?: unknown; token?: unknown };
        if (typeof body.url !== 'string' || typeof body.token !== 'string' || !body.token) {
          throw new ActionsServiceError('runner_registration', 200, '', 'the answer has no url and token');
        }
        const url = new URL(body.url).href;
        const expiresAtMs = jwtExpiry(body.token) ?? clock.now() + 60 * 60_000;
        log.info(
          { service: new URL(url).origin, expiresAt: new Date(expiresAtMs).toISOString() },
          'Actions service token obtained',
        );
        return { url: url.endsWith('/') ? url : `${url}/`, token: body.token, expiresAtMs };
      } catch (err) {
        const status = err instanceof GithubApiError ? err.status : -1;
        const { actionsRegistration } = CALL_RETRIES;
        if ((status !== 401 && status !== 403) || attempt + 1 >= actionsRegistration.attempts) throw err;
        await clock.sleep(doublingDelayMs(actionsRegistration, attempt));
      }
    }
  }

  /** The admin connection, renewed when its token is within the margin of its expiry. */
  function connection(): Promise<AdminConnection> {
    if (admin && clock.now() < admin.expiresAtMs - options.refreshMarginMs) return Promise.resolve(admin);
    pending ??= register()
      .then((fresh) => {
        admin = fresh;
        return fresh;
      })
      .finally(() => {
        pending = null;
      });
    return pending;
  }

  async function once(req: ServiceRequest, conn: AdminConnection | null): Promise<ServiceResponse> {
    const url = new URL(req.path, conn?.url);
    // The message queue's URL is the service's to shape; it reads the version from Accept alone.
    if (conn) url.searchParams.set('api-version', API_VERSION);
    for (const [key, value] of Object.entries(req.query ?? {})) url.searchParams.set(key, value);
    const timeoutMs = req.timeoutMs ?? options.timeoutMs;
    const signal = req.signal
      ? AbortSignal.any([req.signal, AbortSignal.timeout(timeoutMs)])
      : AbortSignal.timeout(timeoutMs);
    const started = performance.now();
    const done = (code: string) => {
      metrics.requests.inc({ operation: req.operation, code });
      metrics.requestDuration.observe({ operation: req.operation }, (performance.now() - started) / 1000);
    };
    let res: Response;
    try {
      res = await fetch(url, {
        method: req.method,
        headers: {
          authorization: `Bearer ${req.bearer ?? conn?.token ?? ''}`,
          accept: `application/json; api-version=${API_VERSION}`,
          'user-agent': 'gantry',
          ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...req.headers,
        },
        ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}),
        signal,
      });
    } catch (err) {
      if (req.signal?.aborted) {
        done('aborted');
        throw req.signal.reason ?? err;
      }
      const timedOut = (err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError';
      done(timedOut ? 'timeout' : 'error');
      throw new ActionsServiceError(
        req.operation,
        0,
        '',
        timedOut
          ? `no answer within ${timeoutMs} ms`
          : (((err as Error).cause as Error)?.message ?? (err as Error).message),
      );
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      done('error');
      throw new ActionsServiceError(req.operation, 0, '', `answer cut off: ${(err as Error).message}`);
    }
    done(String(res.status));
    let body: unknown = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        if (res.ok) throw new ActionsServiceError(req.operation, res.status, '', 'the answer is not JSON');
      }
    }
    if (res.ok) return { status: res.status, body };
    const error = readServiceError(body);
    throw new ActionsServiceError(
      req.operation,
      res.status,
      error?.exception ?? '',
      error?.message || res.statusText || 'no message',
    );
  }

  /**
   * One call. With the admin token, a 401 renews it once and asks again (the service may end a token
   * before its stated expiry). Idempotent calls are retried after no answer, a 5xx or a 429.
   */
  async function request(req: ServiceRequest): Promise<ServiceResponse> {
    let renewed = false;
    for (let attempt = 0; ; attempt++) {
      const conn = req.bearer === undefined || !/^https?:/.test(req.path) ? await connection() : null;
      try {
        return await once(req, conn);
      } catch (err) {
        if (req.signal?.aborted) throw err;
        if (isServiceError(err, 401) && req.bearer === undefined && !renewed) {
          renewed = true;
          if (admin === conn) admin = null;
          attempt--;
          continue;
        }
        if (!req.idempotent || !isTransient(err) || attempt >= options.maxRetries) throw err;
        log.debug({ operation: req.operation, attempt, err: (err as Error).message }, 'retrying');
        await clock.sleep(backoffDelayMs(attempt, CALL_RETRIES.github), req.signal);
      }
    }
  }

  return {
    request,
    /** The admin connection now (renewing it when due). */
    connection,
    /** When the admin token expires, if one is held. */
    adminExpiresAtMs: () => admin?.expiresAtMs ?? null,
  };
}
