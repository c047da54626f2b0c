import type { BlockReason } from './rate-limit.ts';

/** GitHub refused (or would refuse) a request for rate-limit reasons; nothing is sent until `untilMs`. */
export class GithubRateLimitedError extends Error {
  override name = 'GithubRateLimitedError';
  readonly operation: string;
  readonly reason: BlockReason;
  readonly untilMs: number;
  /** False when the request was held back before it was sent. */
  readonly sent: boolean;

  constructor(operation: string, reason: BlockReason, untilMs: number, sent: boolean) {
    super(
      `GitHub ${reason} rate limit: ${operation} ${sent ? 'was refused' : 'not sent'}; requests resume at ${new Date(untilMs).toISOString()}`,
    );
    this.operation = operation;
    this.reason = reason;
    this.untilMs = untilMs;
    this.sent = sent;
  }
}

/**
 * A failed GitHub request, with the status (0 for network errors and timeouts) and GitHub's message.
 * Carries no request headers, so it can be logged without leaking tokens.
 */
export class GithubApiError extends Error {
  override name = 'GithubApiError';
  readonly operation: string;
  readonly status: number;

  constructor(operation: string, status: number, message: string) {
    super(`GitHub ${operation} failed${status ? ` with ${status}` : ''}: ${message}`);
    this.operation = operation;
    this.status = status;
  }
}

export function isStatus(err: unknown, status: number): boolean {
  return err instanceof GithubApiError && err.status === status;
}

/** A 4xx other than a timeout or rate limit: asking again gives the same answer. */
export function isRefusedForGood(err: unknown): err is GithubApiError {
  return (
    err instanceof GithubApiError && err.status >= 400 && err.status < 500 && ![408, 429].includes(err.status)
  );
}
