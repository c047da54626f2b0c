import { describe, expect, it } from 'vitest';
import { ClassIndexedMap } from '../../../src/ledger/by-class.ts';
import type { Ledger } from '../../../src/ledger/ledger.ts';
import type { JobEvent } from '../../../src/model/job.ts';
import type { LedgerSnapshot } from '../../../src/model/ledger-snapshot.ts';
import { classes, NOW, seconds, testLedger } from '../../support/builders.ts';

// A pass that plans a few classes reads only those from the ledger: it must see them exactly as a
// full snapshot does.

const config = classes({
  lint: { namespace: 'shared', resources: { requests: { cpu: '1' } } },
  build: { namespace: 'shared', resources: { requests: { cpu: '2' } } },
  release: { namespace: 'own' },
});

const queued = (id: number, className: string, repo = 'acme/app'): JobEvent => ({
  kind: 'queued',
  job: {
    source: 'github',
    key: `github:${id}`,
    repo,
    labels: ['self-hosted', className],
    runId: String(id),
    runAttempt: 1,
    untrusted: false,
    name: `job ${id}`,
  },
  via: 'webhook',
  createdAt: NOW - seconds(id),
});

function filled(): Ledger {
  const ledger = testLedger(config);
  const names = ['lint', 'build', 'release'];
  for (let id = 1; id <= 30; id++)
    ledger.applyJobEvent(queued(id, names[id % 3] as string, `acme/r${id % 4}`));
  // Jobs no class takes are in the ledger too, under no class.
  ledger.applyJobEvent(queued(99, 'nobody'));
  for (let i = 0; i < 12; i++) {
    const className = names[i % 3] as string;
    ledger.observeRunner({
      name: `${className}-${i}`,
      namespace: className === 'release' ? 'own' : 'shared',
      className,
      phase: i % 4 === 0 ? 'Pending' : 'Running',
      createdAt: NOW - seconds(100),
      ...(i % 4 === 0 ? {} : { runningSince: NOW - seconds(90) }),
      deleting: false,
    });
  }
  // A runner made for a class no longer configured.
  ledger.observeRunner({
    name: 'old-1',
    namespace: 'shared',
    className: 'old',
    phase: 'Running',
    createdAt: NOW - seconds(100),
    runningSince: NOW - seconds(90),
    deleting: false,
  });
  ledger.forgetRunner('lint-3', NOW);
  const done = queued(4, 'build');
  ledger.applyJobEvent({
    kind: 'completed',
    job: done.job,
    via: 'webhook',
    createdAt: done.createdAt,
    completedAt: NOW,
    startedAt: NOW,
    conclusion: 'success',
    runnerName: null,
  });
  ledger.setQuotaLimits('shared', { 'requests.cpu': { hard: 40_000, used: 1_000 } });
  ledger.setQuotaLimits('own', {});
  ledger.noteQuotaExceeded('own', NOW + seconds(5));
  return ledger;
}

/** The full snapshot cut down to `only` and to the quotas of their namespaces. */
function restricted(full: LedgerSnapshot, only: ReadonlySet<string>): LedgerSnapshot {
  const namespaces = new Set([...only].map((name) => config[name]?.namespace));
  return {
    ...full,
    classes: Object.fromEntries(Object.entries(full.classes).filter(([name]) => only.has(name))),
    quotas: Object.fromEntries(Object.entries(full.quotas).filter(([ns]) => namespaces.has(ns))),
  };
}

describe('a snapshot of some classes', () => {
  it('shows each of them as the full snapshot does, with the quotas of their namespaces', () => {
    const ledger = filled();
    const full = ledger.snapshot(config, NOW);
    expect(Object.keys(full.classes).sort()).toEqual(['build', 'lint', 'old', 'release']);
    for (const only of [
      ['lint'],
      ['build'],
      ['release'],
      ['lint', 'release'],
      ['lint', 'build', 'release'],
    ]) {
      const set = new Set(only);
      expect(ledger.snapshot(config, NOW, set)).toEqual(restricted(full, set));
    }
  });

  it('counts the runners of every class in a shared namespace against its quota', () => {
    const ledger = filled();
    // Only lint is planned, but build's runners hold quota in the same namespace.
    const lintOnly = ledger.snapshot(config, NOW, new Set(['lint']));
    expect(lintOnly.quotas.shared).toEqual(ledger.snapshot(config, NOW).quotas.shared);
    expect(lintOnly.quotas.shared?.remaining['requests.cpu']).toBeLessThan(39_000);
  });
});

describe('class-indexed map', () => {
  it('files entries under their class, and moves or drops them with the entry', () => {
    const map = new ClassIndexedMap<{ className?: string; n: number }>((v) => v.className);
    map.set('a', { className: 'x', n: 1 });
    map.set('b', { className: 'y', n: 2 });
    map.set('c', { n: 3 });
    map.set('a', { className: 'y', n: 4 });
    expect([...map.inClass('x')]).toEqual([]);
    expect([...map.inClass('y')].map((v) => v.n).sort()).toEqual([2, 4]);
    expect([...map.classNames()]).toEqual(['y']);
    map.delete('b');
    expect([...map.inClass('y')].map((v) => v.n)).toEqual([4]);
    expect(map.size).toBe(2);
    map.clear();
    expect([...map.inClass('y')]).toEqual([]);
  });
});
