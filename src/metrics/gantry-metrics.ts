import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { fitsQuota, runnerQuotaUsage } from '../classes/quota-usage.ts';
import type { RunnerClasses } from '../classes/schema.ts';
import type { LedgerChange } from '../ledger/ledger.ts';
import type { EpochMillis } from '../model/job.ts';
import type { LedgerSnapshot, RunnerState } from '../model/ledger-snapshot.ts';
import { LOST_REASONS, type StartFailureReason } from '../model/runner-observation.ts';
import { meterLedgerChange } from './cost-from-ledger.ts';
import { CostMeter } from './cost-meter.ts';
import { RecentActivity, type StatusReport } from './status.ts';

const RUNNER_STATES: readonly RunnerState[] = [
  'starting',
  'idle',
  'busy',
  'terminating',
  'failed',
  'finished',
  'stuck',
  'compromised',
];

export interface GantryMetricsOptions {
  registry: Registry;
  classes: RunnerClasses;
  /** The ledger's snapshot at `now`; absent while no runner side exists. */
  snapshot: (now: EpochMillis) => LedgerSnapshot | undefined;
  now?: () => EpochMillis;
  /** See `CostMeterOptions.settleMs`. */
  costSettleMs?: number;
}

/**
 * Gantry's own metrics, all observers: histograms and the cost counter follow ledger changes and
 * reconcile passes; pool gauges are computed from the ledger's snapshot at scrape time, so they are
 * exact and can never drift from it. Labels are class names, sources and fixed enums: bounded.
 */
