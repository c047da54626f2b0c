import { describe, expect, it } from 'vitest';
import type { PipelineRun } from '../../../../src/sources/tekton/pipeline-run.ts';
import { runDeletedEvent, runEvent } from '../../../../src/sources/tekton/run-events.ts';

const NOW = Date.parse('2026-11-27T12:00:00.000Z');

function run(
  overrides: {
    spec?: PipelineRun['spec'];
    status?: PipelineRun['status'];
    annotations?: Record<string, string>;
  } = {},
): PipelineRun {
  return {
    metadata: {
      name: 'build-1',
      namespace: 'web',
      uid: 'u-1',
      creationTimestamp: '2026-11-27T11:59:00Z' as unknown as Date,
      labels: { team: 'web' },
      annotations: {
        'gantry.dev/class': 'pipelines',
        'gantry.dev/queued-at': '2026-11-27T11:59:00.250Z',
        ...overrides.annotations,
      },
    },
    spec: overrides.spec ?? { status: 'PipelineRunPending' },
    ...(overrides.status ? { status: overrides.status } : {}),
  };
}

describe('runEvent', () => {
  it('reads a run Gantry holds as queued since its queued-at stamp, keyed by uid, in the class it was put in', () => {
    expect(runEvent(run(), NOW)).toEqual({
      kind: 'queued',
      via: 'watch',
      createdAt: Date.parse('2026-11-27T11:59:00.250Z'),
      job: expect.objectContaining({
        source: 'tekton',
        key: 'tekton:u-1',
        repo: 'web',
        name: 'web/build-1',
        requestedClass: 'pipelines',
        tektonLabels: { team: 'web' },
      }),
    });
  });

  it('leaves alone a run its author holds, and a pending run Gantry never queued', () => {
    expect(runEvent(run({ annotations: { 'gantry.dev/held': 'user' } }), NOW)).toBeUndefined();
    const foreign = run();
    delete foreign.metadata?.annotations?.['gantry.dev/queued-at'];
    expect(runEvent(foreign, NOW)).toBeUndefined();
  });

  it('reads an admitted run as started at its admission', () => {
    const event = runEvent(
      run({ spec: {}, annotations: { 'gantry.dev/admitted-at': '2026-11-27T11:59:30.000Z' } }),
      NOW,
    );
    expect(event).toMatchObject({
      kind: 'started',
      startedAt: Date.parse('2026-11-27T11:59:30.000Z'),
      runnerName: null,
    });
  });

  it('reads a run that started without Gantry as started at its startTime', () => {
    const event = runEvent(run({ spec: {}, status: { startTime: '2026-11-27T11:59:40Z' } }), NOW);
    expect(event).toMatchObject({ kind: 'started', startedAt: Date.parse('2026-11-27T11:59:40Z') });
  });

  it('maps the Succeeded condition to the outcome', () => {
    const done = (status: string, reason: string) =>
      runEvent(
        run({
          spec: {},
          status: {
            startTime: '2026-11-27T11:59:40Z',
            completionTime: '2026-11-27T11:59:50Z',
            conditions: [{ type: 'Succeeded', status, reason }],
          },
        }),
        NOW,
      );
    expect(done('True', 'Succeeded')).toMatchObject({
      kind: 'completed',
      conclusion: 'success',
      startedAt: Date.parse('2026-11-27T11:59:40Z'),
      completedAt: Date.parse('2026-11-27T11:59:50Z'),
    });
    expect(done('False', 'Failed')).toMatchObject({ conclusion: 'failure' });
    expect(done('False', 'Cancelled')).toMatchObject({ conclusion: 'cancelled' });
    expect(done('False', 'PipelineRunTimeout')).toMatchObject({ conclusion: 'timed_out' });
    expect(done('Unknown', 'Running')).toMatchObject({ kind: 'started' });
  });

  it('reads a queued run Gantry cancelled as over at once, since it never started', () => {
    expect(runEvent(run({ spec: { status: 'Cancelled' } }), NOW)).toMatchObject({
      kind: 'completed',
      conclusion: 'cancelled',
      startedAt: null,
    });
  });

  it('ignores objects without a uid, namespace or name', () => {
    expect(runEvent({ spec: {} }, NOW)).toBeUndefined();
  });
});

describe('runDeletedEvent', () => {
  it('ends a deleted run, keeping when it started', () => {
    const event = runDeletedEvent(
      run({ spec: {}, annotations: { 'gantry.dev/admitted-at': '2026-11-27T11:59:30.000Z' } }),
      NOW,
    );
    expect(event).toMatchObject({
      kind: 'completed',
      conclusion: 'cancelled',
      startedAt: Date.parse('2026-11-27T11:59:30.000Z'),
      completedAt: NOW,
    });
  });
});
