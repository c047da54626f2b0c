import { describe, expect, it } from 'vitest';
import type { JobEvent, JobOrigin } from '../../../../src/model/job.ts';
import { JobBook } from '../../../../src/sources/scaleset/job-book.ts';
import type { JobMessage, QueueMessage, Statistics } from '../../../../src/sources/scaleset/wire.ts';

// The job book alone: messages in, job events and acknowledgements out, no I/O.

const T0 = Date.UTC(2026, 5, 1, 12, 0, 0);
const PUSH: JobOrigin = { event: 'push', headBranch: 'main' };

function news(type: JobMessage['type'], id: number, extra: Partial<JobMessage> = {}): JobMessage {
  const ran = type === 'JobStarted' || type === 'JobCompleted';
  return {
    type,
    runnerRequestId: id,
    repo: 'acme/app',
    jobId: `job-${id}`,
    workflowRef: 'acme/app/.github/workflows/ci.yml@refs/heads/main',
    displayName: `build ${id}`,
    workflowRunId: 9_000 + id,
    eventName: 'push',
    labels: ['self-hosted', 'lint'],
    queuedAt: T0,
    scaleSetAssignedAt: T0 + 1_000,
    runnerAssignedAt: ran ? T0 + 5_000 : null,
    finishedAt: type === 'JobCompleted' ? T0 + 65_000 : null,
    runnerId: ran ? 100 + id : 0,
    runnerName: ran ? `gantry-lint-${id}` : '',
    result: type === 'JobCompleted' ? 'succeeded' : '',
    ...extra,
  };
}

const message = (messageId: number, jobs: JobMessage[], problems: string[] = []): QueueMessage => ({
  messageId,
  statistics: null,
  jobs,
  problems,
});

const stats = (assigned: number, running: number): Statistics => ({
  availableJobs: 0,
  acquiredJobs: 0,
  assignedJobs: assigned,
  runningJobs: running,
  registeredRunners: 0,
  busyRunners: running,
  idleRunners: 0,
});

const book = (epoch?: number) =>
  new JobBook({
    className: 'lint',
    scaleSetId: 3,
    labels: ['self-hosted', 'lint'],
    maxRetentionMs: 3_600_000,
    ...(epoch !== undefined ? { epoch } : {}),
  });
const known = () => PUSH;
const summary = (events: readonly JobEvent[]) => events.map((e) => `${e.kind} ${e.job.key}`);

