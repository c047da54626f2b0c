import { describe, expect, it } from 'vitest';
import {
  dollarsFor,
  overlapMs,
  runnerHourlyRate,
  splitBusyIdle,
  utcDayStart,
} from '../../../src/metrics/cost.ts';
import { CostMeter } from '../../../src/metrics/cost-meter.ts';

const HOUR = 3_600_000;
/** A class's pod parts beyond the runner container's resources: none. */
const RUNNER_ONLY = { workspace: { sizeLimit: '20Gi' }, sidecars: [], initContainers: [] };
const sidecar = (requests: Record<string, string>) => ({
  name: 'proxy',
  image: 'proxy:1',
  env: {},
  resources: { requests, limits: {} },
  volumeMounts: [],
});
const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);

describe('the cost arithmetic', () => {
  it('prices a runner by its requested vCPUs and GiB plus the per-runner rate', () => {
    const rate = runnerHourlyRate({
      ...RUNNER_ONLY,
      resources: { requests: { cpu: '500m', memory: '2Gi' }, limits: {} },
      cost: { perVcpuHour: 0.04, perGibHour: 0.005, perRunnerHour: 0.01 },
    });
    expect(rate).toBeCloseTo(0.5 * 0.04 + 2 * 0.005 + 0.01, 12);
  });

  it('takes a missing request from the limit, as Kubernetes does', () => {
    const rate = runnerHourlyRate({
      ...RUNNER_ONLY,
      resources: { requests: {}, limits: { cpu: '2', memory: '512Mi' } },
      cost: { perVcpuHour: 1, perGibHour: 1, perRunnerHour: 0 },
    });
    expect(rate).toBeCloseTo(2.5, 12);
  });

  it('adds what sidecars request, and counts an init container only where it asks for more', () => {
    const rate = runnerHourlyRate({
      ...RUNNER_ONLY,
      resources: { requests: { cpu: '1', memory: '1Gi' }, limits: {} },
      sidecars: [sidecar({ cpu: '500m', memory: '512Mi' })],
      initContainers: [{ ...sidecar({ cpu: '4', memory: '1Gi' }), name: 'warm' }],
      cost: { perVcpuHour: 1, perGibHour: 1, perRunnerHour: 0 },
    });
    // cpu: the init container's 4 beats runner + sidecar (1.5); memory: 1.5 GiB beats the init's 1.
    expect(rate).toBeCloseTo(4 + 1.5, 12);
  });

  it('splits a span into busy (overlapping the job) and idle', () => {
    const span = { from: 0, to: 10_000 };
    expect(splitBusyIdle(span, undefined)).toEqual({ busy: 0, idle: 10_000 });
    expect(splitBusyIdle(span, { from: 2_000, to: 7_000 })).toEqual({ busy: 5_000, idle: 5_000 });
    expect(splitBusyIdle(span, { from: 8_000, to: Number.POSITIVE_INFINITY })).toEqual({
      busy: 2_000,
      idle: 8_000,
    });
    expect(overlapMs({ from: 0, to: 1 }, { from: 5, to: 9 })).toBe(0);
    expect(dollarsFor(HOUR / 2, 3)).toBe(1.5);
    expect(utcDayStart(T0 + 5_000)).toBe(Date.UTC(2026, 0, 15));
  });
});

function meter(options: { startedAt?: number; settleMs?: number } = {}) {
  const totals = new Map<string, number>();
  const m = new CostMeter({
    startedAt: options.startedAt ?? T0 - HOUR,
    settleMs: options.settleMs ?? 10_000,
    onCost: (key, use, dollars) => {
      const k = `${key.className}/${use}`;
      totals.set(k, (totals.get(k) ?? 0) + dollars);
    },
  });
  return { m, totals };
}
const key = { className: 'lint', source: 'github' };

describe('the cost meter', () => {
  it('charges a runner from running to its end, busy while its job ran', () => {
    const { m, totals } = meter();
    m.running('r1', key, 3.6, T0); // $0.001 per second
    m.jobStarted('r1', T0 + 10_000);
    m.jobCompleted('r1', T0 + 10_000, T0 + 70_000);
    m.ended('r1', T0 + 75_000);
    m.gone('r1', T0 + 76_000);
    m.settle(T0 + 76_000);
    expect(totals.get('lint/busy')).toBeCloseTo(0.06, 12);
    expect(totals.get('lint/idle')).toBeCloseTo(0.015, 12);
    expect(m.metered).toBe(0);
  });

  it('accrues a live runner only up to the settle horizon, so a late job start still counts as busy', () => {
    const { m, totals } = meter({ settleMs: 10_000 });
    m.running('r1', key, 3.6, T0);
    m.settle(T0 + 20_000); // accounts [T0, T0+10s] idle
    expect(totals.get('lint/idle')).toBeCloseTo(0.01, 12);
    // The job started at T0+12s, and Gantry hears of it at T0+21s.
    m.jobStarted('r1', T0 + 12_000);
    m.settle(T0 + 40_000);
    expect(totals.get('lint/idle')).toBeCloseTo(0.012, 12);
    expect(totals.get('lint/busy')).toBeCloseTo(0.018, 12);
  });

  it('waits for a gone runner’s job to end before its last accounting, up to the settle time', () => {
    const { m, totals } = meter({ settleMs: 10_000 });
    m.running('r1', key, 3.6, T0);
    m.jobStarted('r1', T0 + 1_000);
    m.gone('r1', T0 + 5_000, T0 + 4_000);
    m.settle(T0 + 5_000);
    expect(m.metered).toBe(1);
    m.jobCompleted('r1', T0 + 1_000, T0 + 3_000);
    m.settle(T0 + 6_000);
    expect(m.metered).toBe(0);
    expect(totals.get('lint/busy')).toBeCloseTo(0.002, 12);
    expect(totals.get('lint/idle')).toBeCloseTo(0.002, 12);
  });

  it('does not charge time before it started (an earlier process counted it) nor runners that never ran', () => {
    const { m, totals } = meter({ startedAt: T0 });
    m.running('old', key, 3.6, T0 - 3_600_000);
    m.gone('old', T0 + 2_000, T0 + 2_000);
    m.jobStarted('never', T0);
    m.gone('never', T0 + 1_000);
    m.settle(T0 + 60_000);
    expect(totals.get('lint/idle')).toBeCloseTo(0.002, 12);
    expect(totals.get('lint/busy')).toBeUndefined();
  });

  it('reports cost for today’s UTC date only', () => {
    const midnight = Date.UTC(2026, 0, 16);
    const { m } = meter({ startedAt: midnight - HOUR, settleMs: 0 });
    m.running('r1', key, 3.6, midnight - 10_000);
    m.settle(midnight + 5_000);
    expect(m.costToday(midnight + 5_000).get('lint')).toBeCloseTo(0.005, 12);
    expect(m.costToday(midnight + 86_400_000).get('lint')).toBeUndefined();
  });
});
