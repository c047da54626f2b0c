import { LRUCache } from 'lru-cache';
import { Octokit, RequestError } from 'octokit';
import type { Logger } from 'pino';
import { backoffDelayMs } from '../../util/retry.ts';
import { CALL_RETRIES } from '../../util/schedules.ts';
import type { Clock } from './clock.ts';
import { GithubApiError, GithubRateLimitedError } from './errors.ts';
import type { GithubMetrics } from './metrics.ts';
import {
  block,
  blockedForMs,
  classifyRateLimitError,
  expireBlock,
  type Headers,
  initialRateLimitState,
  observeHeaders,
  type RateLimitState,
} from './rate-limit.ts';

export interface GithubResponse<T> {
  status: number;
  headers: Headers;
  data: T;
}

/** What a call adds to octokit's request parameters: headers (auth, If-None-Match) and the timeout signal. */
export interface RequestExtras {
  headers: Record<string, string>;
  request: { signal: AbortSignal };
}

export interface CallSpec {
  /** Stable, low-cardinality name for logs and metrics, e.g. `list_workflow_runs`. */
  operation: string;
  /** Safe to send again after a timeout or 5xx (GET, DELETE, token exchange). */
  idempotent: boolean;
  /** Key of the ETag cache (the request URL); set to make the request conditional. */
  conditionalKey?: string;
  /** Overrides the installation/PAT authorization (the App JWT for app-level routes). */
  authorization?: string;
  /** App-level routes have their own quota; their headers must not overwrite the installation's. */
  observeQuota?: boolean;
}

export interface CallResult<T> {
  data: T;
  /** True when GitHub answered 304 and `data` is the cached body (no quota spent). */
  notModified: boolean;
  status: number;
  headers: Headers;
  /** The absolute URL of the next page (Link rel="next"), if any. */
  nextUrl: string | null;
}

export interface GithubClientOptions {
  baseUrl: string;
  authorize: () => Promise<string>;
  /** Called on a 401: the token provider drops its token and says whether a retry can help. */
  onUnauthorized: () => boolean;
  clock: Clock;
  logger: Logger;
  metrics: GithubMetrics;
  timeoutMs: number;
  maxRetries: number;
  etagCacheSize?: number;
  /** Bound of the ETag cache in bytes (bodies as JSON text): a page of 100 runs is about 1 MB. */
  etagCacheBytes?: number;
  /** Where ETags and their bodies are kept instead of the bounded in-memory cache (one that outlives the process). */
  etagStore?: EtagStore;
  userAgent?: string;
}

export interface RateLimitSnapshot extends RateLimitState {
  /** True while nothing is sent to GitHub. */
  blocked: boolean;
}

export interface GithubClient {
  readonly octokit: Octokit;
  call<T>(
    spec: CallSpec,
    send: (extras: RequestExtras) => Promise<GithubResponse<T>>,
  ): Promise<CallResult<T>>;
  /** Every page of a list, following absolute `Link: rel="next"` URLs; each page conditional. */
  paginate<P, I>(
    spec: CallSpec & { conditionalKey: string },
    first: (extras: RequestExtras) => Promise<GithubResponse<P>>,
    items: (page: P) => readonly I[],
  ): Promise<{ items: I[]; changed: boolean }>;
  rateLimit(): RateLimitSnapshot;
}

const RETRYABLE_STATUS = new Set([0, 500, 502, 503, 504]);

/** Keeps the body each conditional request's ETag stands for, by request. */
export interface EtagStore {
  get(key: string): CachedBody | undefined;
  set(key: string, body: CachedBody): void;
}

export interface CachedBody {
  etag: string;
  data: unknown;
  /** A 304 has no Link header, so the next-page URL is kept with the body it came with. */
  nextUrl: string | null;
  /** Roughly what it holds in memory: its JSON text's length. */
  bytes: number;
}

function nextLink(headers: Headers): string | null {
  const link = headers.link;
  if (typeof link !== 'string') return null;
  return /<([^<>]+)>;\s*rel="next"/.exec(link)?.[1] ?? null;
}

