import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The scale-set source's metrics, on the registry it is given. Labels: class names and fixed enums. */
export interface ScaleSetMetrics {
  /** Calls to the Actions service and its message queue, by operation and HTTP status. */
  requests: Counter<'operation' | 'code'>;
  requestDuration: Histogram<'operation'>;
  /** The scale set's statistics as the service last reported them. */
  statistics: Gauge<'class' | 'statistic'>;
  /** 1 while this replica holds the class's message session. */
  session: Gauge<'class'>;
  /** Attempts to open a session that the service refused because the scale set had one. */
  sessionConflicts: Counter<'class'>;
  /** Messages read, by result: applied, redelivered (read again after a restart or a new session), malformed. */
  messages: Counter<'class' | 'result'>;
  jobMessages: Counter<'class' | 'type'>;
  /** Messages kept unacknowledged because they hold the latest news of a job not yet ended. */
  retained: Gauge<'class'>;
  /** The X-ScaleSetMaxCapacity last sent: how many jobs the service may assign to the scale set. */
  capacity: Gauge<'class'>;
  /** Jobs the statistics count as waiting that no message has named yet; planned for like queued jobs. */
  unnamedJobs: Gauge<'class'>;
}

export function createScaleSetMetrics(registry: Registry): ScaleSetMetrics {
  const registers = [registry];
  return {
    requests: new Counter({
      name: 'gantry_actions_requests_total',
      help: 'Requests to GitHub’s Actions service (scale sets, sessions, messages, JIT configs, runners) by operation and HTTP status.',
      labelNames: ['operation', 'code'] as const,
      registers,
    }),
    requestDuration: new Histogram({
      name: 'gantry_actions_request_duration_seconds',
      help: 'Duration of Actions service requests (long polls included: up to about 50 s).',
      labelNames: ['operation'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    statistics: new Gauge({
      name: 'gantry_scaleset_statistics',
      help: 'The scale set’s statistics as the Actions service last reported them (available, acquired, assigned, running jobs; registered, busy, idle runners).',
      labelNames: ['class', 'statistic'] as const,
      registers,
    }),
    session: new Gauge({
      name: 'gantry_scaleset_session',
      help: '1 while this replica holds the class’s message session and polls it.',
      labelNames: ['class'] as const,
      registers,
    }),
    sessionConflicts: new Counter({
      name: 'gantry_scaleset_session_conflicts_total',
      help: 'Session opens refused because the scale set already had a session (another process’s, or a stale one).',
      labelNames: ['class'] as const,
      registers,
    }),
    messages: new Counter({
      name: 'gantry_scaleset_messages_total',
      help: 'Session messages read, by result (applied, redelivered, malformed).',
      labelNames: ['class', 'result'] as const,
      registers,
    }),
    jobMessages: new Counter({
      name: 'gantry_scaleset_job_messages_total',
      help: 'Job messages read, by type (JobAvailable, JobAssigned, JobStarted, JobCompleted).',
      labelNames: ['class', 'type'] as const,
      registers,
    }),
    retained: new Gauge({
      name: 'gantry_scaleset_messages_retained',
      help: 'Messages left unacknowledged because they hold the latest news of a job that has not ended (read back after a restart).',
      labelNames: ['class'] as const,
      registers,
    }),
    capacity: new Gauge({
      name: 'gantry_scaleset_capacity',
      help: 'X-ScaleSetMaxCapacity last sent: most jobs the service assigns the scale set at once.',
      labelNames: ['class'] as const,
      registers,
    }),
    unnamedJobs: new Gauge({
      name: 'gantry_scaleset_unnamed_jobs',
      help: 'Jobs the statistics count as waiting for a runner that no message has named yet.',
      labelNames: ['class'] as const,
      registers,
    }),
  };
}
