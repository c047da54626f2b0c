import { createHash, type KeyObject, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Conclusion,
  type FakeJob,
  type FakeRepo,
  type FakeRun,
  type FakeRunner,
  type FakeRunnerGroup,
  fullRepository,
  groupAdmits,
  iso,
  type RunnerGroupSettings,
  type RunnerGroupSpec,
  type RunnerScopeRef,
  restJob,
  restRunner,
  runnerGroup,
  workflowRun,
} from './entities.ts';
import { verifyAppJwt } from './jwt.ts';
import {
  deliveryHeaders,
  type WorkflowJobAction,
  type WorkflowRunAction,
  workflowJobPayload,
  workflowRunPayload,
} from './webhooks.ts';

/**
 * A stand-in for GitHub's REST API and webhooks, faithful where Gantry depends on GitHub: response
 * shapes from the published REST description, Link pagination with absolute URLs, ETag/304 that costs
 * no quota, x-ratelimit-* headers over a quota that runs down and resets, secondary limits, App JWT
 * checks and expiring installation tokens, and signed workflow_job deliveries. Jobs are scripted: the
 * test queues them, says when a runner started, and moves the clock.
 */

export interface FakeClock {
  now(): number;
}

export interface FakeGithubOptions {
  clock?: FakeClock;
  org?: string;
  /** Repository names (owner/name); the owner of the first is the org unless `org` is given. */
  repos?: string[];
  /** Those of `repos` that are public (the others are private). */
  publicRepos?: string[];
  app?: { appId: number; clientId?: string; publicKey: KeyObject; installationId?: number };
  /** Personal access tokens the fake accepts. */
  pats?: string[];
  /** Primary quota per hour for each token principal. */
  quotaLimit?: number;
  /** How long installation tokens live. */
  tokenTtlMs?: number;
  /** Path prefix of the API, '/api/v3' to look like GitHub Enterprise Server. */
  apiPrefix?: string;
  webhook?: { url: string; secret: string };
  /** Extra runner groups of the org besides Default (id 1). */
  runnerGroups?: RunnerGroupSpec[];
  /** Settings of the Default group. */
  defaultGroup?: RunnerGroupSettings;
  /** Keep every response for validation against the REST description. */
  recordResponses?: boolean;
  /** Whether the App is subscribed to workflow_run (default: yes): its deliveries say where a run comes from. */
  workflowRunWebhooks?: boolean;
}

export interface RequestRecord {
  method: string;
  /** The route template, as in GitHub's REST description (without the API prefix). */
  route: string;
  url: string;
  status: number;
  principal: string | null;
  /** Primary quota points the request used. */
  cost: number;
  at: number;
}

export interface ResponseRecord {
  method: string;
  route: string;
  status: number;
  body: unknown;
}

export interface DeliveryRecord {
  id: string;
  event: string;
  action: string;
  /** The job of a workflow_job delivery (0 for workflow_run ones). */
  jobId: number;
  /** The run of a workflow_run delivery (0 for workflow_job ones, whose job is `jobId`). */
  runId: number;
  /** HTTP status of the receiver, 'dropped' by the fault knob, 'error' when the receiver was unreachable. */
  result: number | 'dropped' | 'error';
  /** When it was sent (the fake's clock). */
  at: number;
  /** How long the receiver took to answer (real time), once it did. */
  answeredInMs?: number;
  body: string;
  headers: Record<string, string>;
}

export interface QueueJobsRequest {
  repo: string;
  labels: string[];
  count: number;
  /** Jobs per workflow run (a matrix); default: all in one run. */
  jobsPerRun?: number;
  durationMs?: number;
  conclusion?: Conclusion;
  /** The run comes from a pull request of this fork (owner/name). */
  fromFork?: string;
  /** The run's event; default push, or pull_request for a fork. */
  event?: string;
  /** Who triggered the run; default dev. */
  actor?: string;
  /** The branch or tag the run is for (`head_branch`); default main, or patch-1 for a fork. */
  headBranch?: string;
  /** The ref its workflow file is read at; default refs/heads/<headBranch>, or a pull request's merge ref. */
  workflowRef?: string;
  /** The workflow file; default .github/workflows/ci.yml. */
  workflowPath?: string;
  /** Environment protection: jobs wait for approval first. */
  waiting?: boolean;
  name?: string;
}

interface Quota {
  used: number;
  resetAt: number;
}

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Body of a list endpoint: paginated by the fake. */
  page?: { key: string; items: unknown[]; extra?: Record<string, unknown>; totalCount?: number };
}

type Auth =
  | { kind: 'installation'; principal: string; token: string; scope: IssuedToken }
  | { kind: 'pat'; principal: string; token: string };

interface Context {
  url: URL;
  method: string;
  params: Record<string, string>;
  body: unknown;
  auth: Auth | null;
}

/** An App permission and the level a route needs of it ('write' covers 'read'). */
type Permission = readonly [name: string, level: 'read' | 'write'];

interface Route {
  method: string;
  template: string;
  pattern: RegExp;
  names: string[];
  auth: 'jwt' | 'token' | 'none';
  /** What an installation token must be allowed to reach this route. */
  permission?: Permission;
  handler: (ctx: Context) => Reply;
}

/** What the fake's App may do; a token asks for some of it, or gets all of it. */
const APP_PERMISSIONS: Record<string, 'read' | 'write'> = {
  actions: 'read',
  administration: 'write',
  organization_self_hosted_runners: 'write',
  metadata: 'read',
};

/** The App permission each installation route needs, as GitHub's REST reference lists them. */
const ROUTE_PERMISSIONS: Record<string, Permission> = {
  'GET /installation/repositories': ['metadata', 'read'],
  'GET /repos/{owner}/{repo}': ['metadata', 'read'],
  'GET /repos/{owner}/{repo}/actions/runs': ['actions', 'read'],
  'GET /repos/{owner}/{repo}/actions/runs/{run_id}': ['actions', 'read'],
  'GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs': ['actions', 'read'],
  'GET /repos/{owner}/{repo}/actions/jobs/{job_id}': ['actions', 'read'],
  'GET /orgs/{org}/actions/runner-groups': ['organization_self_hosted_runners', 'read'],
  'POST /orgs/{org}/actions/runners/generate-jitconfig': ['organization_self_hosted_runners', 'write'],
  'GET /orgs/{org}/actions/runners': ['organization_self_hosted_runners', 'read'],
  'DELETE /orgs/{org}/actions/runners/{runner_id}': ['organization_self_hosted_runners', 'write'],
  'POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig': ['administration', 'write'],
  'GET /repos/{owner}/{repo}/actions/runners': ['administration', 'read'],
  'DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}': ['administration', 'write'],
};

