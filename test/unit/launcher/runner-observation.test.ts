import type { V1Pod, V1PodCondition, V1PodStatus } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { lostReason, observeRunnerPod } from '../../../src/launcher/runner-observation.ts';

// How a runner pod's status reads to the ledger: what the kubelet, the scheduler, the node lifecycle
// controller and the pod garbage collector write there, as the local control plane showed it.

const NAME = 'gantry-build-0a1b2c3d4e';
const CREATED = '2026-12-07T20:35:18Z';

function pod(status: V1PodStatus, metadata: Partial<V1Pod['metadata']> = {}): V1Pod {
  return {
    metadata: {
      name: NAME,
      namespace: 'ci',
      creationTimestamp: new Date(CREATED),
      labels: { 'gantry.dev/class': 'build' },
      ...metadata,
    },
    spec: { containers: [{ name: 'runner', image: 'runner:1' }] },
    status,
  };
}

const condition = (type: string, status: string, reason?: string, at = CREATED): V1PodCondition => ({
  type,
  status,
  ...(reason ? { reason } : {}),
  lastTransitionTime: new Date(at),
});
const running = { running: { startedAt: new Date(CREATED) } };

describe('observeRunnerPod', () => {
  it('reads a pod of a deleted node as the pod garbage collector leaves it: failed, node lost', () => {
    // Seen on the local control plane 45 s after `kubectl delete node`: phase Failed, the container
    // still "running" (no kubelet to say otherwise), DisruptionTarget DeletionByPodGC.
    const observed = observeRunnerPod(
      pod({
        phase: 'Failed',
        conditions: [
          condition('Ready', 'True'),
          condition('PodScheduled', 'True'),
          condition('DisruptionTarget', 'True', 'DeletionByPodGC', '2026-12-07T20:36:06Z'),
        ],
        containerStatuses: [
          { name: 'runner', image: 'runner:1', imageID: '', ready: true, restartCount: 0, state: running },
        ],
      }),
    );
    expect(observed).toMatchObject({ phase: 'Failed', lost: 'node-lost', failureReason: 'DeletionByPodGC' });
    expect(observed?.scheduledAt).toBe(Date.parse(CREATED));
  });

  it('tells node loss, evictions and OOM kills apart, from the pod alone', () => {
    const lost = (status: V1PodStatus) => lostReason(pod(status));
    const disrupted = (reason: string) => ({ conditions: [condition('DisruptionTarget', 'True', reason)] });
    expect(lost({ phase: 'Running', ...disrupted('DeletionByTaintManager') })).toBe('node-lost');
    expect(lost({ phase: 'Running', ...disrupted('EvictionByEvictionAPI') })).toBe('evicted');
    expect(lost({ phase: 'Running', ...disrupted('PreemptionByScheduler') })).toBe('evicted');
    expect(lost({ phase: 'Failed', reason: 'Evicted', ...disrupted('TerminationByKubelet') })).toBe(
      'evicted',
    );
    // Graceful node shutdown: the same condition reason, another status reason.
    expect(lost({ phase: 'Failed', reason: 'Terminated', ...disrupted('TerminationByKubelet') })).toBe(
      'node-lost',
    );
    expect(lost({ phase: 'Failed', reason: 'Evicted' })).toBe('evicted');
    expect(lost({ phase: 'Unknown', reason: 'NodeLost' })).toBe('node-lost');
    const oom = { terminated: { exitCode: 137, reason: 'OOMKilled' } };
    const runner = { name: 'runner', image: 'runner:1', imageID: '', ready: false, restartCount: 0 };
    expect(lost({ phase: 'Failed', containerStatuses: [{ ...runner, state: oom }] })).toBe('oom-killed');
    expect(
      lost({ phase: 'Running', containerStatuses: [{ ...runner, state: running, lastState: oom }] }),
    ).toBe('oom-killed');
    // Not losses: a deadline, a job that failed, a disruption condition that is not true.
    expect(lost({ phase: 'Failed', reason: 'DeadlineExceeded' })).toBeUndefined();
    expect(
      lost({
        phase: 'Failed',
        containerStatuses: [{ ...runner, state: { terminated: { exitCode: 1, reason: 'Error' } } }],
      }),
    ).toBeUndefined();
    expect(
      lost({ phase: 'Running', conditions: [condition('DisruptionTarget', 'False', 'DeletionByPodGC')] }),
    ).toBeUndefined();
    // A sidecar killed for memory is restarted by the kubelet: the runner goes on.
    expect(
      lost({
        phase: 'Running',
        containerStatuses: [{ ...runner, name: 'proxy', state: running, lastState: oom }],
      }),
    ).toBeUndefined();
  });

  it('reads an image that does not pull, in the runner or in an init container, as a start failure', () => {
    const waiting = (reason: string, message: string) => ({ waiting: { reason, message } });
    const status = (name: string, state: object) => ({
      name,
      image: 'x',
      imageID: '',
      ready: false,
      restartCount: 0,
      state,
    });
    expect(
      observeRunnerPod(
        pod({
          phase: 'Pending',
          conditions: [condition('PodScheduled', 'True')],
          containerStatuses: [
            status(
              'runner',
              waiting('ErrImagePull', 'failed to pull image "registry.unpullable.invalid/r:1"'),
            ),
          ],
        }),
      )?.startFailure,
    ).toEqual({
      reason: 'image-pull',
      detail: 'ErrImagePull',
      container: 'runner',
      message: 'failed to pull image "registry.unpullable.invalid/r:1"',
    });
    expect(
      observeRunnerPod(
        pod({
          phase: 'Pending',
          initContainerStatuses: [status('proxy', waiting('ImagePullBackOff', 'Back-off pulling image'))],
          containerStatuses: [status('runner', waiting('PodInitializing', ''))],
        }),
      )?.startFailure,
    ).toMatchObject({ reason: 'image-pull', detail: 'ImagePullBackOff', container: 'proxy' });
    expect(
      observeRunnerPod(
        pod({
          phase: 'Pending',
          containerStatuses: [
            status('runner', waiting('CreateContainerConfigError', 'configmap "ci-tools" not found')),
          ],
        }),
      )?.startFailure,
    ).toMatchObject({ reason: 'container-config', container: 'runner' });
  });

  it('does not fail a runner whose kubelet got there before its JIT Secret, nor one just creating', () => {
    const status = (state: object) => ({
      name: 'runner',
      image: 'x',
      imageID: '',
      ready: false,
      restartCount: 0,
      state,
    });
    const early = observeRunnerPod(
      pod({
        phase: 'Pending',
        containerStatuses: [
          status({
            waiting: { reason: 'CreateContainerConfigError', message: `secret "${NAME}-jit" not found` },
          }),
        ],
      }),
    );
    expect(early?.startFailure).toBeUndefined();
    const creating = observeRunnerPod(
      pod({ phase: 'Pending', containerStatuses: [status({ waiting: { reason: 'ContainerCreating' } })] }),
    );
    expect(creating?.startFailure).toBeUndefined();
  });

  it('marks a pod no node fits as unschedulable, and notes when it was bound once it is', () => {
    const waiting = observeRunnerPod(
      pod({ phase: 'Pending', conditions: [condition('PodScheduled', 'False', 'Unschedulable')] }),
    );
    expect(waiting).toMatchObject({ phase: 'Pending', unschedulable: true });
    expect(waiting?.scheduledAt).toBeUndefined();
    const bound = observeRunnerPod(
      pod({
        phase: 'Pending',
        conditions: [condition('PodScheduled', 'True', undefined, '2026-12-07T20:40:00Z')],
      }),
    );
    expect(bound?.unschedulable).toBeUndefined();
    expect(bound?.scheduledAt).toBe(Date.parse('2026-12-07T20:40:00Z'));
  });
});
