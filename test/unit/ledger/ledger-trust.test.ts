import { describe, expect, it } from 'vitest';
import { buildRunnerTrustCheck } from '../../../src/classes/matching.ts';
import type { JobEvent, JobIdentity } from '../../../src/model/job.ts';
import { plan } from '../../../src/planner/plan.ts';
import { classes, githubJob, NOW, runnerPod, seconds, testLedger } from '../../support/builders.ts';

const sandbox = { namespace: 'sandbox', runnerGroup: 'sandbox', runtimeClassName: 'gvisor' };
const config = classes({
  lint: { minIdle: 1 },
  forks: { ...sandbox, untrusted: true, match: { github: { labels: ['self-hosted', 'lint'] } } },
});

const ledger = () => testLedger(config, { checkRunnerTrust: buildRunnerTrustCheck(config) });

const identity = (id: number, untrusted: boolean): JobIdentity =>
  githubJob(id, {
    repo: 'acme/oss',
    untrusted,
    origin: {
      event: 'pull_request',
      headBranch: 'patch-1',
      ...(untrusted ? { untrustedBecause: 'fork' } : {}),
    },
  });

const event = (kind: 'queued' | 'started', id: number, untrusted: boolean, runnerName = ''): JobEvent =>
  kind === 'queued'
    ? { kind, job: identity(id, untrusted), via: 'webhook', createdAt: NOW - seconds(30) }
    : {
        kind,
        job: identity(id, untrusted),
        via: 'webhook',
        createdAt: NOW - seconds(30),
        startedAt: NOW - seconds(5),
        runnerName,
      };

const pod = (name: string, className: string) =>
  runnerPod(name, {
    className,
    namespace: className === 'forks' ? 'sandbox' : 'gantry-runners',
    createdAt: NOW - seconds(60),
    runningSince: NOW - seconds(55),
  });

describe('the ledger and the runner GitHub gave a job', () => {
  it('reports an untrusted job on a trusted runner, and the planner deletes that runner at once', () => {
    const l = ledger();
    l.observeRunner(pod('gantry-lint-warm', 'lint'));
    l.applyJobEvent(event('queued', 1, true));
    const changes = l.applyJobEvent(event('started', 1, true, 'gantry-lint-warm'));
    expect(changes).toContainEqual(
      expect.objectContaining({
        kind: 'trust-violation',
        className: 'lint',
        runnerName: 'gantry-lint-warm',
        violation: 'untrusted-job',
        contained: true,
      }),
    );
    const snap = l.snapshot(config, NOW);
    expect(snap.classes.lint?.runners).toMatchObject([{ name: 'gantry-lint-warm', state: 'compromised' }]);
    expect(plan(snap, config, NOW)).toContainEqual(
      expect.objectContaining({
        kind: 'delete-runner',
        runnerName: 'gantry-lint-warm',
        reason: 'trust-violation',
      }),
    );
  });

  it('judges a runner whose pod is reported after its job started (a restart)', () => {
    const l = ledger();
    l.applyJobEvent(event('queued', 2, true));
    expect(l.applyJobEvent(event('started', 2, true, 'gantry-lint-late'))).not.toContainEqual(
      expect.objectContaining({ kind: 'trust-violation' }),
    );
    expect(l.observeRunner(pod('gantry-lint-late', 'lint'))).toContainEqual(
      expect.objectContaining({ kind: 'trust-violation', runnerName: 'gantry-lint-late' }),
    );
  });

  it('counts a trusted job on an untrusted runner without stopping it, and reports each runner once', () => {
    const l = ledger();
    l.observeRunner(pod('gantry-forks-1', 'forks'));
    l.applyJobEvent(event('queued', 3, false));
    const changes = l.applyJobEvent(event('started', 3, false, 'gantry-forks-1'));
    expect(changes).toContainEqual(
      expect.objectContaining({ kind: 'trust-violation', violation: 'trusted-job', contained: false }),
    );
    expect(l.snapshot(config, NOW).classes.forks?.runners).toMatchObject([{ state: 'busy' }]);
    expect(l.observeRunner(pod('gantry-forks-1', 'forks'))).toEqual([]);
  });

  it('holds a class whose runner group became unsafe: no new runner, idle ones go', () => {
    const l = ledger();
    l.observeRunner(pod('gantry-lint-idle', 'lint'));
    l.applyJobEvent(event('queued', 4, false));
    l.setPlacementHold('lint', 'unsafe');
    const actions = plan(l.snapshot(config, NOW), config, NOW);
    expect(actions.filter((a) => a.className === 'lint')).toEqual([
      expect.objectContaining({
        kind: 'delete-runner',
        runnerName: 'gantry-lint-idle',
        reason: 'placement-unsafe',
      }),
    ]);
    l.setPlacementHold('lint', 'unknown');
    // Not known yet: nothing new, but what exists stays.
    expect(plan(l.snapshot(config, NOW), config, NOW).filter((a) => a.className === 'lint')).toEqual([]);
    l.setPlacementHold('lint', undefined);
    expect(plan(l.snapshot(config, NOW), config, NOW).filter((a) => a.className === 'lint')).toEqual([
      expect.objectContaining({ kind: 'create-runner' }),
    ]);
  });
});
