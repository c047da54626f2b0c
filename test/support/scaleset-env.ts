import type { KubeConfig } from '@kubernetes/client-node';
import { type AppEnv, type AppEnvOptions, startAppEnv } from './app-env.ts';
import type { FakeActionsServiceOptions, QueueScaleSetJob } from './fake-actions-service/index.ts';
import {
  RELEASE_AND_SANDBOX_GROUPS,
  type ScaleSetFakes,
  type ScaleSetFakesOptions,
  scaleSetGithubConfig,
  scaleSetOf,
  startScaleSetFakes,
} from './scaleset-fakes.ts';
import { startScaleSetRunnerSimulator } from './scaleset-simulator.ts';
import { until } from './until.ts';

/**
 * Gantry end to end in scale-set mode, in process: the fake Actions service (with the fake GitHub
 * behind it) assigns scripted jobs to the classes' scale sets, Gantry launches runner pods on the
 * shared apiserver (KWOK runs them), and the scale-set runner simulator plays each pod's runner.
 */

export interface ScaleSetEnv extends AppEnv<ReturnType<typeof startScaleSetRunnerSimulator>> {
  fakes: ScaleSetFakes;
  /**
   * Queues `count` jobs for the class's scale set, as GitHub would assign them: a workflow run on the
   * fake GitHub (so that a look-up finds it) and the jobs on the Actions fake. Returns their
   * runnerRequestIds.
   */
  queue(className: string, count: number, job?: ScaleSetJobSpec): number[];
}

export interface ScaleSetJobSpec extends QueueScaleSetJob {
  /** How long the job runs once a runner took it. */
  durationMs?: number;
  /** The run comes from a fork's pull request (its head repository). */
  fromFork?: string;
  headBranch?: string;
}

export interface ScaleSetEnvOptions extends AppEnvOptions {
  fakes?: ScaleSetFakesOptions;
  actions?: Partial<FakeActionsServiceOptions>;
}

export async function startScaleSetEnv(kc: KubeConfig, options: ScaleSetEnvOptions): Promise<ScaleSetEnv> {
  const fakes = await startScaleSetFakes({
    runnerGroups: RELEASE_AND_SANDBOX_GROUPS,
    ...options.fakes,
    actions: { longPollMs: 2_000, pickupTimeoutMs: 600_000, ...options.fakes?.actions, ...options.actions },
  });
  fakes.actions.runInRealTime(100);
  fakes.github.runInRealTime(100);
  const durations = new Map<number, number>();
  const env = await startAppEnv(kc, options, {
    github: scaleSetGithubConfig(fakes, { scaleSets: { sessionConflictRetrySeconds: 1 } }),
    // The leader opens the sessions in the background: jobs are queued once every scale set listens.
    started: async (_webhookUrl, config) => {
      const classes = Object.values(config.classes).filter((c) => c.match.github).length;
      await until(
        'every scale set’s session',
        async () => fakes.actions.sessions().length === classes,
        30_000,
      );
    },
    startSimulator: (namespaces) => startScaleSetRunnerSimulator(kc, fakes.actions, namespaces, durations),
    stop: () => fakes.stop(),
  });
  const queue: ScaleSetEnv['queue'] = (className, count, job = {}) => {
    const repo = `${fakes.github.org}/${job.repository ?? 'app'}`;
    const { runIds } = fakes.github.queueJobs({
      repo,
      labels: ['self-hosted'],
      count: 1,
      ...(job.fromFork ? { fromFork: job.fromFork } : {}),
      ...(job.eventName ? { event: job.eventName } : {}),
      ...(job.headBranch ? { headBranch: job.headBranch } : {}),
    });
    const event = job.eventName ?? (job.fromFork ? 'pull_request' : 'push');
    const ref = event.startsWith('pull_request')
      ? 'refs/pull/1/merge'
      : `refs/heads/${job.headBranch ?? 'main'}`;
    const ids = fakes.actions.queueJobs(scaleSetOf(fakes, className).id, count, {
      workflowRef: `${repo}/.github/workflows/ci.yml@${ref}`,
      eventName: event,
      ...job,
      workflowRunId: runIds[0] ?? 0,
    });
    for (const id of ids) durations.set(id, job.durationMs ?? 1_000);
    return ids;
  };
  return Object.assign(env, { fakes, queue });
}