interface IssuedToken {
  installationId: number;
  expiresAt: number;
  permissions: Record<string, 'read' | 'write'>;
  /** Repository names (without owner) it is limited to; undefined: every repository of the installation. */
  repositories?: string[];
}

const DOCS = 'https://docs.github.com/rest';
const EXPOSE =
  'ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, X-OAuth-Scopes, X-Accepted-OAuth-Scopes, X-Poll-Interval, X-GitHub-Media-Type, X-GitHub-SSO, X-GitHub-Request-Id, Deprecation, Sunset';

/** GitHub lists at most this many results of a filtered query (created, status, …). */
const FILTERED_RESULTS = 1_000;

/**
 * The inclusive range (ms) of GitHub's date search syntax as `created` takes it: `A..B` (either side
 * `*`), `>=A`, `>A`, `<=A`, `<A` or `A`, each a date (a whole day, UTC) or a date-time. Undefined
 * when it is none of these.
 */
function createdRange(text: string): [number, number] | undefined {
  const bound = (value: string, end: boolean): number | undefined => {
    if (value === '*') return end ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
    const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
    const ms = Date.parse(dateOnly ? `${value}T00:00:00Z` : value);
    if (Number.isNaN(ms)) return undefined;
    // A date covers its whole day; a date-time to the second covers that second.
    return end ? ms + (dateOnly ? 86_400_000 : 1_000) - 1 : ms;
  };
  const range = /^(.+)\.\.(.+)$/.exec(text);
  if (range) {
    const from = bound(range[1] ?? '', false);
    const to = bound(range[2] ?? '', true);
    return from === undefined || to === undefined ? undefined : [from, to];
  }
  const compare = /^(>=|<=|>|<)(.+)$/.exec(text);
  if (compare) {
    const [, op, value = ''] = compare;
    const start = bound(value, false);
    const end = bound(value, true);
    if (start === undefined || end === undefined) return undefined;
    if (op === '>=') return [start, Number.POSITIVE_INFINITY];
    if (op === '>') return [end + 1, Number.POSITIVE_INFINITY];
    if (op === '<=') return [Number.NEGATIVE_INFINITY, end];
    return [Number.NEGATIVE_INFINITY, start - 1];
  }
  const from = bound(text, false);
  const to = bound(text, true);
  return from === undefined || to === undefined ? undefined : [from, to];
}

const error = (status: number, message: string, extra: Record<string, unknown> = {}): Reply => ({
  status,
  body: { message, documentation_url: DOCS, ...extra },
});

export class FakeGithub {
  readonly clock: FakeClock;
  readonly org: string;
  readonly installationId: number;
  readonly requests: RequestRecord[] = [];
  readonly responses: ResponseRecord[] = [];
  readonly deliveries: DeliveryRecord[] = [];
  /** Fault knobs; tests flip them at any time. */
  readonly faults = {
    dropWebhooks: false,
    /** The next N API requests fail with 502. */
    serverErrors: 0,
    /** Real delay before every API response (for timeout tests). */
    latencyMs: 0,
    /** The next N API requests are refused as a secondary rate limit. */
    secondaryLimit: { count: 0, status: 403 as 403 | 429, retryAfterSeconds: 60 as number | null },
    /** Until this time (the fake's clock), every API request fails with `outageStatus`: an outage. */
    outageUntil: 0,
    outageStatus: 502 as 500 | 502 | 503 | 504,
    /** Every response gets a fresh ETag, so no conditional request is ever answered 304. */
    etagChurn: false,
    /** How long GitHub takes to fail the job of a runner that vanished mid-job (minutes on GitHub). */
    lostRunnerFailsAfterMs: 1_000,
  };

  readonly #options: FakeGithubOptions;
  readonly #repos = new Map<string, FakeRepo>();
  readonly #runs = new Map<number, FakeRun>();
  readonly #jobs = new Map<number, FakeJob>();
  readonly #runners = new Map<number, FakeRunner>();
  readonly #groups: FakeRunnerGroup[];
  readonly #tokens = new Map<string, IssuedToken>();
  /** What each installation token was issued for, in the order issued (for tests). */
  readonly issuedTokens: Omit<IssuedToken, 'expiresAt' | 'installationId'>[] = [];
  /** Every credential the fake handed out (installation tokens, JIT configs), to look for in logs. */
  readonly credentialsIssued: string[] = [];
  readonly #quotas = new Map<string, Quota>();
  readonly #routes: Route[] = [];
  readonly #inflight = new Set<Promise<void>>();
  #server: Server | null = null;
  #ticker: ReturnType<typeof setInterval> | null = null;
  #origin = '';
  #nextId = 4_000_000_000;
  #nextRunnerId = 100;
  #runNumber = 0;
  #webhook: { url: string; secret: string } | null;
  /** The App's public key after a rotation (GitHub then refuses JWTs signed with the old key). */
  #appKey: KeyObject | undefined;

