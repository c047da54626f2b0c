import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { type CoordinationV1Api, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { kubeMessage as messageOf, kubeStatus as statusOf } from '../kube/errors.ts';
import { LEADER_URL_ANNOTATION } from '../model/keys.ts';
import { decide, leaseExpiresAt, type ObservedLease } from './decide.ts';

export interface ElectorOptions {
  coordination: CoordinationV1Api;
  namespace: string;
  leaseName: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  logger: Logger;
  /** Called when this replica becomes the leader; it may act from now on. */
  onStartedLeading: () => void;
  /** Called the moment leadership is lost or given up; acting must stop now. */
  onStoppedLeading: () => void;
  /**
   * The base URL (http://host:port) other replicas reach this one at, written on the Lease while
   * this replica holds it; undefined when it has none (its followers then forward nothing).
   */
  advertiseUrl?: () => string | undefined;
  now?: () => number;
}

export interface Elector {
  readonly identity: string;
  isLeader(): boolean;
  /**
   * The base URL another replica that holds a valid lease advertised, as this one last read it;
   * undefined while this replica leads, nobody leads, or the leader advertised none.
   */
  leaderUrl(): string | undefined;
  /** Starts the election rounds (one at once, then every retry period). */
  start(): void;
  /** Stops the rounds; a leader steps down and releases the Lease so a successor need not wait. */
  stop(): Promise<void>;
}

/** The pod name (HOSTNAME) plus a random suffix: a restarted pod with the same name is a new candidate. */
export function electionIdentity(): string {
  return `${process.env.HOSTNAME || hostname()}_${randomBytes(4).toString('hex')}`;
}

/**
 * Lease-based leader election (coordination.k8s.io/v1). Each round reads the Lease, decides
 * (see decide.ts) and writes it with the resourceVersion it read, so two candidates can never both
 * succeed: the apiserver refuses the second write with a conflict. A watchdog steps down at the
 * renew deadline even while a request hangs, which is before the lease can expire for the others.
 */
export function createElector(options: ElectorOptions): Elector {
  const { coordination, namespace, leaseName: name, identity } = options;
  const now = options.now ?? Date.now;
  const log = options.logger.child({ component: 'election', lease: `${namespace}/${name}`, identity });
  let lastRenewedAt: number | null = null;
  let observed: ObservedLease | null = null;
  let observedVersion: string | undefined;
  let current: V1Lease | null = null;
  let stopped = true;
  let timer: NodeJS.Timeout | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  let round: Promise<void> | null = null;

  function becomeLeader(at: number): void {
    const wasLeader = lastRenewedAt !== null;
    lastRenewedAt = at;
    clearTimeout(watchdog);
    watchdog = setTimeout(() => stepDown('renew deadline passed'), options.renewDeadlineMs - (now() - at));
    watchdog.unref();
    if (!wasLeader) {
      log.info('became the leader');
      options.onStartedLeading();
    }
  }

  function stepDown(reason: string): void {
    clearTimeout(watchdog);
    if (lastRenewedAt === null) return;
    lastRenewedAt = null;
    log.warn({ reason }, 'stopped leading');
    options.onStoppedLeading();
  }

  async function read(): Promise<{ lease: V1Lease | null; reachable: boolean }> {
    try {
      return { lease: await coordination.readNamespacedLease({ name, namespace }), reachable: true };
    } catch (err) {
      if (statusOf(err) === 404) return { lease: null, reachable: true };
      log.warn({ err: messageOf(err) }, 'reading the lease failed');
      return { lease: null, reachable: false };
    }
  }

  async function write(lease: V1Lease | null, sentAt: number): Promise<boolean> {
    const previousHolder = lease?.spec?.holderIdentity;
    const taking = previousHolder !== identity;
    const stamp = new V1MicroTime(sentAt);
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        ...(lease?.metadata ?? {}),
        name,
        namespace,
        // Always rewritten, so a predecessor's URL never outlives its term.
        annotations: withLeaderUrl(lease?.metadata?.annotations, options.advertiseUrl?.()),
      },
      spec: {
        ...(lease?.spec ?? {}),
        holderIdentity: identity,
        leaseDurationSeconds: Math.ceil(options.leaseDurationMs / 1000),
        renewTime: stamp,
        ...(taking
          ? { acquireTime: stamp, leaseTransitions: (lease?.spec?.leaseTransitions ?? -1) + 1 }
          : {}),
      },
    };
    try {
      current = lease
        ? await coordination.replaceNamespacedLease({ name, namespace, body })
        : await coordination.createNamespacedLease({ namespace, body });
      return true;
    } catch (err) {
      const code = statusOf(err);
      // 409: another candidate wrote first; the next round reads who.
      if (code !== 409) log.warn({ err: messageOf(err) }, 'writing the lease failed');
      return false;
    }
  }

  async function runRound(): Promise<void> {
    const { lease, reachable } = await read();
    if (reachable) {
      current = lease;
      const version = lease?.metadata?.resourceVersion;
      if (lease && version !== observedVersion) {
        observedVersion = version;
        const seconds = lease.spec?.leaseDurationSeconds;
        observed = {
          holder: lease.spec?.holderIdentity,
          durationMs: seconds === undefined ? undefined : seconds * 1000,
          observedAt: now(),
        };
      } else if (!lease) {
        observed = null;
        observedVersion = undefined;
      }
    }
    const view = {
      identity,
      now: now(),
      leaseDurationMs: options.leaseDurationMs,
      lastRenewedByMeAt: lastRenewedAt,
      renewDeadlineMs: options.renewDeadlineMs,
    };
    const decision = decide(view, reachable ? observed : null, reachable);
    if (stopped) return;
    switch (decision) {
      case 'lost':
        stepDown(reachable ? `the lease is held by ${observed?.holder}` : 'renew deadline passed');
        return;
      case 'follow':
        return;
      case 'acquire':
      case 'renew': {
        if (!reachable) return;
        const sentAt = now();
        // The term counts from when the write was sent: the apiserver may have stored it any time after.
        if ((await write(current, sentAt)) && !stopped) becomeLeader(sentAt);
      }
    }
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      round = runRound()
        .catch((err: unknown) => log.error({ err: messageOf(err) }, 'election round failed'))
        .finally(() => {
          round = null;
          schedule();
        });
    }, options.retryPeriodMs);
    timer.unref();
  }

  return {
    identity,
    isLeader: () => lastRenewedAt !== null,
    leaderUrl() {
      if (lastRenewedAt !== null || stopped || !observed?.holder || observed.holder === identity)
        return undefined;
      if (now() >= leaseExpiresAt(observed, options.leaseDurationMs)) return undefined;
      return current?.metadata?.annotations?.[LEADER_URL_ANNOTATION] || undefined;
    },
    start() {
      if (!stopped) return;
      stopped = false;
      log.info('joining the leader election');
      round = runRound()
        .catch((err: unknown) => log.error({ err: messageOf(err) }, 'election round failed'))
        .finally(() => {
          round = null;
          schedule();
        });
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await round;
      if (lastRenewedAt === null) return;
      stepDown('shutting down');
      await release();
    },
  };

  /** Clears the holder, so the next candidate's round takes the lease without waiting for it to expire. */
  async function release(): Promise<void> {
    const lease = current;
    if (lease?.spec?.holderIdentity !== identity) return;
    const body: V1Lease = {
      ...lease,
      metadata: { ...lease.metadata, annotations: withLeaderUrl(lease.metadata?.annotations, undefined) },
      spec: {
        ...lease.spec,
        holderIdentity: '',
        leaseDurationSeconds: 1,
        renewTime: new V1MicroTime(now()),
      },
    };
    try {
      await coordination.replaceNamespacedLease({ name, namespace, body });
      log.info('released the lease');
    } catch (err) {
      log.warn({ err: messageOf(err) }, 'releasing the lease failed; it expires on its own');
    }
  }
}

/** The Lease's annotations with the leader URL set to `url`, or without it. */
function withLeaderUrl(
  annotations: Record<string, string> | undefined,
  url: string | undefined,
): Record<string, string> {
  const { [LEADER_URL_ANNOTATION]: _previous, ...rest } = annotations ?? {};
  return url ? { ...rest, [LEADER_URL_ANNOTATION]: url } : rest;
}
