import {
  CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Taint,
} from '@kubernetes/client-node';
import { isSchedulable, simulatedNode } from './control-plane/control-plane.ts';
import { until } from './until.ts';

/**
 * Nodes a test adds to the shared cluster and takes away again (a node lost, a node an autoscaler
 * adds). Each is tainted with its own key, so only pods that tolerate it land there: the other test
 * files, whose pods ask for type=kwok, never run on a node that a test is about to delete.
 */
export interface TestNode {
  name: string;
  /** The label and taint a runner class needs to land on this node, and only here. */
  nodeSelector: Record<string, string>;
  tolerations: { key: string; operator: 'Equal'; value: string; effect: 'NoSchedule' }[];
}

/** The placement of a test's own node pool, named `pool`; nodes join it with `addNode`. */
export function nodePool(pool: string): Omit<TestNode, 'name'> {
  const key = 'gantry.dev/test-pool';
  return {
    nodeSelector: { [key]: pool },
    tolerations: [{ key, operator: 'Equal', value: pool, effect: 'NoSchedule' }],
  };
}

/** Creates a KWOK node in `pool` and waits until the scheduler may use it. */
export async function addNode(kc: KubeConfig, name: string, pool: string): Promise<TestNode> {
  const placement = nodePool(pool);
  const [toleration] = placement.tolerations;
  const taints: V1Taint[] = toleration ? [{ key: toleration.key, value: pool, effect: 'NoSchedule' }] : [];
  await addKwokNode(kc, name, { labels: placement.nodeSelector, taints });
  return { name, ...placement };
}

/**
 * Creates a KWOK node like the control plane's own (type=kwok, untainted unless `extra` says) and
 * waits until the scheduler may use it: for a cluster no other test shares (the fault suite's).
 */
export async function addKwokNode(
  kc: KubeConfig,
  name: string,
  extra: { labels?: Record<string, string>; taints?: V1Taint[] } = {},
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNode({ body: simulatedNode(name, extra) });
  await until(`node ${name} ready`, async () => isSchedulable(await core.readNode({ name })), 30_000);
}

/** Marks nodes (un)schedulable, as `kubectl cordon` and `uncordon` do. */
export async function cordon(kc: KubeConfig, names: readonly string[], unschedulable = true): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await Promise.all(
    names.map((name) =>
      core.patchNode(
        { name, body: { spec: { unschedulable } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    ),
  );
}

/**
 * The node's kubelet goes silent: KWOK stops managing (and heartbeating) a node without its
 * type=kwok label, so the node lifecycle controller marks it NotReady after its grace period.
 */
export async function silenceNode(kc: KubeConfig, name: string): Promise<void> {
  await kc
    .makeApiClient(CoreV1Api)
    .patchNode(
      { name, body: { metadata: { labels: { type: null } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
}

/** Deletes a node as a cloud provider's node controller does once its machine is gone. */
export async function deleteNode(kc: KubeConfig, name: string): Promise<void> {
  await kc
    .makeApiClient(CoreV1Api)
    .deleteNode({ name })
    .catch(() => {});
}
