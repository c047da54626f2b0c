import { describe, expect, it } from 'vitest';
import type { Ledger } from '../../../src/ledger/ledger.ts';
import type { JobEvent, JobIdentity } from '../../../src/model/job.ts';
import { classes, NOW, seconds, testLedger } from '../../support/builders.ts';

const config = classes({
  pipelines: { match: { tekton: { matchLabels: { team: 'web' } } }, maxRunners: 2, maxCreatePerSecond: 1 },
});

const ledger = () => testLedger(config, { deadlineGraceMs: 0 });

function run(uid: string, labels: Record<string, string> = { team: 'web' }): JobIdentity {
  return {
    source: 'tekton',
    key: `tekton:${uid}`,
    repo: 'web',
    labels: [],
    runId: uid,
    runAttempt: 1,
    untrusted: false,
    name: `web/${uid}`,
    tektonLabels: labels,
  };
}
const queued = (uid: string): JobEvent => ({
  kind: 'queued',
  job: run(uid),
  via: 'watch',
  createdAt: NOW - seconds(30),
});
const started = (uid: string): JobEvent => ({
  kind: 'started',
  job: run(uid),
  via: 'watch',
  createdAt: NOW - seconds(30),
  startedAt: NOW - seconds(5),
  runnerName: null,
});
const admit = (uid: string) => ({
  kind: 'admit-run' as const,
  className: 'pipelines',
  runKey: `tekton:${uid}`,
  repo: 'web',
});
const pipelinesOf = (l: Ledger) =>
  l.snapshot(config, NOW).classes.pipelines ?? { queued: [], runners: [], admittedRuns: [] };

describe('Ledger: Tekton runs', () => {
  it('holds a slot from the admission request on, and counts the queue wait up to the admission', () => {
    const l = ledger();
    l.applyJobEvent(queued('a'));
    l.applyJobEvent(queued('b'));
    expect(pipelinesOf(l)?.queued.map((j) => j.key)).toEqual(['tekton:a', 'tekton:b']);

    l.noteAdmitRequested(admit('a'), 1, NOW);
    expect(pipelinesOf(l)?.queued.map((j) => j.key)).toEqual(['tekton:b']);
    expect(pipelinesOf(l)?.admittedRuns).toEqual([{ key: 'tekton:a', repo: 'web' }]);
    expect(pipelinesOf(l)?.budget?.tokens).toBeLessThan(1);

    const changes = l.applyJobEvent(started('a'));
    expect(changes).toEqual([expect.objectContaining({ kind: 'job-started', queuedForMs: seconds(25) })]);
    expect(pipelinesOf(l)?.admittedRuns).toEqual([{ key: 'tekton:a', repo: 'web' }]);
  });

  it('puts a run back in the queue when its admission failed', () => {
    const l = ledger();
    l.applyJobEvent(queued('a'));
    l.noteAdmitRequested(admit('a'), 1, NOW);
    l.noteRunActionFailed('tekton:a');
    expect(pipelinesOf(l)?.queued.map((j) => j.key)).toEqual(['tekton:a']);
    expect(pipelinesOf(l)?.admittedRuns).toEqual([]);
  });

  it('takes a run out of the queue while its cancellation is on its way, and frees its slot when it ends', () => {
    const l = ledger();
    l.applyJobEvent(queued('a'));
    l.noteCancelRequested('tekton:a');
    expect(pipelinesOf(l)?.queued).toEqual([]);
    expect(pipelinesOf(l)?.admittedRuns).toEqual([]);

    l.applyJobEvent(started('b'));
    expect(pipelinesOf(l)?.admittedRuns).toHaveLength(1);
    l.applyJobEvent({
      kind: 'completed',
      job: run('b'),
      via: 'watch',
      createdAt: NOW - seconds(30),
      startedAt: NOW - seconds(5),
      completedAt: NOW,
      conclusion: 'success',
      runnerName: null,
    });
    expect(pipelinesOf(l)?.admittedRuns).toEqual([]);
  });

  it('counts a run that started without Gantry (webhook down, released by its author) as holding a slot', () => {
    const l = ledger();
    l.applyJobEvent(started('x'));
    expect(pipelinesOf(l)?.admittedRuns).toEqual([{ key: 'tekton:x', repo: 'web' }]);
  });
});
