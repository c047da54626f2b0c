import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The GitHub source's metrics, registered on the registry it is given (never prom-client's global one). */
export interface GithubMetrics {
  requests: Counter<'operation' | 'code'>;
  requestDuration: Histogram<'operation'>;
  rateLimitLimit: Gauge;
  rateLimitRemaining: Gauge;
  rateLimitResetTimestamp: Gauge;
  /** 1 while Gantry sends nothing to GitHub because of a rate limit; `reason` is primary or secondary. */
  rateLimitBlocked: Gauge<'reason'>;
  webhookDeliveries: Counter<'result'>;
  /** Deliveries a follower passed on to the leader: ok, failed, no_leader. */
  webhookForwards: Counter<'result'>;
  events: Counter<'kind' | 'via'>;
  /** Queued jobs the poller found before any webhook announced them (lost deliveries, downtime). */
  jobsFoundByPoll: Counter;
  pollSweeps: Counter<'result'>;
  /** Jobs held back because their workflow run could not be looked up (origin unknown). */
  jobsAwaitingOrigin: Gauge;
  /** Jobs dropped before any look-up, once each: `reason` no-class (no class takes their labels). */
  jobsIgnored: Counter<'reason'>;
  runnersCreated: Counter;
  runnersDeleted: Counter<'reason'>;
}

export function createGithubMetrics(registry: Registry): GithubMetrics {
  const registers = [registry];
  return {
    requests: new Counter({
      name: 'gantry_github_requests_total',
      help: 'GitHub REST requests by operation and HTTP status (304s cost no quota).',
      labelNames: ['operation', 'code'] as const,
      registers,
    }),
    requestDuration: new Histogram({
      name: 'gantry_github_request_duration_seconds',
      help: 'Duration of GitHub REST requests.',
      labelNames: ['operation'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    rateLimitLimit: new Gauge({
      name: 'gantry_github_rate_limit_limit',
      help: 'x-ratelimit-limit of the last GitHub response.',
      registers,
    }),
    rateLimitRemaining: new Gauge({
      name: 'gantry_github_rate_limit_remaining',
      help: 'x-ratelimit-remaining of the last GitHub response.',
      registers,
    }),
    rateLimitResetTimestamp: new Gauge({
      name: 'gantry_github_rate_limit_reset_timestamp_seconds',
      help: 'x-ratelimit-reset of the last GitHub response (Unix seconds).',
      registers,
    }),
    rateLimitBlocked: new Gauge({
      name: 'gantry_github_rate_limit_blocked',
      help: '1 while requests to GitHub are held back by a primary or secondary rate limit.',
      labelNames: ['reason'] as const,
      registers,
    }),
    webhookDeliveries: new Counter({
      name: 'gantry_github_webhook_deliveries_total',
      help: 'Webhook deliveries by outcome.',
      labelNames: ['result'] as const,
      registers,
    }),
    webhookForwards: new Counter({
      name: 'gantry_github_webhook_forwards_total',
      help: 'Webhook deliveries a follower passed on to the leader, by result (ok, failed, no_leader).',
      labelNames: ['result'] as const,
      registers,
    }),
    events: new Counter({
      name: 'gantry_github_job_events_total',
      help: 'Job events emitted by the GitHub source, by kind and by how they were observed.',
      labelNames: ['kind', 'via'] as const,
      registers,
    }),
    jobsIgnored: new Counter({
      name: 'gantry_github_jobs_ignored_total',
      help: 'Jobs dropped before any look-up and not kept, once each, by reason (no-class: no class takes their labels).',
      labelNames: ['reason'] as const,
      registers,
    }),
    jobsFoundByPoll: new Counter({
      name: 'gantry_github_jobs_found_by_poll_total',
      help: 'Queued jobs that no webhook announced and the poller found.',
      registers,
    }),
    pollSweeps: new Counter({
      name: 'gantry_github_poll_sweeps_total',
      help: 'Poller sweeps by result.',
      labelNames: ['result'] as const,
      registers,
    }),
    jobsAwaitingOrigin: new Gauge({
      name: 'gantry_github_jobs_awaiting_origin',
      help: 'Jobs held back (no event yet) because their workflow run could not be looked up to tell whether they come from a fork.',
      registers,
    }),
    runnersCreated: new Counter({
      name: 'gantry_github_jit_runners_created_total',
      help: 'JIT runner configurations generated.',
      registers,
    }),
    runnersDeleted: new Counter({
      name: 'gantry_github_runners_deleted_total',
      help: 'Gantry-owned runners deleted from GitHub, by reason.',
      labelNames: ['reason'] as const,
      registers,
    }),
  };
}

/** 1 per class while GitHub's side would let untrusted jobs reach its runners (the placement guard's). */
export function placementUnsafeGauge(registry: Registry): Gauge<'class'> {
  return new Gauge({
    name: 'gantry_trust_placement_unsafe',
    help: '1 while the class’s runner group (or repository) lets untrusted jobs reach its runners, as last read from GitHub.',
    labelNames: ['class'] as const,
    registers: [registry],
  });
}
