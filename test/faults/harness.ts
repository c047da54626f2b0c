import { appKeys, FakeGithub, fakeGithubConfig } from '../support/fake-github/index.ts';
import { startRunnerSimulator } from '../support/runner-simulator.ts';
import type { GantryProcess } from './replica.ts';
import {
  type BusyJob,
  FaultScenario,
  type FaultScenarioOptions,
  type JobOutcome,
  runFaultScenario,
  SANDBOX_GROUP,
  TRUSTED_GROUP,
} from './scenario.ts';

/** The long, hand-run form (`npm run faults -- --soak`). */
export const SOAK = process.env.GANTRY_FAULTS_SOAK === '1';

export const SECRET = 'faults-webhook-secret';
export const APP_ID = 779;

/**
 * The classes every scenario runs: two for the jobs, so that each class's own maxRunners is what
 * holds, and the sandbox for untrusted jobs that a real configuration has (docs/trust.md): its own
 * namespace and runner group, which admits the public repository acme/oss only. Trusted jobs come
 * from the private repositories, fork jobs (where a scenario queues them) from forks of acme/oss. A
 * job that ran on a runner of the other trust was misjudged or misplaced, and fails the scenario.
 */
export const CLASSES = {
  lint: { labels: ['self-hosted', 'lint'], maxRunners: 6, untrusted: false },
  build: { labels: ['self-hosted', 'build'], maxRunners: 4, untrusted: false },
  untrusted: { labels: ['self-hosted', 'lint', 'build'], maxRunners: 4, untrusted: true },
} as const;

const PUBLIC_REPO = 'acme/oss';

export interface ScenarioOptions extends FaultScenarioOptions {
  /** Primary quota per hour of the fake GitHub (default 5,000, an App installation's floor). */
  quotaLimit?: number;
}

/** A fault scenario with jobs coming from GitHub's webhooks (the fake GitHub). */
export class Scenario extends FaultScenario<ScenarioOptions> {
  protected readonly classes = CLASSES;
  protected readonly namespacePrefix = 'faults';
  /** Jobs from forks of the public repository; they must run on the untrusted class. */
  readonly forkJobs: number[] = [];
  fake!: FakeGithub;

  protected async startFakes(): Promise<FakeGithub> {
    this.fake = new FakeGithub({
      repos: ['acme/app', 'acme/lib', PUBLIC_REPO],
      publicRepos: [PUBLIC_REPO],
      runnerGroups: [
        TRUSTED_GROUP,
        {
          name: SANDBOX_GROUP,
          visibility: 'selected',
          selectedRepositories: [PUBLIC_REPO],
          allowsPublicRepositories: true,
        },
      ],
      ...(this.options.quotaLimit ? { quotaLimit: this.options.quotaLimit } : {}),
      app: { appId: APP_ID, publicKey: appKeys().publicKey },
    });
    await this.fake.start();
    this.fake.runInRealTime(100);
    return this.fake;
  }

  protected githubConfig(): Record<string, unknown> {
    return fakeGithubConfig(this.fake, APP_ID, SECRET);
  }

  protected startSimulator() {
    return startRunnerSimulator(this.kc, this.fake, this.namespaces);
  }

  protected busyJobOf(podName: string): BusyJob | undefined {
    const job = this.fake.jobs().find((j) => j.runner?.name === podName && j.status === 'in_progress');
    return job && { id: job.id, runner: job.runner?.id };
  }

  protected jobOutcome(id: number): JobOutcome {
    const job = this.fake.job(id);
    return {
      state: job?.status,
      succeeded: job?.status === 'completed' && job.conclusion === 'success' && job.runner !== null,
      failed: job?.conclusion === 'failure',
    };
  }

  protected registrationsLeft(): string[] {
    return this.fake.runners().map((r) => `runner ${r.name} (${r.status}${r.busy ? ', busy' : ''})`);
  }

  /** Trust: where GitHub (the fake) ran each job. */
  protected ownFailures(): string[] {
    const failures: string[] = [];
    const forks = new Set(this.forkJobs);
    const onSandbox = (id: number) => this.fake.job(id)?.runner?.name.startsWith('gantry-untrusted-');
    const sandboxed = this.jobs.filter((id) => !forks.has(id) && onSandbox(id));
    if (sandboxed.length > 0) {
      failures.push(`${sandboxed.length} jobs from no fork ran on the untrusted class`);
    }
    const escaped = this.forkJobs.filter((id) => this.fake.job(id)?.runner && !onSandbox(id));
    if (escaped.length > 0) failures.push(`${escaped.length} fork jobs ran on trusted runners`);
    return failures;
  }

  /** Starts one more Gantry process; webhooks go to the first one unless pointed elsewhere. */
  override async startReplica(): Promise<GantryProcess> {
    const replica = await super.startReplica();
    if (this.live().length === 1) this.pointWebhooksAt(replica);
    return replica;
  }

  pointWebhooksAt(replica: GantryProcess): void {
    this.fake.setWebhookTarget(`${replica.webhookUrl}/webhooks/github`, SECRET);
  }

  /**
   * Queues `count` jobs from forks of the public repository, asking for the trusted classes' labels
   * (an attacker writes their own runs-on): GitHub must give them to the sandbox group's runners only.
   */
  queueForks(count: number, { durationMs = 800 }: { durationMs?: number } = {}): number[] {
    const ids = this.fake.queueJobs({
      repo: PUBLIC_REPO,
      labels: [...CLASSES.lint.labels],
      count,
      jobsPerRun: 1,
      fromFork: 'mallory/oss',
      durationMs,
    }).jobIds;
    this.jobs.push(...ids);
    this.forkJobs.push(...ids);
    return ids;
  }

  /** Queues `count` jobs, split between the classes (lint first), `perRun` to a workflow run. */
  queue(
    count: number,
    { durationMs = 800, perRun = 5 }: { durationMs?: number; perRun?: number } = {},
  ): number[] {
    const lint = Math.ceil(count * 0.6);
    const ids = [
      ...this.fake.queueJobs({
        repo: 'acme/app',
        labels: [...CLASSES.lint.labels],
        count: lint,
        jobsPerRun: perRun,
        durationMs,
      }).jobIds,
      ...(count > lint
        ? this.fake.queueJobs({
            repo: 'acme/lib',
            labels: [...CLASSES.build.labels],
            count: count - lint,
            jobsPerRun: perRun,
            durationMs,
          }).jobIds
        : []),
    ];
    this.jobs.push(...ids);
    return ids;
  }
}

/** Opens a scenario, runs `body` (the fault), then checks the invariants; always cleans up. */
export const runScenario = (options: ScenarioOptions, body: (s: Scenario) => Promise<void>) =>
  runFaultScenario(new Scenario(options), body);