export function createGantryMetrics(options: GantryMetricsOptions) {
  const { registry, classes } = options;
  const now = options.now ?? Date.now;
  const registers = [registry];
  const sourceOf = (className: string) => (classes[className]?.match.github ? 'github' : 'tekton');
  // A scrape calls every gauge's collect() synchronously, one after the other: they share one
  // projection of the ledger, dropped once that synchronous run is over.
  let scraped: { snapshot: ReturnType<GantryMetricsOptions['snapshot']> } | undefined;
  const scrapeSnapshot = () => {
    if (!scraped) {
      scraped = { snapshot: options.snapshot(now()) };
      queueMicrotask(() => {
        scraped = undefined;
      });
    }
    return scraped.snapshot;
  };

  const queueSeconds = new Histogram({
    name: 'gantry_job_queue_seconds',
    help: 'Time jobs waited for a runner: created to started, as the source reports them.',
    labelNames: ['source', 'class'] as const,
    buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600],
    registers,
  });
  const jobSeconds = new Histogram({
    name: 'gantry_job_duration_seconds',
    help: 'Time jobs ran: started to completed, as the source reports them.',
    labelNames: ['source', 'class'] as const,
    buckets: [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600],
    registers,
  });
  const startupSeconds = new Histogram({
    name: 'gantry_runner_startup_seconds',
    help: 'Time runner pods took from creation to a running container.',
    labelNames: ['class'] as const,
    buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300],
    registers,
  });
  const runStartSeconds = new Histogram({
    name: 'gantry_run_start_seconds',
    help: 'Tekton runs Gantry admitted: time from admission to Tekton setting status.startTime.',
    labelNames: ['class'] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers,
  });
  const reconcileSeconds = new Histogram({
    name: 'gantry_reconcile_seconds',
    help: 'Duration of reconcile passes: snapshot, plan and record intent (actions are carried out after).',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const meter: CostMeter = new CostMeter({
    // Pod times have whole seconds: a runner that started in the same second as Gantry is new.
    startedAt: Math.floor(now() / 1000) * 1000,
    settleMs: options.costSettleMs ?? 10_000,
    onCost: (key, use, dollars) =>
      costDollars.inc({ class: key.className, source: key.source, use }, dollars),
  });
  const costDollars = new Counter({
    name: 'gantry_cost_dollars_total',
    help: 'Runner cost: requested vCPUs and memory times wall time at the class rates, busy (running its job) or idle.',
    labelNames: ['class', 'source', 'use'] as const,
    registers,
    // Cost accrues as runners live; a scrape brings the counter up to date first.
    collect() {
      meter.settle(now());
    },
  });
  const unclassified = new Counter({
    name: 'gantry_jobs_unclassified_total',
    help: 'Jobs no class takes (left alone), by source.',
    labelNames: ['source'] as const,
    registers,
  });

  const trustViolations = new Counter({
    name: 'gantry_trust_violations_total',
    help:
      'Jobs GitHub gave to a runner of another trust than the job’s: kind untrusted-job (an untrusted job on a ' +
      'trusted runner) and not-allowed (a job a trusted-only class excludes) are stopped unless the class is ' +
      'sandboxed; trusted-job (a trusted job on an untrusted runner) is only counted.',
    labelNames: ['class', 'kind'] as const,
    registers,
  });
  for (const [className, runnerClass] of Object.entries(classes)) {
    if (!runnerClass.match.github) continue;
    const kinds = runnerClass.untrusted
      ? ['trusted-job']
      : runnerClass.trustedOnly
        ? ['untrusted-job', 'not-allowed']
        : ['untrusted-job'];
    for (const kind of kinds) trustViolations.inc({ class: className, kind }, 0);
  }

  const runnersLost = new Counter({
    name: 'gantry_runners_lost_total',
    help:
      'Runners the cluster took away in the middle of their job, by reason: node-lost (node deleted or ' +
      'unreachable), evicted (node pressure, a drain, preemption) or oom-killed. Each lost its job.',
    labelNames: ['class', 'reason'] as const,
    registers,
  });
  const startFailures = new Counter({
    name: 'gantry_runner_start_failures_total',
    help:
      'Runner pods that could not start, by reason: image-pull (ErrImagePull, ImagePullBackOff…), ' +
      'container-config (CreateContainerConfigError) or refused (the apiserver refused the pod).',
    labelNames: ['class', 'reason'] as const,
    registers,
  });
  const START_FAILURE_REASONS: readonly StartFailureReason[] = ['image-pull', 'container-config', 'refused'];
  for (const [className, runnerClass] of Object.entries(classes)) {
    if (!runnerClass.match.github) continue;
    for (const reason of LOST_REASONS) runnersLost.inc({ class: className, reason }, 0);
    for (const reason of START_FAILURE_REASONS) startFailures.inc({ class: className, reason }, 0);
  }

  const activity = new RecentActivity();

  new Gauge({
    name: 'gantry_runners',
    help: 'Runner pods by class and state, as the ledger sees them.',
    labelNames: ['class', 'state'] as const,
    registers,
    collect() {
      this.reset();
      const snapshot = scrapeSnapshot();
      for (const className of Object.keys(classes)) {
        const counts = new Map<RunnerState, number>(RUNNER_STATES.map((s) => [s, 0]));
        for (const runner of snapshot?.classes[className]?.runners ?? []) {
          counts.set(runner.state, (counts.get(runner.state) ?? 0) + 1);
        }
        for (const [state, count] of counts) this.set({ class: className, state }, count);
      }
    },
  });
  new Gauge({
    name: 'gantry_runners_waiting_for_capacity',
    help:
      'Runner pods no node fits yet (Pending, PodScheduled=False Unschedulable), waiting up to ' +
      'controller.capacityTimeoutSeconds for a node autoscaler; counted as starting in gantry_runners.',
    labelNames: ['class'] as const,
    registers,
    collect() {
      this.reset();
      const snapshot = scrapeSnapshot();
      for (const [className, runnerClass] of Object.entries(classes)) {
        if (!runnerClass.match.github) continue;
        const runners = snapshot?.classes[className]?.runners ?? [];
        const waiting = runners.filter((r) => r.waitingForCapacity && r.state === 'starting').length;
        this.set({ class: className }, waiting);
      }
    },
  });
  new Gauge({
    name: 'gantry_jobs_queued',
    help: 'Jobs waiting for a runner, by source and class.',
    labelNames: ['source', 'class'] as const,
    registers,
    collect() {
      this.reset();
      const snapshot = scrapeSnapshot();
      for (const className of Object.keys(classes)) {
        const bySource = new Map<string, number>([[sourceOf(className), 0]]);
        for (const job of snapshot?.classes[className]?.queued ?? []) {
          bySource.set(job.source, (bySource.get(job.source) ?? 0) + 1);
        }
        for (const [source, count] of bySource) this.set({ source, class: className }, count);
      }
    },
  });
  new Gauge({
    name: 'gantry_runs_admitted',
    help: 'Tekton runs admitted (or started without Gantry) and not finished, by class: slots they hold.',
    labelNames: ['class'] as const,
    registers,
    collect() {
      this.reset();
      const snapshot = scrapeSnapshot();
      for (const [className, runnerClass] of Object.entries(classes)) {
        if (runnerClass.match.tekton) {
          this.set({ class: className }, snapshot?.classes[className]?.admittedRuns.length ?? 0);
        }
      }
    },
  });
  new Gauge({
    name: 'gantry_class_max_runners',
    help: 'The class’s maxRunners setting.',
    labelNames: ['class'] as const,
    registers,
    collect() {
      for (const [className, runnerClass] of Object.entries(classes)) {
        this.set({ class: className }, runnerClass.maxRunners);
      }
    },
  });
  new Gauge({
    name: 'gantry_class_quota_limited',
    help: '1 while the class’s namespace quota holds back new runners (refused a create, or has no room for one).',
    labelNames: ['class'] as const,
    registers,
    collect() {
      const at = now();
      const quotas = scrapeSnapshot()?.quotas ?? {};
      for (const [className, runnerClass] of Object.entries(classes)) {
        const headroom = quotas[runnerClass.namespace];
        const limited =
          headroom !== undefined &&
          ((headroom.backoffUntil !== undefined && at < headroom.backoffUntil) ||
            !fitsQuota(headroom.remaining, runnerQuotaUsage(runnerClass)));
        this.set({ class: className }, limited ? 1 : 0);
      }
    },
  });
  function onChange(change: LedgerChange): void {
    const at = now();
    activity.observe(change, at);
    meterLedgerChange(meter, change, classes, sourceOf);
    switch (change.kind) {
      case 'job-unclassified':
        unclassified.inc({ source: change.job.source });
        break;
      case 'job-started': {
        const { job } = change;
        if (job.classification.matched) {
          queueSeconds.observe(
            { source: job.identity.source, class: job.classification.className },
            change.queuedForMs / 1000,
          );
        }
        break;
      }
      case 'job-completed':
        if (change.className && change.startedAt !== null) {
          jobSeconds.observe(
            { source: change.job.source, class: change.className },
            Math.max(0, change.completedAt - change.startedAt) / 1000,
          );
        }
        break;
      case 'runner-running': {
        const { runner } = change;
        if (!classes[runner.className]) break;
        startupSeconds.observe(
          { class: runner.className },
          Math.max(0, runner.runningSince - runner.createdAt) / 1000,
        );
        break;
      }
      case 'trust-violation':
        trustViolations.inc({ class: change.className, kind: change.violation });
        break;
      case 'runner-lost':
        if (change.midJob) runnersLost.inc({ class: change.runner.className, reason: change.reason });
        break;
      case 'runner-start-failed':
        startFailures.inc({ class: change.runner.className, reason: change.failure.reason });
        break;
      case 'job-queued':
        break;
    }
  }

  return {
    onChange,
    onPass(pass: { durationMs: number }): void {
      reconcileSeconds.observe(pass.durationMs / 1000);
    },
    /** A Tekton run Gantry admitted started (Tekton set its startTime) `delayMs` after admission. */
    observeRunStartDelay(className: string, delayMs: number): void {
      runStartSeconds.observe({ class: className }, delayMs / 1000);
    },
    /** Runners whose cost is still accruing (for tests and the status page). */
    get meteredRunners(): number {
      meter.settle(now());
      return meter.metered;
    },
    status(): StatusReport {
      const at = now();
      meter.settle(at);
      const snapshot = options.snapshot(at);
      const costToday = meter.costToday(at);
      return {
        generatedAt: new Date(at).toISOString(),
        classes: Object.entries(classes).map(([name, runnerClass]) => {
          const entry = snapshot?.classes[name];
          const count = (state: RunnerState) => entry?.runners.filter((r) => r.state === state).length ?? 0;
          return {
            name,
            queued: entry?.queued.length ?? 0,
            starting: count('starting'),
            idle: count('idle'),
            busy: count('busy'),
            terminating: count('terminating'),
            admitted: entry?.admittedRuns.length ?? 0,
            maxRunners: runnerClass.maxRunners,
            queueP95Seconds: activity.queueP95Seconds(name, at),
            costTodayDollars: costToday.get(name) ?? 0,
          };
        }),
        events: activity.events(),
      };
    },
  };
}

export type GantryMetrics = ReturnType<typeof createGantryMetrics>;