  constructor(options: FakeGithubOptions = {}) {
    this.#options = options;
    this.clock = options.clock ?? { now: () => Date.now() };
    const repos = options.repos ?? ['acme/app'];
    this.org = options.org ?? repos[0]?.split('/')[0] ?? 'acme';
    this.installationId = options.app?.installationId ?? 4242;
    this.#webhook = options.webhook ?? null;
    for (const fullName of repos) this.addRepo(fullName, !options.publicRepos?.includes(fullName));
    // The REST description's defaults for a group: every private repository, no public ones, any workflow.
    const defaults = {
      visibility: 'all' as const,
      selectedRepositories: [],
      allowsPublicRepositories: false,
      restrictedToWorkflows: false,
      selectedWorkflows: [],
    };
    this.#groups = [
      { id: 1, name: 'Default', isDefault: true, ...defaults, ...options.defaultGroup },
      ...(options.runnerGroups ?? []).map((spec, i) => ({
        id: 2 + i,
        isDefault: false,
        ...defaults,
        ...(typeof spec === 'string' ? { name: spec } : spec),
      })),
    ];
    this.#defineRoutes();
  }

  // ── lifecycle ────────────────────────────────────────────────────────────────────────────────

  async start(): Promise<string> {
    const server = createServer((req, res) => {
      this.#serve(req, res).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(JSON.stringify({ message: `fake github failed: ${(err as Error).message}` }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.#origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.apiUrl;
  }

  /** For real-time use (a demo): processes due transitions every `intervalMs` until stop(). */
  runInRealTime(intervalMs = 250): void {
    this.#ticker ??= setInterval(() => this.tick(), intervalMs);
  }

  async stop(): Promise<void> {
    if (this.#ticker) clearInterval(this.#ticker);
    this.#ticker = null;
    await this.flushWebhooks();
    const server = this.#server;
    this.#server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Base URL for API clients (with the GHES prefix when configured). */
  get apiUrl(): string {
    return `${this.#origin}${this.#options.apiPrefix ?? ''}`;
  }

  get webUrl(): string {
    return `${this.#origin}/web`;
  }

  setWebhookTarget(url: string, secret: string): void {
    this.#webhook = { url, secret };
  }

  addRepo(fullName: string, isPrivate = true): FakeRepo {
    const [owner = '', name = ''] = fullName.split('/');
    const repo: FakeRepo = {
      id: 700_000 + this.#repos.size,
      owner,
      ownerId: 9_000 + owner.length,
      name,
      fullName,
      private: isPrivate,
    };
    this.#repos.set(fullName, repo);
    return repo;
  }

  // ── scripted load ────────────────────────────────────────────────────────────────────────────

  /** Queues `count` jobs (in runs of `jobsPerRun`) and announces each with a webhook. */
  queueJobs(request: QueueJobsRequest): { runIds: number[]; jobIds: number[] } {
    const repo = this.#repo(request.repo);
    const headRepo = request.fromFork
      ? (this.#repos.get(request.fromFork) ?? this.addRepo(request.fromFork, false))
      : repo;
    const perRun = Math.max(1, request.jobsPerRun ?? request.count);
    const now = this.clock.now();
    const runIds: number[] = [];
    const jobIds: number[] = [];
    for (let made = 0; made < request.count; ) {
      const runNumber = ++this.#runNumber;
      const event = request.event ?? (request.fromFork ? 'pull_request' : 'push');
      const headBranch = request.headBranch ?? (request.fromFork ? 'patch-1' : 'main');
      // A pull request's workflow is read from its merge commit, which its author writes.
      const workflowRef =
        request.workflowRef ??
        (event.startsWith('pull_request') && event !== 'pull_request_target'
          ? `refs/pull/${runNumber}/merge`
          : event === 'release'
            ? `refs/tags/${headBranch}`
            : `refs/heads/${headBranch}`);
      const run: FakeRun = {
        id: this.#id(),
        repo,
        runNumber,
        runAttempt: 1,
        workflowId: 161335,
        workflowName: 'CI',
        event,
        headBranch,
        headSha: createHash('sha1').update(`run${runNumber}`).digest('hex'),
        headRepo,
        actor: request.actor ?? 'dev',
        workflowPath: request.workflowPath ?? '.github/workflows/ci.yml',
        workflowRef,
        createdAt: now,
        updatedAt: now,
        jobIds: [],
      };
      this.#runs.set(run.id, run);
      runIds.push(run.id);
      this.#deliverRun('requested', run);
      for (let i = 0; i < perRun && made < request.count; i++, made++) {
        const job: FakeJob = {
          id: this.#id(),
          runId: run.id,
          repo,
          name: `${request.name ?? 'build'} (${i + 1})`,
          labels: [...request.labels],
          status: request.waiting ? 'waiting' : 'queued',
          conclusion: null,
          createdAt: now,
          startedAt: now,
          completedAt: null,
          runner: null,
          durationMs: request.durationMs ?? 60_000,
          outcome: request.conclusion ?? 'success',
          completesAt: null,
        };
        this.#jobs.set(job.id, job);
        run.jobIds.push(job.id);
        jobIds.push(job.id);
        this.#deliver(request.waiting ? 'waiting' : 'queued', job);
      }
    }
    this.#assignIdleRunners();
    return { runIds, jobIds };
  }

  /** Environment approval: a waiting job becomes queued. */
  approve(jobId: number): void {
    const job = this.#jobs.get(jobId);
    if (job?.status !== 'waiting') throw new Error(`job ${jobId} is not waiting`);
    job.status = 'queued';
    this.#touch(job);
    this.#deliver('queued', job);
    this.#assignIdleRunners();
  }

  /**
   * The runner's process connected (its pod started): it goes online and takes the oldest queued job
   * whose labels it has. Returns the job id, or null when it waits idle.
   */
  startRunner(name: string): number | null {
    const runner = [...this.#runners.values()].find((r) => r.name === name);
    if (!runner) throw new Error(`no runner named ${name}`);
    runner.status = 'online';
    return this.#assign(runner);
  }

  /**
   * The runner's process vanished mid-job (its pod was deleted): it goes offline, and GitHub fails its
   * job after `faults.lostRunnerFailsAfterMs`, when the runner is removed like any that ran its job.
   * Until then GitHub refuses to delete it (busy).
   */
  loseRunner(name: string): void {
    const runner = [...this.#runners.values()].find((r) => r.name === name);
    if (!runner) return;
    runner.status = 'offline';
    const job = runner.jobId !== null ? this.#jobs.get(runner.jobId) : undefined;
    if (job?.status === 'in_progress') {
      job.outcome = 'failure';
      job.completesAt = Math.min(
        job.completesAt ?? Number.POSITIVE_INFINITY,
        this.clock.now() + this.faults.lostRunnerFailsAfterMs,
      );
    }
  }

  /** Changes a runner group's access settings, as an org owner would in GitHub's settings. */
  updateRunnerGroup(name: string, settings: RunnerGroupSettings): void {
    const group = this.#groups.find((g) => g.name.toLowerCase() === name.toLowerCase());
    if (!group) throw new Error(`fake github has no runner group ${name}`);
    Object.assign(group, settings);
    this.#assignIdleRunners();
  }

  /** Processes everything due at the clock's time: jobs whose duration elapsed complete. */
  tick(): void {
    const now = this.clock.now();
    for (const job of this.#jobs.values()) {
      if (job.status !== 'in_progress' || job.completesAt === null || job.completesAt > now) continue;
      job.status = 'completed';
      job.conclusion = job.outcome;
      job.completedAt = job.completesAt;
      this.#touch(job);
      this.#deliver('completed', job);
      // A JIT runner runs one job and is then removed by GitHub.
      for (const runner of this.#runners.values())
        if (runner.jobId === job.id) this.#runners.delete(runner.id);
      const run = this.#runs.get(job.runId);
      if (run && this.#runJobs(run).every((j) => j.status === 'completed'))
        this.#deliverRun('completed', run);
    }
  }

  /** The earliest time something scripted happens (a job completing), for event-driven simulations. */
  nextDueAt(): number | null {
    let next: number | null = null;
    for (const job of this.#jobs.values()) {
      if (
        job.status === 'in_progress' &&
        job.completesAt !== null &&
        (next === null || job.completesAt < next)
      ) {
        next = job.completesAt;
      }
    }
    return next;
  }

  job(id: number): FakeJob | undefined {
    return this.#jobs.get(id);
  }

  jobs(): FakeJob[] {
    return [...this.#jobs.values()];
  }

  runners(): FakeRunner[] {
    return [...this.#runners.values()];
  }

  /** Registers a runner the way another tool would (not through Gantry). */
  registerRunner(
    name: string,
    labels: string[],
    scope: RunnerScopeRef = { kind: 'org', org: this.org },
  ): FakeRunner {
    const runner: FakeRunner = {
      id: ++this.#nextRunnerId,
      name,
      scope,
      labels,
      groupId: 1,
      status: 'offline',
      busy: false,
      jobId: null,
      createdAt: this.clock.now(),
    };
    this.#runners.set(runner.id, runner);
    return runner;
  }

  // ── quota and accounting ─────────────────────────────────────────────────────────────────────

  /** The principal an installation token of this fake's App counts against. */
  get installationPrincipal(): string {
    return `installation:${this.installationId}`;
  }

  /** Primary quota points used by a principal (default: the App installation) since the fake started. */
  quotaUsed(principal = this.installationPrincipal): number {
    return this.requests.filter((r) => r.principal === principal).reduce((sum, r) => sum + r.cost, 0);
  }

  quota(principal = this.installationPrincipal): { limit: number; remaining: number; resetAt: number } {
    const q = this.#quota(principal);
    return { limit: this.#limit, remaining: Math.max(0, this.#limit - q.used), resetAt: q.resetAt };
  }

  /** The App's key was rotated: only JWTs signed with the new key's private half are accepted. */
  rotateAppKey(publicKey: KeyObject): void {
    this.#appKey = publicKey;
  }

  /** Revokes every installation token issued so far (a 401 for the next request that uses one). */
  revokeInstallationTokens(): void {
    this.#tokens.clear();
  }

  /** Spends quota as another client of the same principal would. */
  spendQuota(points: number, principal = this.installationPrincipal): void {
    this.#quota(principal).used += points;
  }

  /**
   * Spends the rest of the principal's quota; requests are refused until the window resets, at
   * `resetInMs` from now when given (the window's own end otherwise).
   */
  exhaustQuota(principal = this.installationPrincipal, resetInMs?: number): void {
    const q = this.#quota(principal);
    q.used = this.#limit;
    if (resetInMs !== undefined) q.resetAt = this.clock.now() + resetInMs;
  }

  /** Resends a recorded delivery with the same X-GitHub-Delivery id, as GitHub's redeliver does. */
  redeliver(deliveryId: string): void {
    const original = this.deliveries.find((d) => d.id === deliveryId);
    if (!original) throw new Error(`no delivery ${deliveryId}`);
    this.#send({ ...original, result: 'error' }, true);
  }

  /** Waits until every webhook sent so far got its answer. */
  async flushWebhooks(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.all([...this.#inflight]);
  }

  // ── internals: jobs and runners ──────────────────────────────────────────────────────────────

  #id(): number {
    this.#nextId += 1 + Math.floor(Math.random() * 7);
    return this.#nextId;
  }

  #repo(fullName: string): FakeRepo {
    const repo = this.#repos.get(fullName);
    if (!repo) throw new Error(`fake github has no repository ${fullName}`);
    return repo;
  }

  #touch(job: FakeJob): void {
    const run = this.#runs.get(job.runId);
    if (run) run.updatedAt = this.clock.now();
  }

  #runJobs(run: FakeRun): FakeJob[] {
    return run.jobIds.map((id) => this.#jobs.get(id)).filter((j): j is FakeJob => j !== undefined);
  }

  /**
   * GitHub gives a job to an idle runner whose labels cover the job's and whose scope admits it: a
   * repository runner takes its repository's jobs, an organisation runner those its group admits
   * (repository, visibility, workflow). What Gantry planned the runner for plays no part.
   */
  #matches(runner: FakeRunner, job: FakeJob): boolean {
    if (runner.scope.kind === 'repo') {
      if (runner.scope.repo !== job.repo.fullName) return false;
    } else {
      if (runner.scope.org !== job.repo.owner) return false;
      const group = this.#groups.find((g) => g.id === runner.groupId);
      const run = this.#runs.get(job.runId);
      const workflow = run ? `${run.repo.fullName}/${run.workflowPath}@${run.workflowRef}` : '';
      if (!group || !groupAdmits(group, job.repo, workflow)) return false;
    }
    const have = new Set(runner.labels.map((l) => l.toLowerCase()));
    return job.labels.every((l) => have.has(l.toLowerCase()));
  }

  #assign(runner: FakeRunner): number | null {
    if (runner.status !== 'online' || runner.busy) return null;
    const job = [...this.#jobs.values()]
      .filter((j) => j.status === 'queued' && this.#matches(runner, j))
      .sort((a, b) => a.createdAt - b.createdAt || a.id - b.id)[0];
    if (!job) return null;
    const now = this.clock.now();
    const group = this.#groups.find((g) => g.id === runner.groupId) ?? this.#groups[0];
    runner.busy = true;
    runner.jobId = job.id;
    job.status = 'in_progress';
    job.startedAt = now;
    job.runner = {
      id: runner.id,
      name: runner.name,
      groupId: runner.groupId,
      groupName: group?.name ?? 'Default',
    };
    job.completesAt = now + job.durationMs;
    this.#touch(job);
    this.#deliver('in_progress', job);
    const run = this.#runs.get(job.runId);
    // The first of its jobs to start moves the run on.
    if (
      run &&
      this.#runJobs(run).filter((j) => j.status !== 'queued' && j.status !== 'waiting').length === 1
    ) {
      this.#deliverRun('in_progress', run);
    }
    return job.id;
  }

  #assignIdleRunners(): void {
    for (const runner of this.#runners.values()) this.#assign(runner);
  }

  // ── internals: webhooks ──────────────────────────────────────────────────────────────────────

  #deliver(action: WorkflowJobAction, job: FakeJob): void {
    const run = this.#runs.get(job.runId);
    if (!run) return;
    const payload = workflowJobPayload(
      action,
      job,
      run,
      { web: this.webUrl, api: this.apiUrl },
      this.installationId,
    );
    const body = JSON.stringify(payload);
    const id = randomUUID();
    const headers = deliveryHeaders(
      body,
      this.#webhook?.secret ?? '',
      id,
      'workflow_job',
      this.installationId,
    );
    this.#post({ id, event: 'workflow_job', action, jobId: job.id, runId: 0, body, headers });
  }

  /** A workflow_run delivery, which GitHub sends to Apps subscribed to the event as the run moves on. */
  #deliverRun(action: WorkflowRunAction, run: FakeRun): void {
    if (this.#options.workflowRunWebhooks === false) return;
    const payload = workflowRunPayload(
      action,
      run,
      this.#runJobs(run),
      { web: this.webUrl, api: this.apiUrl },
      this.installationId,
    );
    const body = JSON.stringify(payload);
    const id = randomUUID();
    const headers = deliveryHeaders(
      body,
      this.#webhook?.secret ?? '',
      id,
      'workflow_run',
      this.installationId,
    );
    this.#post({ id, event: 'workflow_run', action, jobId: 0, runId: run.id, body, headers });
  }

  #post(delivery: Omit<DeliveryRecord, 'result' | 'at'>): void {
    const record: DeliveryRecord = { ...delivery, result: 'dropped', at: this.clock.now() };
    this.deliveries.push(record);
    if (this.faults.dropWebhooks || !this.#webhook) return;
    this.#send(record, false);
  }

  #send(record: DeliveryRecord, redelivery: boolean): void {
    const target = this.#webhook;
    if (!target) return;
    const entry = redelivery ? { ...record, at: this.clock.now() } : record;
    if (redelivery) this.deliveries.push(entry);
    const sent = performance.now();
    const p = fetch(target.url, { method: 'POST', headers: record.headers, body: record.body })
      .then(async (res) => {
        entry.result = res.status;
        entry.answeredInMs = performance.now() - sent;
        await res.arrayBuffer();
      })
      .catch(() => {
        entry.result = 'error';
      })
      .finally(() => this.#inflight.delete(p));
    this.#inflight.add(p);
  }

  // ── internals: HTTP ──────────────────────────────────────────────────────────────────────────

  get #limit(): number {
    return this.#options.quotaLimit ?? 5_000;
  }

  #quota(principal: string): Quota {
    const now = this.clock.now();
    let q = this.#quotas.get(principal);
    if (!q || q.resetAt <= now) {
      q = { used: 0, resetAt: now + 3_600_000 };
      this.#quotas.set(principal, q);
    }
    return q;
  }

  #rateHeaders(principal: string): Record<string, string> {
    const q = this.#quota(principal);
    return {
      'x-ratelimit-limit': String(this.#limit),
      'x-ratelimit-remaining': String(Math.max(0, this.#limit - q.used)),
      'x-ratelimit-used': String(q.used),
      'x-ratelimit-reset': String(Math.ceil(q.resetAt / 1000)),
      'x-ratelimit-resource': 'core',
    };
  }

  #route(method: string, template: string, auth: Route['auth'], handler: Route['handler']): void {
    const permission = ROUTE_PERMISSIONS[`${method} ${template}`];
    const names: string[] = [];
    const source = template.replace(/\{(\w+)\}/g, (_m, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    this.#routes.push({
      method,
      template,
      pattern: new RegExp(`^${source}$`),
      names,
      auth,
      handler,
      ...(permission ? { permission } : {}),
    });
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', this.#origin);
    const method = req.method ?? 'GET';
    const prefix = this.#options.apiPrefix ?? '';
    const path = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) || '/' : url.pathname;
    this.tick();
    if (this.faults.latencyMs > 0) await new Promise((r) => setTimeout(r, this.faults.latencyMs));

    const headers: Record<string, string> = {
      'content-type': 'application/json; charset=utf-8',
      'x-github-media-type': 'github.v3; format=json',
      'x-github-request-id': randomBytes(8).toString('hex').toUpperCase(),
      'access-control-expose-headers': EXPOSE,
    };
    const send = (status: number, body: unknown, route: string, principal: string | null, cost: number) => {
      this.requests.push({
        method,
        route,
        url: url.toString(),
        status,
        principal,
        cost,
        at: this.clock.now(),
      });
      if (this.#options.recordResponses && body !== undefined)
        this.responses.push({ method, route, status, body });
      res.writeHead(status, headers);
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };

    let match: { route: Route; params: Record<string, string> } | null = null;
    for (const route of this.#routes) {
      const m = route.method === method ? route.pattern.exec(path) : null;
      if (m) {
        match = {
          route,
          params: Object.fromEntries(route.names.map((n, i) => [n, decodeURIComponent(m[i + 1] ?? '')])),
        };
        break;
      }
    }
    if (!match) {
      send(404, { message: 'Not Found', documentation_url: DOCS, status: '404' }, path, null, 0);
      return;
    }
    const { route } = match;

    if (this.faults.serverErrors > 0) {
      this.faults.serverErrors--;
      send(502, { message: 'Server Error' }, route.template, null, 0);
      return;
    }
    if (this.faults.outageUntil > this.clock.now()) {
      send(this.faults.outageStatus, { message: 'Server Error' }, route.template, null, 0);
      return;
    }

    // Authentication.
    const authorization = req.headers.authorization ?? '';
    const [scheme = '', credential = ''] = authorization.split(/\s+/, 2);
    let auth: Auth | null = null;
    let principal: string | null = null;
    if (route.auth === 'jwt') {
      const app = this.#options.app;
      const issuers = app ? [String(app.appId), ...(app.clientId ? [app.clientId] : [])] : [];
      const check =
        app && scheme.toLowerCase() === 'bearer'
          ? verifyAppJwt(credential, this.#appKey ?? app.publicKey, issuers, this.clock.now())
          : ({ ok: false, message: 'A JSON web token could not be decoded' } as const);
      if (!check.ok) {
        send(
          401,
          { message: check.message, documentation_url: DOCS, status: '401' },
          route.template,
          null,
          0,
        );
        return;
      }
      principal = `app:${app?.appId}`;
    } else if (route.auth === 'token') {
      if (!['token', 'bearer'].includes(scheme.toLowerCase()) || !credential) {
        send(
          401,
          { message: 'Requires authentication', documentation_url: DOCS, status: '401' },
          route.template,
          null,
          0,
        );
        return;
      }
      const installation = this.#tokens.get(credential);
      if (installation && installation.expiresAt > this.clock.now()) {
        auth = {
          kind: 'installation',
          principal: `installation:${installation.installationId}`,
          token: credential,
          scope: installation,
        };
      } else if (this.#options.pats?.includes(credential)) {
        auth = {
          kind: 'pat',
          principal: `pat:${createHash('sha256').update(credential).digest('hex').slice(0, 12)}`,
          token: credential,
        };
      } else {
        send(
          401,
          { message: 'Bad credentials', documentation_url: DOCS, status: '401' },
          route.template,
          null,
          0,
        );
        return;
      }
      principal = auth.principal;
    }

    if (principal) Object.assign(headers, this.#rateHeaders(principal));

    // A down-scoped installation token reaches only its permissions and repositories.
    if (auth?.kind === 'installation') {
      const { permissions, repositories } = auth.scope;
      const needed = route.permission;
      const granted = needed ? permissions[needed[0]] : undefined;
      if (needed && (!granted || (needed[1] === 'write' && granted !== 'write'))) {
        send(
          403,
          {
            message: 'Resource not accessible by integration',
            documentation_url: DOCS,
            status: '403',
          },
          route.template,
          principal,
          1,
        );
        return;
      }
      const repo = match.params.repo;
      if (repositories && repo !== undefined && !repositories.includes(repo)) {
        send(
          404,
          { message: 'Not Found', documentation_url: DOCS, status: '404' },
          route.template,
          principal,
          1,
        );
        return;
      }
    }

    if (this.faults.secondaryLimit.count > 0 && route.auth !== 'none') {
      this.faults.secondaryLimit.count--;
      if (this.faults.secondaryLimit.retryAfterSeconds !== null) {
        headers['retry-after'] = String(this.faults.secondaryLimit.retryAfterSeconds);
      }
      send(
        this.faults.secondaryLimit.status,
        {
          message:
            'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
          documentation_url: `${DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits`,
        },
        route.template,
        principal,
        0,
      );
      return;
    }

    const free = route.template === '/rate_limit';
    if (principal && !free) {
      const q = this.#quota(principal);
      if (q.used >= this.#limit) {
        Object.assign(headers, this.#rateHeaders(principal));
        const who = auth?.kind === 'installation' ? `installation ID ${this.installationId}` : 'this token';
        send(
          403,
          {
            message: `API rate limit exceeded for ${who}. If you reach out to GitHub Support for help, please include the request ID ${headers['x-github-request-id']}.`,
            documentation_url: `${DOCS}/overview/rate-limits-for-the-rest-api`,
          },
          route.template,
          principal,
          0,
        );
        return;
      }
    }

    let body: unknown;
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        send(
          400,
          { message: 'Problems parsing JSON', documentation_url: DOCS },
          route.template,
          principal,
          0,
        );
        return;
      }
    }
    const reply = route.handler({ url, method, params: match.params, body, auth });
    let replyBody = reply.body;
    if (reply.page) {
      const paged = this.#paginate(url, reply.page);
      replyBody = paged.body;
      if (paged.link) headers.link = paged.link;
    }
    Object.assign(headers, reply.headers ?? {});

    // Conditional requests: a matching ETag answers 304 and costs nothing.
    if (method === 'GET' && reply.status === 200) {
      const churn = this.faults.etagChurn ? randomBytes(8).toString('hex') : '';
      const etag = `W/"${createHash('sha256')
        .update(`${auth?.token ?? principal ?? ''}\n${JSON.stringify(replyBody)}${churn}`)
        .digest('hex')
        .slice(0, 40)}"`;
      headers.etag = etag;
      headers['cache-control'] = 'private, max-age=60, s-maxage=60';
      headers.vary = 'Accept, Authorization, Cookie, X-GitHub-OTP';
      const ifNoneMatch = req.headers['if-none-match'];
      const strip = (tag: string) => tag.trim().replace(/^W\//, '');
      if (ifNoneMatch?.split(',').some((tag) => strip(tag) === strip(etag))) {
        delete headers['content-type'];
        if (principal) Object.assign(headers, this.#rateHeaders(principal));
        send(304, undefined, route.template, principal, 0);
        return;
      }
    }
    const cost = principal && !free && reply.status < 500 ? 1 : 0;
    if (principal && cost) {
      this.#quota(principal).used += cost;
      Object.assign(headers, this.#rateHeaders(principal));
    }
    if (reply.status === 204) {
      delete headers['content-type'];
      send(204, undefined, route.template, principal, cost);
      return;
    }
    send(reply.status, replyBody, route.template, principal, cost);
  }

  #paginate(url: URL, page: NonNullable<Reply['page']>): { body: unknown; link: string | null } {
    const perPage = Math.min(100, Math.max(1, Number(url.searchParams.get('per_page') ?? 30) || 30));
    const current = Math.max(1, Number(url.searchParams.get('page') ?? 1) || 1);
    const last = Math.max(1, Math.ceil(page.items.length / perPage));
    const slice = page.items.slice((current - 1) * perPage, current * perPage);
    const linkTo = (n: number) => {
      const u = new URL(url.toString());
      u.searchParams.set('per_page', String(perPage));
      u.searchParams.set('page', String(n));
      return `<${u.toString()}>`;
    };
    const links: string[] = [];
    if (current > 1) links.push(`${linkTo(current - 1)}; rel="prev"`);
    if (current < last) links.push(`${linkTo(current + 1)}; rel="next"`, `${linkTo(last)}; rel="last"`);
    if (current > 1) links.push(`${linkTo(1)}; rel="first"`);
    // The array comes first after total_count: octokit's paginate takes the first remaining key.
    return {
      body: { total_count: page.totalCount ?? page.items.length, [page.key]: slice, ...(page.extra ?? {}) },
      link: links.length ? links.join(', ') : null,
    };
  }

  #scopeOf(ctx: Context): RunnerScopeRef | Reply {
    if (ctx.params.org !== undefined) {
      if (ctx.params.org !== this.org) return error(404, 'Not Found');
      return { kind: 'org', org: ctx.params.org };
    }
    const fullName = `${ctx.params.owner}/${ctx.params.repo}`;
    if (!this.#repos.has(fullName)) return error(404, 'Not Found');
    return { kind: 'repo', repo: fullName };
  }

  #sameScope(a: RunnerScopeRef, b: RunnerScopeRef): boolean {
    return a.kind === 'org' ? b.kind === 'org' && a.org === b.org : b.kind === 'repo' && a.repo === b.repo;
  }

  #defineRoutes(): void {
    const web = () => this.webUrl;
    const api = () => this.apiUrl;

    this.#route('POST', '/app/installations/{installation_id}/access_tokens', 'jwt', (ctx) => {
      if (Number(ctx.params.installation_id) !== this.installationId) return error(404, 'Not Found');
      // The body may narrow the token to some of the App's permissions and some repositories.
      const request = (ctx.body ?? {}) as { permissions?: Record<string, string>; repositories?: string[] };
      const permissions: Record<string, 'read' | 'write'> = { ...APP_PERMISSIONS };
      if (request.permissions) {
        for (const key of Object.keys(permissions)) delete permissions[key];
        for (const [name, level] of Object.entries(request.permissions)) {
          const allowed = APP_PERMISSIONS[name];
          if (
            !allowed ||
            (level !== 'read' && level !== 'write') ||
            (level === 'write' && allowed !== 'write')
          ) {
            return error(422, `The permissions requested are not granted to this installation: ${name}`);
          }
          permissions[name] = level;
        }
        permissions.metadata = 'read';
      }
      const repositories = request.repositories;
      if (repositories?.some((name) => !this.#repos.has(`${this.org}/${name}`))) {
        return error(422, 'There is at least one repository that does not exist or is not accessible');
      }
      const token = `ghs_${randomBytes(27).toString('base64url')}`;
      const expiresAt = this.clock.now() + (this.#options.tokenTtlMs ?? 3_600_000);
      const issued: IssuedToken = {
        installationId: this.installationId,
        expiresAt,
        permissions,
        ...(repositories ? { repositories: [...repositories] } : {}),
      };
      this.#tokens.set(token, issued);
      this.credentialsIssued.push(token);
      this.issuedTokens.push({ permissions, ...(repositories ? { repositories: [...repositories] } : {}) });
      return {
        status: 201,
        body: {
          token,
          expires_at: iso(expiresAt),
          permissions,
          repository_selection: repositories ? 'selected' : 'all',
        },
      };
    });

    this.#route('GET', '/rate_limit', 'token', (ctx) => {
      const q = this.quota(ctx.auth?.principal);
      const core = {
        limit: q.limit,
        remaining: q.remaining,
        reset: Math.ceil(q.resetAt / 1000),
        used: q.limit - q.remaining,
      };
      const search = { limit: 30, remaining: 30, reset: Math.ceil(q.resetAt / 1000), used: 0 };
      return { status: 200, body: { resources: { core, search }, rate: core } };
    });

    this.#route('GET', '/installation/repositories', 'token', (ctx) => {
      if (ctx.auth?.kind !== 'installation')
        return error(403, 'This endpoint requires an installation token');
      const only = ctx.auth.scope.repositories;
      const items = [...this.#repos.values()]
        .filter((r) => r.owner === this.org && (!only || only.includes(r.name)))
        .map((r) => fullRepository(web(), api(), r, Date.parse('2024-01-01T00:00:00Z')));
      return { status: 200, page: { key: 'repositories', items, extra: { repository_selection: 'all' } } };
    });

    this.#route('GET', '/repos/{owner}/{repo}', 'token', (ctx) => {
      const repo = this.#repos.get(`${ctx.params.owner}/${ctx.params.repo}`);
      if (!repo) return error(404, 'Not Found');
      return { status: 200, body: fullRepository(web(), api(), repo, Date.parse('2024-01-01T00:00:00Z')) };
    });

    this.#route('GET', '/repos/{owner}/{repo}/actions/runs', 'token', (ctx) => {
      const repo = this.#repos.get(`${ctx.params.owner}/${ctx.params.repo}`);
      if (!repo) return error(404, 'Not Found');
      const status = ctx.url.searchParams.get('status');
      const createdParam = ctx.url.searchParams.get('created');
      const created = createdParam === null ? null : createdRange(createdParam);
      if (created === undefined) {
        return error(422, 'Validation Failed', {
          errors: [`created: ${createdParam} is not a date or range`],
        });
      }
      const items = [...this.#runs.values()]
        .filter((run) => run.repo === repo)
        .filter((run) => !created || (run.createdAt >= created[0] && run.createdAt <= created[1]))
        .map((run) => workflowRun(web(), api(), run, this.#runJobs(run)))
        .filter((run) => !status || run.status === status || run.conclusion === status)
        .sort((a, b) => b.id - a.id);
      // A filtered listing reaches its first 1,000 runs only; total_count still counts them all.
      const filtered = status !== null || created !== null;
      return {
        status: 200,
        page: {
          key: 'workflow_runs',
          items: filtered ? items.slice(0, FILTERED_RESULTS) : items,
          ...(filtered && items.length > FILTERED_RESULTS ? { totalCount: items.length } : {}),
        },
      };
    });

    this.#route('GET', '/repos/{owner}/{repo}/actions/runs/{run_id}', 'token', (ctx) => {
      const run = this.#runs.get(Number(ctx.params.run_id));
      if (!run || run.repo.fullName !== `${ctx.params.owner}/${ctx.params.repo}`)
        return error(404, 'Not Found');
      return { status: 200, body: workflowRun(web(), api(), run, this.#runJobs(run)) };
    });

    this.#route('GET', '/repos/{owner}/{repo}/actions/runs/{run_id}/jobs', 'token', (ctx) => {
      const run = this.#runs.get(Number(ctx.params.run_id));
      if (!run || run.repo.fullName !== `${ctx.params.owner}/${ctx.params.repo}`)
        return error(404, 'Not Found');
      const items = this.#runJobs(run).map((job) => restJob(web(), api(), job, run));
      return { status: 200, page: { key: 'jobs', items } };
    });

    this.#route('GET', '/repos/{owner}/{repo}/actions/jobs/{job_id}', 'token', (ctx) => {
      const job = this.#jobs.get(Number(ctx.params.job_id));
      const run = job ? this.#runs.get(job.runId) : undefined;
      if (!job || !run || job.repo.fullName !== `${ctx.params.owner}/${ctx.params.repo}`)
        return error(404, 'Not Found');
      return { status: 200, body: restJob(web(), api(), job, run) };
    });

    this.#route('GET', '/orgs/{org}/actions/runner-groups', 'token', (ctx) => {
      if (ctx.params.org !== this.org) return error(404, 'Not Found');
      return {
        status: 200,
        page: { key: 'runner_groups', items: this.#groups.map((g) => runnerGroup(api(), this.org, g)) },
      };
    });

    const generateJitconfig = (ctx: Context): Reply => {
      const scope = this.#scopeOf(ctx);
      if ('status' in scope) return scope;
      const body = (ctx.body ?? {}) as {
        name?: unknown;
        runner_group_id?: unknown;
        labels?: unknown;
        work_folder?: unknown;
      };
      const problems: string[] = [];
      if (typeof body.name !== 'string' || !body.name) problems.push('name is required');
      if (typeof body.runner_group_id !== 'number' || !Number.isInteger(body.runner_group_id)) {
        problems.push('runner_group_id is required');
      }
      const labels = body.labels;
      if (
        !Array.isArray(labels) ||
        labels.length < 1 ||
        labels.length > 100 ||
        !labels.every((l) => typeof l === 'string')
      ) {
        problems.push('labels must be 1 to 100 strings');
      }
      if (problems.length) return error(422, 'Validation Failed', { errors: problems });
      const name = body.name as string;
      const groupId = body.runner_group_id as number;
      if (scope.kind === 'org' ? !this.#groups.some((g) => g.id === groupId) : groupId !== 1) {
        return error(404, 'Not Found');
      }
      if ([...this.#runners.values()].some((r) => r.name === name && this.#sameScope(r.scope, scope))) {
        return error(409, `Already exists - A runner with the name ${name} already exists.`);
      }
      const runner: FakeRunner = {
        id: ++this.#nextRunnerId,
        name,
        scope,
        labels: [...(labels as string[])],
        groupId,
        status: 'offline',
        busy: false,
        jobId: null,
        createdAt: this.clock.now(),
      };
      this.#runners.set(runner.id, runner);
      const files = {
        '.runner': Buffer.from(
          JSON.stringify({ AgentId: runner.id, AgentName: name, PoolId: groupId, Ephemeral: true }),
        ).toString('base64'),
        '.credentials': Buffer.from(JSON.stringify({ Scheme: 'OAuth' })).toString('base64'),
        '.credentials_rsaparams': randomBytes(32).toString('base64'),
      };
      const encoded = Buffer.from(JSON.stringify(files)).toString('base64');
      this.credentialsIssued.push(encoded);
      return { status: 201, body: { runner: restRunner(runner), encoded_jit_config: encoded } };
    };
    this.#route('POST', '/orgs/{org}/actions/runners/generate-jitconfig', 'token', generateJitconfig);
    this.#route(
      'POST',
      '/repos/{owner}/{repo}/actions/runners/generate-jitconfig',
      'token',
      generateJitconfig,
    );

    const listRunners = (ctx: Context): Reply => {
      const scope = this.#scopeOf(ctx);
      if ('status' in scope) return scope;
      const name = ctx.url.searchParams.get('name');
      const items = [...this.#runners.values()]
        .filter((r) => this.#sameScope(r.scope, scope) && (!name || r.name === name))
        .sort((a, b) => a.id - b.id)
        .map(restRunner);
      return { status: 200, page: { key: 'runners', items } };
    };
    this.#route('GET', '/orgs/{org}/actions/runners', 'token', listRunners);
    this.#route('GET', '/repos/{owner}/{repo}/actions/runners', 'token', listRunners);

    const deleteRunner = (ctx: Context): Reply => {
      const scope = this.#scopeOf(ctx);
      if ('status' in scope) return scope;
      const runner = this.#runners.get(Number(ctx.params.runner_id));
      if (!runner || !this.#sameScope(runner.scope, scope)) return error(404, 'Not Found');
      if (runner.busy)
        return error(422, `Bad request - Runner "${runner.name}" is still running a job"`, { errors: [] });
      this.#runners.delete(runner.id);
      return { status: 204 };
    };
    this.#route('DELETE', '/orgs/{org}/actions/runners/{runner_id}', 'token', deleteRunner);
    this.#route('DELETE', '/repos/{owner}/{repo}/actions/runners/{runner_id}', 'token', deleteRunner);
  }
}
