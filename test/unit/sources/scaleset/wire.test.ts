import { describe, expect, it } from 'vitest';
import {
  jwtExpiry,
  readQueueMessage,
  readServiceError,
  WireError,
} from '../../../../src/sources/scaleset/wire.ts';
import {
  jobMessage,
  queueMessage,
  serviceError,
  signJwt,
} from '../../../support/fake-actions-service/wire.ts';

// The readers of the Actions service's JSON, on what the fake (written from GitHub's client) sends.

const job = {
  runnerRequestId: 42,
  scaleSetId: 1,
  jobId: 'a1b2',
  repositoryName: 'app',
  ownerName: 'acme',
  workflowRef: 'acme/app/.github/workflows/ci.yml@refs/heads/main',
  displayName: 'build',
  workflowRunId: 77,
  eventName: 'push',
  labels: ['self-hosted', 'lint'],
  state: 'running' as const,
  queuedAt: Date.UTC(2026, 0, 1),
  scaleSetAssignedAt: Date.UTC(2026, 0, 1, 0, 0, 2),
  runnerAssignedAt: Date.UTC(2026, 0, 1, 0, 0, 9),
  finishedAt: null,
  runner: { id: 9, name: 'gantry-lint-x' },
  result: null,
  requeues: 0,
  dueAt: null,
};
const stats = {
  totalAvailableJobs: 0,
  totalAcquiredJobs: 0,
  totalAssignedJobs: 1,
  totalRunningJobs: 1,
  totalRegisteredRunners: 1,
  totalBusyRunners: 1,
  totalIdleRunners: 0,
};

describe('reading the Actions service', () => {
  it('reads a message: statistics and job messages, unset times as null', () => {
    const read = readQueueMessage(queueMessage(5, [jobMessage('JobStarted', job, 'http://t/')], stats));
    expect(read.messageId).toBe(5);
    expect(read.statistics).toMatchObject({ assignedJobs: 1, runningJobs: 1, busyRunners: 1 });
    expect(read.problems).toEqual([]);
    expect(read.jobs).toEqual([
      expect.objectContaining({
        type: 'JobStarted',
        runnerRequestId: 42,
        repo: 'acme/app',
        queuedAt: job.queuedAt,
        runnerAssignedAt: job.runnerAssignedAt,
        finishedAt: null,
        runnerId: 9,
        runnerName: 'gantry-lint-x',
      }),
    ]);
  });

  it('names what is wrong with a job message and keeps the others', () => {
    const good = jobMessage('JobAssigned', job, 'http://t/');
    const read = readQueueMessage({
      messageId: 6,
      messageType: 'RunnerScaleSetJobMessages',
      body: JSON.stringify([
        { ...good, runnerRequestId: -1 },
        { ...good, ownerName: '../etc' },
        { ...good, messageType: 'JobExploded' },
        good,
      ]),
      statistics: stats,
    });
    expect(read.jobs).toHaveLength(1);
    expect(read.problems).toEqual([
      'message 6.body[0].runnerRequestId: expected a positive id, got -1',
      'message 6.body[1].ownerName: expected a GitHub account, got "../etc"',
      'message 6.body[2].messageType: unknown type "JobExploded"',
    ]);
  });

  it('refuses a message whose body is not a JSON array, naming it', () => {
    expect(() =>
      readQueueMessage({
        messageId: 7,
        messageType: 'RunnerScaleSetJobMessages',
        body: '{',
        statistics: stats,
      }),
    ).toThrow(WireError);
    expect(() =>
      readQueueMessage({
        messageId: 7,
        messageType: 'RunnerScaleSetJobMessages',
        body: '{}',
        statistics: stats,
      }),
    ).toThrow('message 7.body: expected a JSON array, got an object');
    expect(() => readQueueMessage({ messageType: 'x' })).toThrow(
      'message.messageId: expected a positive id, got nothing',
    );
  });

  it('reads the service’s exception names and a token’s expiry', () => {
    expect(readServiceError(serviceError('RunnerScaleSetSessionConflictException', 'busy'))).toEqual({
      exception: 'RunnerScaleSetSessionConflictException',
      message: 'busy',
    });
    const exp = Math.floor(Date.UTC(2026, 0, 1) / 1000);
    expect(jwtExpiry(signJwt({ exp }, Buffer.from('k')))).toBe(exp * 1000);
    expect(jwtExpiry('not-a-jwt')).toBeNull();
  });
});
