import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createRunnerController } from '../../../src/controller/runner-controller.ts';
import type { KubeApis } from '../../../src/kube/client.ts';
import type { Action } from '../../../src/model/action.ts';
import type { JobEvent } from '../../../src/model/job.ts';
import { classes, githubJob, NOW, queuedEvent } from '../../support/builders.ts';
import { memoryRegistrar } from '../../support/memory-registrar.ts';
import { until } from '../../support/until.ts';

/** Job `id` of a class (its labels), queued at NOW. */
const queued = (className: string, id: number): JobEvent =>
  queuedEvent(githubJob(id, { key: `github:${className}-${id}`, labels: ['self-hosted', className] }), NOW);

describe('runner controller: what a change plans', () => {
  it('plans the class of a job event at once, and leaves the other classes to their own changes', async () => {
    const config = classes({
      a: { maxRunners: 10, maxCreatePerSecond: 100 },
      b: { maxRunners: 10, maxCreatePerSecond: 100 },
    });
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    // Writes that succeed without an apiserver: the test looks at what the passes plan, not at pods.
    const core = {
      createNamespacedPod: async () => ({ metadata: { uid: 'uid' } }),
      createNamespacedSecret: async () => ({}),
    } as unknown as KubeApis['core'];
    const planned: Action[] = [];
    const controller = createRunnerController({
      kc,
      apis: { core } as KubeApis,
      classes: config,
      registrar: memoryRegistrar(),
      logger: pino({ level: 'silent' }),
      startTimeoutMs: 600_000,
      capacityTimeoutMs: 1_800_000,
      deadlineGraceMs: 0,
      // No periodic pass within the test.
      reconcilePeriodMs: 600_000,
      concurrency: { initial: 8, min: 1, max: 8 },
      onPass: ({ actions }) => planned.push(...actions),
    });
    controller.startActing();
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Class b's job reaches the ledger without a trigger; class a's comes as a source's event.
    controller.ledger.applyJobEvent(queued('b', 1));
    controller.applyJobEvent(queued('a', 1));
    await until('a’s runner planned', async () => planned.some((a) => a.className === 'a'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(planned.map((a) => a.className)).toEqual(['a']);
    await controller.stopActing();
  });
});