describe('job book', () => {
  it('queues, starts and completes a job, with queue time from GitHub’s queue and the runner named', () => {
    const b = book();
    const queued = b.apply(message(1, [news('JobAssigned', 7)]), T0 + 1_000, known).events;
    expect(queued).toEqual([
      {
        kind: 'queued',
        via: 'poll',
        createdAt: T0,
        job: {
          source: 'github',
          key: 'github:scaleset/3/7',
          repo: 'acme/app',
          labels: ['self-hosted', 'lint'],
          runId: '9007',
          runAttempt: 1,
          untrusted: false,
          origin: PUSH,
          name: 'build 7',
          requestedClass: 'lint',
        },
      },
    ]);
    const started = b.apply(message(2, [news('JobStarted', 7)]), T0 + 5_000, known).events;
    expect(started).toMatchObject([{ kind: 'started', startedAt: T0 + 5_000, runnerName: 'gantry-lint-7' }]);
    const completed = b.apply(message(3, [news('JobCompleted', 7)]), T0 + 65_000, known).events;
    expect(completed).toMatchObject([
      { kind: 'completed', startedAt: T0 + 5_000, completedAt: T0 + 65_000, conclusion: 'success' },
    ]);
  });

  it('keeps a message while it holds the latest news of a job that waits or runs, and lets it go after', () => {
    const b = book();
    b.apply(message(1, [news('JobAssigned', 7), news('JobAssigned', 8)]), T0, known);
    expect(b.acknowledgeable()).toEqual([]);
    b.apply(message(2, [news('JobStarted', 7)]), T0, known);
    // Message 1 still holds job 8's news; message 2 holds job 7's.
    expect(b.acknowledgeable()).toEqual([]);
    b.apply(message(3, [news('JobStarted', 8)]), T0, known);
    expect(b.acknowledgeable()).toEqual([1]);
    b.acknowledged(1);
    b.apply(message(4, [news('JobCompleted', 7), news('JobCompleted', 8)]), T0, known);
    expect(b.acknowledgeable()).toEqual([2, 3, 4]);
  });

  it('applies a message once: a new session’s second delivery changes nothing', () => {
    const b = book();
    b.apply(message(1, [news('JobAssigned', 7)]), T0, known);
    const again = b.apply(message(1, [news('JobAssigned', 7)]), T0, known);
    expect(again).toEqual({ events: [], redelivered: true });
  });

  it('rebuilds a predecessor’s picture from the messages it kept: waiting and running jobs, with their runners', () => {
    const b = book();
    const events = [
      ...b.apply(message(5, [news('JobAssigned', 7), news('JobAssigned', 8)]), T0, known).events,
      ...b.apply(message(9, [news('JobStarted', 7)]), T0, known).events,
    ];
    expect(summary(events)).toEqual([
      'queued github:scaleset/3/7',
      'queued github:scaleset/3/8',
      'started github:scaleset/3/7',
    ]);
  });

  it('takes a job the service took back out of the queue, and queues it under a new key when it comes again', () => {
    const b = book();
    const events = [
      ...b.apply(message(1, [news('JobAssigned', 7)]), T0, known).events,
      // No runner picked it up in time: the service cancels the assignment.
      ...b.apply(
        message(2, [news('JobCompleted', 7, { result: 'canceled', runnerId: 0, runnerName: '' })]),
        T0,
        known,
      ).events,
      ...b.apply(message(3, [news('JobAvailable', 7), news('JobAssigned', 7)]), T0, known).events,
    ];
    expect(summary(events)).toEqual([
      'queued github:scaleset/3/7',
      'completed github:scaleset/3/7',
      'queued github:scaleset/3/7/2',
    ]);
    expect(events[1]).toMatchObject({ startedAt: null, conclusion: 'cancelled', runnerName: null });
    expect(b.acknowledgeable()).toEqual([1, 2]);
  });

  it('holds a job’s events until its origin is known, and then tells them in order', () => {
    const b = book();
    const none = () => undefined;
    expect(b.apply(message(1, [news('JobAssigned', 7)]), T0, none).events).toEqual([]);
    expect(b.apply(message(2, [news('JobStarted', 7)]), T0, none).events).toEqual([]);
    expect(b.awaitingOrigin().map((n) => n.runnerRequestId)).toEqual([7]);
    const fork: JobOrigin = { event: 'pull_request', headBranch: null, untrustedBecause: 'fork' };
    const events = b.resolveOrigin(7, fork, T0);
    expect(summary(events)).toEqual(['queued github:scaleset/3/7', 'started github:scaleset/3/7']);
    expect(events.every((e) => e.job.untrusted && e.job.origin === fork)).toBe(true);
    expect(b.awaitingOrigin()).toEqual([]);
  });

  it('queues the waiting jobs the statistics count and no message named, never on top of named ones', () => {
    const b = book();
    const first = b.setStatistics(stats(3, 0), T0);
    expect(first.map((e) => e.kind)).toEqual(['queued', 'queued', 'queued']);
    expect(first[0]?.job).toMatchObject({
      key: 'github:scaleset/3/unnamed/1',
      requestedClass: 'lint',
      untrusted: false,
    });
    // Two of them are named now: the unnamed ones go down to one.
    b.apply(message(1, [news('JobAssigned', 7), news('JobAssigned', 8)]), T0, known);
    expect(summary(b.setStatistics(stats(3, 0), T0))).toEqual([
      'completed github:scaleset/3/unnamed/3',
      'completed github:scaleset/3/unnamed/2',
    ]);
    expect(b.counts().unnamed).toBe(1);
    // Running jobs are not waiting ones.
    b.apply(message(2, [news('JobStarted', 7), news('JobStarted', 8)]), T0, known);
    expect(b.setStatistics(stats(3, 2), T0)).toEqual([]);
  });

  it('hands over on losing the session: what it told ends, and a later hold uses new keys', () => {
    const b = book();
    b.apply(message(1, [news('JobAssigned', 7), news('JobAssigned', 8)]), T0, known);
    b.apply(message(2, [news('JobStarted', 7)]), T0, known);
    b.setStatistics(stats(3, 1), T0);
    const events = b.handOver(T0 + 1_000);
    expect(summary(events).sort()).toEqual([
      'completed github:scaleset/3/7',
      'completed github:scaleset/3/8',
      'completed github:scaleset/3/unnamed/1',
    ]);
    expect(events.every((e) => e.kind === 'completed' && e.startedAt === null)).toBe(true);
    const later = book(1).apply(message(1, [news('JobAssigned', 8)]), T0, known).events;
    expect(summary(later)).toEqual(['queued github:scaleset/3/8@1']);
  });

  it('lets go of news kept past the retention, ending its jobs', () => {
    const b = book();
    b.apply(message(1, [news('JobAssigned', 7)]), T0, known);
    b.apply(
      message(2, [], ['message 2.body[0].runnerRequestId: expected a positive id, got "seven"']),
      T0,
      known,
    );
    expect(b.acknowledgeable()).toEqual([]);
    expect(b.expire(T0 + 60_000)).toEqual([]);
    const events = b.expire(T0 + 3_600_000);
    expect(summary(events)).toEqual(['completed github:scaleset/3/7']);
    expect(b.acknowledgeable()).toEqual([1, 2]);
  });
});
