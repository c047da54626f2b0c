/**
 * Every wait Gantry takes before trying something again, in one table. Waits double from
 * `baseDelayMs` up to `maxDelayMs`; the jittered ones wait a random share of that bound ("full
 * jitter"), so callers that failed together do not come back together. A wait the other side asks
 * for (Retry-After, a rate limit's reset) wins over the table wherever one is given.
 */
export interface Backoff {
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export interface RetrySchedule extends Backoff {
  /** Tries in all, the first included. */
  readonly attempts: number;
}

/** One call tried again within the step that makes it (jittered; withRetry or backoffDelayMs). */
export const CALL_RETRIES = {
  /** A Kubernetes read or write of a runner, a queued run, the Tekton webhook's TLS Secret. */
  kube: { attempts: 4, baseDelayMs: 200, maxDelayMs: 5_000 },
  /** The start's dry-run creates of each class's runner pod (admission check). */
  kubeDryRun: { attempts: 3, baseDelayMs: 200, maxDelayMs: 2_000 },
  /** The warm-pool ConfigMap's reads and writes. */
  warmPoolStore: { attempts: 4, baseDelayMs: 250, maxDelayMs: 4_000 },
  /** A GitHub REST or Actions service request; its attempts are `github.maxRetries`. */
  github: { baseDelayMs: 500, maxDelayMs: 10_000 },
  /** The Actions service's registration, refused (401/403) while a new installation propagates; not jittered. */
  actionsRegistration: { attempts: 4, baseDelayMs: 1_000, maxDelayMs: 8_000 },
  /** A file a command fetches over HTTP (a running Gantry's records, start-up samples). */
  commandFetch: { attempts: 3, baseDelayMs: 500, maxDelayMs: 4_000 },
} as const satisfies Record<string, Backoff & { attempts?: number }>;

/** Work in the background, tried again until it succeeds (or its attempts run out). */
export const BACKGROUND_RETRIES = {
  /** A Kubernetes watch that ended; back to the first wait once it stayed up 30 s. */
  watchRestart: { baseDelayMs: 1_000, maxDelayMs: 8_000 },
  /** Removing the registration of a runner whose pod is gone while GitHub still counts it busy (jittered). */
  forgetRegistration: { attempts: 12, baseDelayMs: 2_000, maxDelayMs: 120_000 },
  /** Reading the runner groups while GitHub cannot be reached; creations of the classes wait meanwhile. */
  placementUnreadable: { baseDelayMs: 5_000, maxDelayMs: 60_000 },
  /** Looking up a workflow run's origin (fork, visibility) that GitHub did not answer; its jobs wait. */
  originLookup: { baseDelayMs: 1_000, maxDelayMs: 60_000 },
  /** The same for a scale set's job message. */
  scaleSetOriginLookup: { baseDelayMs: 2_000, maxDelayMs: 60_000 },
  /** A scale set's message session or poll that failed (jittered). */
  scaleSetSession: { baseDelayMs: 1_000, maxDelayMs: 30_000 },
  /** The self-managed webhook certificate's check that failed; at most its check interval. */
  webhookCertificate: { baseDelayMs: 15_000, maxDelayMs: Number.POSITIVE_INFINITY },
} as const satisfies Record<string, Backoff & { attempts?: number }>;

/** Holds on a class's (or a namespace's) new runners after a failure: the reconciler's. */
export const CREATION_HOLDS = {
  /** A quota refusal without Retry-After: the namespace makes no runner for this long. */
  quotaRefusalMs: 10_000,
  /** A registration GitHub refused, unless it said when it takes them again. */
  registrationFailure: { baseDelayMs: 1_000, maxDelayMs: 30_000 },
  /** A runner that cannot start (an image that does not pull, a pod the apiserver refuses). */
  startFailure: { baseDelayMs: 5_000, maxDelayMs: 120_000 },
  /** A create that got no answer (its pod may exist) is sent again after each of these waits. */
  createRetryDelaysMs: [1_000, 2_000, 4_000, 8_000, 16_000, 30_000],
} as const;

/** The `n`th wait (from 0) of a doubling backoff, without jitter. */
export function doublingDelayMs(backoff: Backoff, n: number): number {
  return Math.min(backoff.maxDelayMs, backoff.baseDelayMs * 2 ** n);
}
