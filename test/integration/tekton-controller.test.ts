import { setTimeout as sleep } from 'node:timers/promises';
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  type TektonNamespace,
  tektonControllerSkipReason,
  useTektonController,
} from '../support/control-plane/use-tekton-controller.ts';
import { testKubeConfig, until } from '../support/kube.ts';

// Tekton Pipelines' real controller (built from its module at the pinned version) against the local
// control plane: a PipelineRun becomes a TaskRun and a pod that the scheduler puts on a KWOK node,
// KWOK finishes the pod as Tekton's entrypoint would, and Tekton marks both runs Succeeded. What a
// queue does with spec.status, and what Pod Security admits of Tekton's pods, is judged here by
// Tekton and the apiserver themselves, not by a stand-in.

const kc = testKubeConfig();
const objects = kc.makeApiClient(CustomObjectsApi);
const core = kc.makeApiClient(CoreV1Api);
const group = 'tekton.dev';
const version = 'v1';
const asMergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const skipReason = tektonControllerSkipReason();

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface TektonRun {
  metadata: { name: string };
  spec: { status?: string };
  status?: {
    conditions?: Condition[];
    startTime?: string;
    completionTime?: string;
    podName?: string;
    childReferences?: { kind: string; name: string }[];
    steps?: { name: string; terminated?: { exitCode: number } }[];
  };
}

const succeeded = (run: TektonRun | undefined) =>
  run?.status?.conditions?.find((c) => c.type === 'Succeeded');

/** Creating and reading Tekton objects in the namespace a test file's controller watches. */
function tektonObjects(tekton: TektonNamespace) {
  const at = (plural: string) => ({ group, version, namespace: tekton.namespace, plural });
  const api = {
    async createTask(name: string, stepSecurityContext?: Record<string, unknown>) {
      const step = (stepName: string) => ({
        name: stepName,
        image: 'busybox',
        script: `echo ${stepName}`,
        ...(stepSecurityContext ? { securityContext: stepSecurityContext } : {}),
      });
      await objects.createNamespacedCustomObject({
        ...at('tasks'),
        body: {
          apiVersion: `${group}/${version}`,
          kind: 'Task',
          metadata: { name },
          spec: { steps: [step('compile'), step('test')] },
        },
        fieldValidation: 'Strict',
      });
    },
    async createPipelineRun(name: string, task: string, spec: Record<string, unknown> = {}) {
      await objects.createNamespacedCustomObject({
        ...at('pipelineruns'),
        body: {
          apiVersion: `${group}/${version}`,
          kind: 'PipelineRun',
          metadata: { name },
          spec: { pipelineSpec: { tasks: [{ name: 'build', taskRef: { name: task } }] }, ...spec },
        },
        fieldValidation: 'Strict',
      });
    },
    get: async (plural: 'pipelineruns' | 'taskruns', name: string) =>
      (await objects.getNamespacedCustomObject({ ...at(plural), name })) as TektonRun,
    taskRunsOf: async (pipelineRun: string) =>
      (
        (await objects.listNamespacedCustomObject({
          ...at('taskruns'),
          labelSelector: `tekton.dev/pipelineRun=${pipelineRun}`,
        })) as { items: TektonRun[] }
      ).items,
    /** Polls `check`; when time runs out the error carries the tail of the controller's log. */
    async waitFor<T>(what: string, check: () => Promise<T | undefined | false>): Promise<T> {
      try {
        return await until(what, check, 30_000, 200);
      } catch (err) {
        const log = await tekton.controller.logTail();
        throw new Error(`${(err as Error).message}\nTekton controller log:\n${log}`);
      }
    },
    /** Waits until the run's Succeeded condition is True or False, and returns the run. */
    finished: (plural: 'pipelineruns' | 'taskruns', name: string) =>
      api.waitFor(`${name} finished`, async () => {
        const run = await api.get(plural, name);
        const status = succeeded(run)?.status;
        return (status === 'True' || status === 'False') && run;
      }),
  };
  return api;
}

