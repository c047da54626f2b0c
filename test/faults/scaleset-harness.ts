import {
  type ScaleSetFakes,
  scaleSetGithubConfig,
  scaleSetOf,
  startScaleSetFakes,
} from '../support/scaleset-fakes.ts';
import { startScaleSetRunnerSimulator } from '../support/scaleset-simulator.ts';
import { until } from '../support/until.ts';
import {
  type BusyJob,
  FaultScenario,
  type FaultScenarioOptions,
  type JobOutcome,
  runFaultScenario,
  SANDBOX_GROUP,
  TRUSTED_GROUP,
} from './scenario.ts';

/**
 * The fault suite in scale-set mode: the same invariants as harness.ts (see scenario.ts) with the
 * fake Actions service in front: Gantry as real processes with election on, the service's sessions,
 * messages, JIT configs and runner removal, and the scale-set runner simulator.
 */

export const SCALESET_CLASSES = {
  lint: { labels: ['self-hosted', 'lint'], maxRunners: 6, untrusted: false },
  build: { labels: ['self-hosted', 'build'], maxRunners: 4, untrusted: false },
  untrusted: { labels: ['self-hosted', 'sandbox'], maxRunners: 4, untrusted: true },
} as const;
type ClassName = keyof typeof SCALESET_CLASSES;

export interface ScaleSetScenarioOptions extends FaultScenarioOptions {
  /** How long the fake service keeps a session nobody polls (a killed Gantry's). */
  sessionIdleTimeoutMs?: number;
}

export class ScaleSetScenario extends FaultScenario<ScaleSetScenarioOptions> {
  protected readonly classes = SCALESET_CLASSES;
  protected readonly namespacePrefix = 'faults-ss';
  /** How long each job runs once a runner took it, by runnerRequestId. */
  readonly durations = new Map<number, number>();
  fakes!: ScaleSetFakes;
  #simulator!: ReturnType<typeof startScaleSetRunnerSimulator>;

  protected async startFakes(): Promise<ScaleSetFakes> {
    this.fakes = await startScaleSetFakes({
      github: { repos: ['acme/app', 'acme/lib', 'acme/oss'], publicRepos: ['acme/oss'] },
      runnerGroups: [{ name: TRUSTED_GROUP }, { name: SANDBOX_GROUP, allowsPublicRepositories: true }],
      actions: {
        longPollMs: 3_000,
        pickupTimeoutMs: 600_000,
        sessionIdleTimeoutMs: this.options.sessionIdleTimeoutMs ?? 10_000,
        pats: ['stray-listener-token'],
      },
    });
    this.fakes.actions.runInRealTime(100);
    this.fakes.github.runInRealTime(100);
    return this.fakes;
  }

  protected githubConfig(): Record<string, unknown> {
    return scaleSetGithubConfig(this.fakes, { scaleSets: { sessionConflictRetrySeconds: 1 } });
  }

  protected startSimulator() {
    this.#simulator = startScaleSetRunnerSimulator(
      this.kc,
      this.fakes.actions,
      this.namespaces,
      this.durations,
    );
    return this.#simulator;
  }

  protected busyJobOf(podName: string): BusyJob | undefined {
    const job = this.fakes.actions.jobs().find((j) => j.runner?.name === podName && j.state === 'running');
    return job && { id: job.runnerRequestId, runner: job.runner?.id };
  }

  protected jobOutcome(id: number): JobOutcome {
    const job = this.fakes.actions.job(id);
    return {
      state: job?.state,
      succeeded: job?.state === 'completed' && job.result === 'succeeded' && job.runner !== null,
      failed: job?.result === 'failed',
    };
  }

  protected registrationsLeft(): string[] {
    return this.fakes.actions.runners().map((r) => `runner ${r.name} (${r.status})`);
  }

  protected ownFailures(): string[] {
    const failures: string[] = [];
    const onSandbox = this.jobs.filter((id) => this.#simulator.classOfJob(id) === 'untrusted');
    if (onSandbox.length > 0) failures.push(`${onSandbox.length} trusted jobs ran on the untrusted class`);
    // A clean shutdown deletes the sessions: a successor need not wait for the service to end them.
    if (this.fakes.actions.sessions().length > 0) failures.push('sessions left after SIGTERM');
    return failures;
  }

  /** Waits until every class's scale set has a session (held by `owner`, when given). */
  async waitForSessions(owner?: string, timeoutMs = 60_000): Promise<number> {
    const from = Date.now();
    await until(
      `every scale set's session${owner ? ` held by ${owner}` : ''}`,
      async () => {
        const sessions = this.fakes.actions.sessions();
        return (
          sessions.length === Object.keys(SCALESET_CLASSES).length &&
          // The owner is the replica's election identity: its host name and a random suffix.
          (owner === undefined || sessions.every((s) => s.ownerName.startsWith(`${owner}_`)))
        );
      },
      timeoutMs,
      50,
    );
    return Date.now() - from;
  }

  /** Queues `count` jobs, 60 % lint and 40 % build, from the private repositories. */
  queue(count: number, { durationMs = 800 }: { durationMs?: number } = {}): number[] {
    const lint = Math.ceil(count * 0.6);
    const ids = [
      ...this.#queueFor('lint', lint, 'app', durationMs),
      ...(count > lint ? this.#queueFor('build', count - lint, 'lib', durationMs) : []),
    ];
    this.jobs.push(...ids);
    return ids;
  }

  #queueFor(className: ClassName, count: number, repository: string, durationMs: number): number[] {
    const { runIds } = this.fakes.github.queueJobs({
      repo: `acme/${repository}`,
      labels: ['self-hosted'],
      count: 1,
    });
    const ids = this.fakes.actions.queueJobs(scaleSetOf(this.fakes, className).id, count, {
      repository,
      eventName: 'push',
      workflowRef: `acme/${repository}/.github/workflows/ci.yml@refs/heads/main`,
      workflowRunId: runIds[0] ?? 0,
    });
    for (const id of ids) this.durations.set(id, durationMs);
    return ids;
  }
}

export const runScaleSetScenario = (
  options: ScaleSetScenarioOptions,
  body: (s: ScaleSetScenario) => Promise<void>,
) => runFaultScenario(new ScaleSetScenario(options), body);

/**
 * A listener that is not Gantry's opens a session on the scale set (with a token of its own), as a
 * second installation or a forgotten ARC listener would; returns a function that deletes it.
 */
export async function openStraySession(
  fakes: ScaleSetFakes,
  scaleSetId: number,
): Promise<() => Promise<void>> {
  const { actions } = fakes;
  const post = async (url: string, auth: string, body: unknown) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  };
  const registration = await post(
    `${actions.githubApiUrl}/orgs/${actions.org}/actions/runners/registration-token`,
    'token stray-listener-token',
    {},
  );
  const admin = await post(
    `${actions.githubApiUrl}/actions/runner-registration`,
    `RemoteAuth ${registration.token}`,
    {
      url: actions.githubConfigUrl,
      runner_event: 'register',
    },
  );
  const base = `${String(admin.url)}_apis/runtime/runnerscalesets/${scaleSetId}/sessions`;
  const session = await post(`${base}?api-version=6.0-preview`, `Bearer ${admin.token}`, {
    ownerName: 'stray-listener',
  });
  return async () => {
    await fetch(`${base}/${String(session.sessionId)}?api-version=6.0-preview`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${admin.token}` },
    });
  };
}
