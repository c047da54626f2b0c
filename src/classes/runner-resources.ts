import { parseQuantity } from '../model/quantity.ts';
import type { ResourceName } from './fields.ts';
import type { RunnerClass } from './schema.ts';

/**
 * The resources of a class's runner pods as Kubernetes will count them: the runner container's own
 * (with Gantry's ephemeral-storage defaults) and the pod's totals with init and sidecar containers.
 * One place, so the pod builder, the quota planner and the cost model agree.
 */

export type ResourceAmounts = Partial<Record<ResourceName, string>>;

/**
 * Room beyond the work folder's sizeLimit for what the runner writes elsewhere on the node's disk
 * (its home folder, the container's logs). The kubelet compares the pod's whole local usage, emptyDir
 * volumes included, with the sum of its containers' ephemeral-storage limits.
 */
export const EPHEMERAL_STORAGE_HEADROOM = '10Gi';
/**
 * What the scheduler reserves on the node's disk for a runner whose class sets no ephemeral-storage
 * at all. Without an explicit request Kubernetes would take the limit as the request, and reserve
 * the whole work folder for every runner.
 */
export const DEFAULT_EPHEMERAL_STORAGE_REQUEST = '1Gi';

/** The runner container's requests and limits: the class's, plus an ephemeral-storage limit (and request). */
export function runnerContainerResources(runnerClass: Pick<RunnerClass, 'resources' | 'workspace'>): {
  requests: ResourceAmounts;
  limits: ResourceAmounts;
} {
  const requests = defined(runnerClass.resources.requests);
  const limits = defined(runnerClass.resources.limits);
  if (limits['ephemeral-storage'] === undefined) {
    const floor = bytes(runnerClass.workspace.sizeLimit) + bytes(EPHEMERAL_STORAGE_HEADROOM);
    const requested = requests['ephemeral-storage'];
    limits['ephemeral-storage'] =
      requested !== undefined && bytes(requested) > floor ? requested : formatBytes(floor);
    requests['ephemeral-storage'] ??= DEFAULT_EPHEMERAL_STORAGE_REQUEST;
  }
  return { requests, limits };
}

/** Per resource, in base units (cores, bytes): what the pod requests and what it is limited to. */
export interface PodTotals {
  requests: Partial<Record<ResourceName, number>>;
  limits: Partial<Record<ResourceName, number>>;
}

const RESOURCES: readonly ResourceName[] = ['cpu', 'memory', 'ephemeral-storage'];

/**
 * The pod's effective requests and limits, as the scheduler and quota count them: the runner and the
 * sidecars run together; the init containers run one at a time before them (Gantry puts them first,
 * so no sidecar runs beside one). A container's missing request is its limit, as Kubernetes defaults
 * it; a container without a limit adds none (a quota on limits refuses such a pod outright).
 */
export function podResourceTotals(
  runnerClass: Pick<RunnerClass, 'resources' | 'workspace' | 'sidecars' | 'initContainers'>,
): PodTotals {
  const runner = runnerContainerResources(runnerClass);
  const together = [runner, ...runnerClass.sidecars.map((c) => c.resources)];
  const before = runnerClass.initContainers.map((c) => c.resources);
  const totals: PodTotals = { requests: {}, limits: {} };
  for (const name of RESOURCES) {
    const request = (r: { requests: ResourceAmounts; limits: ResourceAmounts }) =>
      amount(r.requests[name] ?? r.limits[name]);
    const limit = (r: { limits: ResourceAmounts }) => amount(r.limits[name]);
    const running = sum(together.map(request));
    const initRequest = Math.max(0, ...before.map((r) => request(r) ?? 0));
    if (running !== undefined || initRequest > 0) {
      totals.requests[name] = Math.max(running ?? 0, initRequest);
    }
    const runningLimit = sum(together.map(limit));
    const initLimit = Math.max(0, ...before.map((r) => limit(r) ?? 0));
    if (runningLimit !== undefined || initLimit > 0) {
      totals.limits[name] = Math.max(runningLimit ?? 0, initLimit);
    }
  }
  return totals;
}

function defined(list: ResourceAmounts): ResourceAmounts {
  return Object.fromEntries(Object.entries(list).filter((entry) => entry[1] !== undefined));
}

function amount(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseQuantity(text);
}

function bytes(text: string): number {
  return parseQuantity(text) ?? 0;
}

/** Undefined when none is set; the sum of those set otherwise. */
function sum(values: readonly (number | undefined)[]): number | undefined {
  const set = values.filter((v): v is number => v !== undefined);
  return set.length === 0 ? undefined : set.reduce((a, b) => a + b, 0);
}

/** Whole Gi or Mi where exact, else bytes: a deterministic quantity the apiserver keeps as written. */
function formatBytes(value: number): string {
  const rounded = Math.ceil(value);
  if (rounded % 2 ** 30 === 0) return `${rounded / 2 ** 30}Gi`;
  if (rounded % 2 ** 20 === 0) return `${rounded / 2 ** 20}Mi`;
  return String(rounded);
}