describe.skipIf(skipReason)('Tekton’s controller on the local control plane', () => {
  // Tekton's pods run as root without a seccomp profile unless a run's pod template says otherwise,
  // so Pod Security "restricted" refuses them (see the next block); "baseline" admits them.
  const tekton = useTektonController({
    prefix: 'tekton-controller',
    labels: { 'pod-security.kubernetes.io/enforce': 'baseline' },
  });
  const tk = tektonObjects(tekton);

  it('runs a PipelineRun to Succeeded through a TaskRun and a pod on a KWOK node', async () => {
    await tk.createTask('build');
    await tk.createPipelineRun('build-1', 'build');

    const [taskRun] = await tk.waitFor('the TaskRun of build-1', async () => {
      const items = await tk.taskRunsOf('build-1');
      return items.length > 0 && items;
    });
    if (!taskRun) throw new Error('no TaskRun');
    const pod = await tk.waitFor('the TaskRun’s pod on a node', async () => {
      const { items } = await core.listNamespacedPod({
        namespace: tekton.namespace,
        labelSelector: `tekton.dev/taskRun=${taskRun.metadata.name}`,
      });
      return items.find((p: V1Pod) => p.spec?.nodeName);
    });
    const node = await core.readNode({ name: pod.spec?.nodeName ?? '' });
    expect(node.metadata?.labels?.type).toBe('kwok');
    expect(pod.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('tekton-pipelines');
    // Tekton's own pod: its entrypoint and script init containers, then one container per step.
    expect(pod.spec?.initContainers?.map((c) => c.name)).toEqual(['prepare', 'place-scripts']);
    expect(pod.spec?.containers.map((c) => c.name)).toEqual(['step-compile', 'step-test']);

    const run = await tk.finished('pipelineruns', 'build-1');
    expect(succeeded(run)).toMatchObject({ status: 'True', reason: 'Succeeded' });
    expect(run.status?.startTime).toBeTruthy();
    expect(run.status?.completionTime).toBeTruthy();
    expect(run.status?.childReferences).toEqual([
      expect.objectContaining({ kind: 'TaskRun', name: taskRun.metadata.name }),
    ]);

    const finishedTaskRun = await tk.get('taskruns', taskRun.metadata.name);
    expect(succeeded(finishedTaskRun)).toMatchObject({ status: 'True', reason: 'Succeeded' });
    expect(finishedTaskRun.status?.podName).toBe(pod.metadata?.name);
    expect(finishedTaskRun.status?.steps?.map((s) => [s.name, s.terminated?.exitCode])).toEqual([
      ['compile', 0],
      ['test', 0],
    ]);
    const finishedPod = await core.readNamespacedPod({
      namespace: tekton.namespace,
      name: pod.metadata?.name ?? '',
    });
    expect(finishedPod.status?.phase).toBe('Succeeded');
  });

  it('holds a PipelineRunPending run without a TaskRun until spec.status is cleared', async () => {
    await tk.createTask('held-task');
    await tk.createPipelineRun('held-1', 'held-task', { status: 'PipelineRunPending' });

    // Tekton has seen the run once it reports it pending; only then does "no TaskRun" mean anything.
    const pending = await tk.waitFor('held-1 reported pending', async () => {
      const run = await tk.get('pipelineruns', 'held-1');
      return succeeded(run)?.reason === 'PipelineRunPending' && run;
    });
    expect(succeeded(pending)?.status).toBe('Unknown');
    expect(pending.status?.startTime).toBeUndefined();
    // The reconciles that follow (its own status update's event among them) must not start it either.
    await sleep(1_500);
    expect(await tk.taskRunsOf('held-1')).toEqual([]);
    expect((await tk.get('pipelineruns', 'held-1')).status?.startTime).toBeUndefined();

    await objects.patchNamespacedCustomObject(
      {
        group,
        version,
        namespace: tekton.namespace,
        plural: 'pipelineruns',
        name: 'held-1',
        body: { spec: { status: null } },
      },
      asMergePatch,
    );
    const run = await tk.finished('pipelineruns', 'held-1');
    expect(succeeded(run)).toMatchObject({ status: 'True', reason: 'Succeeded' });
    expect(run.status?.startTime).toBeTruthy();
    expect(await tk.taskRunsOf('held-1')).toHaveLength(1);
  });
});

describe.skipIf(skipReason)('Tekton’s pods under Pod Security "restricted"', () => {
  // set-security-context makes Tekton give its own init containers (prepare, place-scripts) a
  // restricted security context; the pod's and the steps' own remain the run's and the Task's.
  const tekton = useTektonController({
    prefix: 'tekton-restricted',
    labels: { 'pod-security.kubernetes.io/enforce': 'restricted' },
    featureFlags: { 'set-security-context': 'true' },
  });
  const tk = tektonObjects(tekton);

  it('are refused unless the run’s pod template and the steps drop privileges', async () => {
    await tk.createTask('as-root');
    await tk.createPipelineRun('as-root-1', 'as-root');
    const [refused] = await tk.waitFor('the TaskRun of as-root-1', async () => {
      const items = await tk.taskRunsOf('as-root-1');
      return items.length > 0 && items;
    });
    if (!refused) throw new Error('no TaskRun');
    const refusedTaskRun = await tk.finished('taskruns', refused.metadata.name);
    expect(succeeded(refusedTaskRun)).toMatchObject({ status: 'False', reason: 'PodAdmissionFailed' });
    expect(succeeded(refusedTaskRun)?.message).toContain('violates PodSecurity "restricted:latest"');
    expect(succeeded(await tk.finished('pipelineruns', 'as-root-1'))?.status).toBe('False');

    // What Gantry's webhook adds to a run's pod template, plus what only a Task can say of its steps.
    await tk.createTask('unprivileged', { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    await tk.createPipelineRun('unprivileged-1', 'unprivileged', {
      taskRunTemplate: {
        podTemplate: {
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65532,
            seccompProfile: { type: 'RuntimeDefault' },
          },
        },
      },
    });
    const run = await tk.finished('pipelineruns', 'unprivileged-1');
    expect(succeeded(run)).toMatchObject({ status: 'True', reason: 'Succeeded' });
  });
});