function statusOf(err: unknown): number {
  if (err instanceof RequestError) return err.status === 500 && !err.response ? 0 : err.status;
  return 0;
}

function isTimeout(err: unknown): boolean {
  const cause = err instanceof RequestError ? err.cause : err;
  return cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError');
}

function messageOf(err: unknown, timeoutMs: number): string {
  if (isTimeout(err)) return `timed out after ${timeoutMs} ms`;
  if (err instanceof RequestError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * The one way the GitHub source talks to GitHub: octokit underneath (its retry and throttling plugins
 * off, because the policy lives here), with a timeout per attempt, bounded jittered retries for
 * idempotent calls, an ETag cache that turns 304 into the cached body, and a rate-limit gate that keeps
 * requests from being sent while GitHub has asked for quiet.
 */
export function createGithubClient(options: GithubClientOptions): GithubClient {
  const { clock, logger, metrics } = options;
  const log = logger.child({ component: 'github-client' });
  const octokit = new Octokit({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    userAgent: options.userAgent ?? 'gantry',
    throttle: { enabled: false },
    retry: { enabled: false },
    log: {
      debug: () => {},
      info: () => {},
      warn: (message: string) => log.warn({ source: 'octokit' }, message),
      error: (message: string) => log.error({ source: 'octokit' }, message),
    },
  });
  const apiOrigin = new URL(options.baseUrl).origin;
  const etags: EtagStore =
    options.etagStore ??
    new LRUCache<string, CachedBody>({
      max: options.etagCacheSize ?? 5_000,
      maxSize: options.etagCacheBytes ?? 32 * 1024 * 1024,
      sizeCalculation: (body) => Math.max(1, body.bytes),
    });
  let state: RateLimitState = initialRateLimitState;

  const publish = (previous: RateLimitState) => {
    if (state.limit !== null) metrics.rateLimitLimit.set(state.limit);
    if (state.remaining !== null) metrics.rateLimitRemaining.set(state.remaining);
    if (state.resetAtMs !== null) metrics.rateLimitResetTimestamp.set(Math.floor(state.resetAtMs / 1000));
    metrics.rateLimitBlocked.set({ reason: 'primary' }, state.blockedReason === 'primary' ? 1 : 0);
    metrics.rateLimitBlocked.set({ reason: 'secondary' }, state.blockedReason === 'secondary' ? 1 : 0);
    if (state.blockedUntilMs !== null && state.blockedUntilMs !== previous.blockedUntilMs) {
      log.warn(
        {
          reason: state.blockedReason,
          resumeAt: new Date(state.blockedUntilMs).toISOString(),
          remaining: state.remaining,
          limit: state.limit,
        },
        'github rate limit reached: holding all requests until it resets',
      );
    } else if (state.blockedUntilMs === null && previous.blockedUntilMs !== null) {
      log.info('github rate limit over: requests resume');
    }
  };

  const update = (next: RateLimitState) => {
    if (next === state) return;
    const previous = state;
    state = next;
    publish(previous);
  };

  const gate = (operation: string) => {
    update(expireBlock(state, clock.now()));
    const wait = blockedForMs(state, clock.now());
    if (wait > 0 && state.blockedUntilMs !== null && state.blockedReason !== null) {
      metrics.requests.inc({ operation, code: 'held' });
      throw new GithubRateLimitedError(operation, state.blockedReason, state.blockedUntilMs, false);
    }
  };

  async function call<T>(
    spec: CallSpec,
    send: (extras: RequestExtras) => Promise<GithubResponse<T>>,
  ): Promise<CallResult<T>> {
    const observeQuota = spec.observeQuota ?? true;
    let unauthorizedRetried = false;
    for (let attempt = 0; ; attempt++) {
      gate(spec.operation);
      const headers: Record<string, string> = {
        authorization: spec.authorization ?? (await options.authorize()),
      };
      const cached = spec.conditionalKey ? etags.get(spec.conditionalKey) : undefined;
      if (cached) headers['if-none-match'] = cached.etag;
      const started = performance.now();
      const endTimer = () =>
        metrics.requestDuration.observe({ operation: spec.operation }, (performance.now() - started) / 1000);
      try {
        const response = await send({ headers, request: { signal: AbortSignal.timeout(options.timeoutMs) } });
        endTimer();
        metrics.requests.inc({ operation: spec.operation, code: String(response.status) });
        if (observeQuota) update(observeHeaders(state, response.headers, clock.now()));
        const etag = response.headers.etag;
        const nextUrl = nextLink(response.headers);
        if (spec.conditionalKey && typeof etag === 'string') {
          const bytes = JSON.stringify(response.data ?? null).length + etag.length;
          etags.set(spec.conditionalKey, { etag, data: response.data, nextUrl, bytes });
        }
        return {
          data: response.data,
          notModified: false,
          status: response.status,
          headers: response.headers,
          nextUrl,
        };
      } catch (err) {
        endTimer();
        const status = statusOf(err);
        const responseHeaders: Headers = err instanceof RequestError ? (err.response?.headers ?? {}) : {};
        metrics.requests.inc({
          operation: spec.operation,
          code: status ? String(status) : isTimeout(err) ? 'timeout' : 'error',
        });
        if (observeQuota) update(observeHeaders(state, responseHeaders, clock.now()));
        if (status === 304 && cached && spec.conditionalKey) {
          return {
            data: cached.data as T,
            notModified: true,
            status,
            headers: responseHeaders,
            nextUrl: cached.nextUrl,
          };
        }
        const message = messageOf(err, options.timeoutMs);
        const verdict = classifyRateLimitError(status, responseHeaders, message, clock.now());
        if (verdict.kind !== 'none') {
          // Even on app-level routes: without a token nothing else can be sent either.
          update(block(state, verdict.untilMs, verdict.kind));
          throw new GithubRateLimitedError(spec.operation, verdict.kind, verdict.untilMs, true);
        }
        if (
          status === 401 &&
          !unauthorizedRetried &&
          spec.authorization === undefined &&
          options.onUnauthorized()
        ) {
          // An installation token can be revoked or expire early; one retry with a fresh token.
          unauthorizedRetried = true;
          attempt--;
          continue;
        }
        const retryable = spec.idempotent && RETRYABLE_STATUS.has(status) && attempt < options.maxRetries;
        log.debug(
          { operation: spec.operation, status, attempt, retryable, err: message },
          'github request failed',
        );
        if (!retryable) throw new GithubApiError(spec.operation, status, message);
        await clock.sleep(backoffDelayMs(attempt, CALL_RETRIES.github));
      }
    }
  }

  async function paginate<P, I>(
    spec: CallSpec & { conditionalKey: string },
    first: (extras: RequestExtras) => Promise<GithubResponse<P>>,
    items: (page: P) => readonly I[],
  ): Promise<{ items: I[]; changed: boolean }> {
    const all: I[] = [];
    let changed = false;
    let result = await call(spec, first);
    for (let pages = 1; ; pages++) {
      changed ||= !result.notModified;
      all.push(...items(result.data));
      const nextUrl = result.nextUrl;
      // GitHub caps filtered lists at 1,000 results; the page bound only guards against a looping server.
      if (!nextUrl || pages >= 100) break;
      // The request carries the installation token: it never goes to a host other than the API's.
      if (new URL(nextUrl, apiOrigin).origin !== apiOrigin) {
        throw new GithubApiError(
          spec.operation,
          0,
          `next page ${nextUrl} is not on ${apiOrigin}; not followed`,
        );
      }
      result = await call(
        { ...spec, conditionalKey: nextUrl },
        (extras) => octokit.request({ method: 'GET', url: nextUrl, ...extras }) as Promise<GithubResponse<P>>,
      );
    }
    return { items: all, changed };
  }

  return {
    octokit,
    call,
    paginate,
    rateLimit: () => {
      update(expireBlock(state, clock.now()));
      return { ...state, blocked: blockedForMs(state, clock.now()) > 0 };
    },
  };
}
