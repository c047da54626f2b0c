import { createHash, type KeyObject, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyAppJwt } from '../fake-github/jwt.ts';
import {
  AGENT_NAMESPACE,
  encodedJitConfig,
  type FakeAgent,
  type FakeRunnerGroup,
  type FakeScaleSet,
  type FakeScaleSetJob,
  type JobMessage,
  type JobMessageType,
  type JobResult,
  jobMessage,
  list,
  queueMessage,
  runnerGroupBody,
  runnerReference,
  type ScaleSetLabel,
  type Statistics,
  scaleSetBody,
  serviceError,
  sessionBody,
  signJwt,
} from './wire.ts';

/**
 * A stand-in for the GitHub Actions service as runner scale-set clients see it (the protocol of
 * `github.com/actions/scaleset`, which actions-runner-controller uses). One loopback port serves both
 * halves of the bootstrap and the service itself:
 *
 *   {origin}/api/v3/...             GitHub REST, GHES-style: App JWT → installation token →
 *                                   registration-token → POST /actions/runner-registration
 *   {origin}/tenant/{id}/_apis/...  the Actions service (admin JWT from runner-registration)
 *   {origin}/broker/sessions/{sid}/messages   the session's long-poll queue (queue token)
 *
 * The GHES shape is not a choice: the client derives the REST URL from the config URL, and any host
 * other than github.com (or *.ghe.com) gets `/api/v3`. With `github` set, REST calls the fake does not
 * serve itself (access_tokens, runs, jobs, ...) are forwarded to a FakeGithub, whose installation tokens
 * and PATs then also open registration-token: one REST host for a client, two fakes behind it.
 *
 * Jobs are scripted: the test queues them for a scale set, connects runners by their JIT name and
 * completes jobs; the fake produces the messages and statistics GitHub would. Token lifetimes,
 * requeue delays and pickup deadlines follow `clock`; long polls wait in real time.
 */

export interface FakeActionsClock {
  now(): number;
}

export interface FakeActionsServiceOptions {
  clock?: FakeActionsClock;
  /** The organisation of the config URL `{origin}/{org}`. */
  org?: string;
  /** A GitHub App whose JWTs access_tokens accepts (when `github` is not set). */
  app?: { appId: number; clientId?: string; publicKey: KeyObject; installationId?: number };
  /** Personal access tokens accepted for registration-token. */
  pats?: string[];
  /** A started FakeGithub (or anything with its apiUrl): other REST calls go there, and its tokens count. */
  github?: { readonly apiUrl: string };
  /** Runner groups besides Default (id 1), ids from 2. */
  runnerGroups?: string[];
  /**
   * 'explicit' (GHES, and github.com until 2026): JobAvailable, the client acquires, then JobAssigned.
   * 'immediate' (github.com now): jobs are assigned to the scale set without an acquire step.
   */
  acquisition?: 'explicit' | 'immediate';
  /** How long a poll waits for a message before answering 202 (real time; GitHub: about 50 s). */
  longPollMs?: number;
  adminTokenTtlMs?: number;
  queueTokenTtlMs?: number;
  installationTokenTtlMs?: number;
  registrationTokenTtlMs?: number;
  /** How long an assigned job waits for a runner before GitHub takes it back (clock time). */
  pickupTimeoutMs?: number;
  /** The delay before a taken-back job is offered again; it grows with each attempt (× attempt). */
  requeueDelayMs?: number;
  /** How often a job is taken back and offered again before GitHub gives up on it. */
  maxRequeues?: number;
  /**
   * A session whose queue nobody polls for this long (clock time) ends, as the service ends the
   * session of a listener that died without deleting it; unset, sessions end only when deleted.
   */
  sessionIdleTimeoutMs?: number;
  /** Job messages per queue message (GitHub: at most 50). */
  maxJobMessagesPerMessage?: number;
  /** GitHub REST path prefix; the scaleset client insists on /api/v3 for a non-github.com host. */
  restPrefix?: string;
}

/** What a test says about a job when queuing it; everything has a plausible default. */
export interface QueueScaleSetJob {
  repository?: string;
  owner?: string;
  eventName?: string;
  workflowRef?: string;
  displayName?: string;
  labels?: string[];
  workflowRunId?: number;
  jobId?: string;
}

export interface FakeSession {
  id: string;
  scaleSetId: number;
  ownerName: string;
  queueToken: string;
  queueTokenExpiresAt: number;
  createdAt: number;
  refreshes: number;
  /** Clock time of the last request on the session's queue, and how many polls wait on it now. */
  lastSeenAt: number;
  polling: number;
}

export interface ActionsRequestRecord {
  method: string;
  /** The route template, e.g. `{tenant}/_apis/runtime/runnerscalesets/{id}/sessions`. */
  route: string;
  path: string;
  status: number;
  at: number;
  /** The `api-version` query parameter, when sent. */
  apiVersion: string | null;
  /** The X-ScaleSetMaxCapacity header of a poll. */
  maxCapacity: number | null;
}

export interface MessageDelivery {
  messageId: number;
  sessionId: string;
  scaleSetId: number;
  lastMessageId: number;
  jobMessages: JobMessage[];
  statistics: Statistics;
  at: number;
}

interface QueuedMessage {
  id: number;
  body: JobMessage[];
}

interface ScaleSetQueue {
  /** Job messages not yet packed into a queue message. */
  pending: JobMessage[];
  /** Packed and not acknowledged: delivered again until deleted. */
  unacknowledged: QueuedMessage[];
}

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type AuthKind = 'app-jwt' | 'github-token' | 'remote-auth' | 'admin' | 'queue' | 'none';

interface Context {
  url: URL;
  params: Record<string, string>;
  body: unknown;
  headers: IncomingMessage['headers'];
  /** The session whose queue token authorised the request ('queue' routes). */
  session: FakeSession | null;
  /** The registration token's scope path, e.g. `acme` or `acme/app` ('remote-auth' routes). */
  registrationScope: string | null;
  /** Resolves when the client went away (long polls stop waiting). */
  closed: Promise<void>;
}

interface Route {
  method: string;
  template: string;
  pattern: RegExp;
  names: string[];
  auth: AuthKind;
  handler: (ctx: Context) => Reply | Promise<Reply>;
}

const fail = (status: number, exception: string, message: string, namespace?: string): Reply => ({
  status,
  body: serviceError(exception, message, namespace),
});
const githubError = (status: number, message: string): Reply => ({
  status,
  body: { message, documentation_url: 'https://docs.github.com/rest', status: String(status) },
});

const record = (value: unknown): Record<string, unknown> =>
  value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};

export class FakeActionsService {
  readonly clock: FakeActionsClock;
  readonly org: string;
  readonly installationId: number;
  readonly requests: ActionsRequestRecord[] = [];
  readonly deliveries: MessageDelivery[] = [];
  /** Message ids the client deleted (acknowledged). */
  readonly acknowledged: number[] = [];
  /** Fault knobs; tests flip them at any time. */
  readonly faults = {
    /** The next N requests (any route) fail with `serverErrorStatus`. */
    serverErrors: 0,
    serverErrorStatus: 500 as 500 | 502 | 503 | 504,
    /** Real delay before every response. */
    latencyMs: 0,
  };

  readonly #options: FakeActionsServiceOptions;
  readonly #tenantId = `t${randomBytes(6).toString('hex')}`;
  readonly #jwtSecret = randomBytes(32);
  readonly #groups: FakeRunnerGroup[];
  readonly #scaleSets = new Map<number, FakeScaleSet>();
  readonly #jobs = new Map<number, FakeScaleSetJob>();
  readonly #agents = new Map<number, FakeAgent>();
  readonly #sessions = new Map<string, FakeSession>();
  readonly #queues = new Map<number, ScaleSetQueue>();
  /** The last X-ScaleSetMaxCapacity per scale set: GitHub assigns no more jobs than that. */
  readonly #capacity = new Map<number, number>();
  readonly #waiters = new Map<number, Set<() => void>>();
  readonly #installationTokens = new Map<string, number>();
  readonly #registrationTokens = new Map<string, { expiresAt: number; scope: string }>();
  readonly #adminTokens = new Map<string, number>();
  readonly #routes: Route[] = [];
  #server: Server | null = null;
  #ticker: ReturnType<typeof setInterval> | null = null;
  #origin = '';
  #stopping = false;
  #nextScaleSetId = 0;
  #nextAgentId = 1000;
  #nextRequestId = 7_000;
  #nextRunId = 9_100_000_000;
  #nextMessageId = 0;

  constructor(options: FakeActionsServiceOptions = {}) {
    this.#options = options;
    this.clock = options.clock ?? { now: () => Date.now() };
    this.org = options.org ?? 'acme';
    this.installationId = options.app?.installationId ?? 4242;
    this.#groups = [
      { id: 1, name: 'Default', isDefault: true },
      ...(options.runnerGroups ?? []).map((name, i) => ({ id: 2 + i, name, isDefault: false })),
    ];
    this.#defineRoutes();
  }

  // ── lifecycle ────────────────────────────────────────────────────────────────────────────────

  /** Starts listening on 127.0.0.1 and returns the config URL clients are given. */
  async start(): Promise<string> {
    const server = createServer((req, res) => {
      this.#serve(req, res).catch((err: unknown) => {
        if (res.headersSent) return;
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: `fake actions service failed: ${(err as Error).message}` }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.#origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.githubConfigUrl;
  }

  /** For real-time use: processes due transitions (pickup deadlines, requeues) every `intervalMs`. */
  runInRealTime(intervalMs = 250): void {
    this.#ticker ??= setInterval(() => this.tick(), intervalMs);
  }

  async stop(): Promise<void> {
    if (this.#ticker) clearInterval(this.#ticker);
    this.#ticker = null;
    this.#stopping = true;
    for (const scaleSetId of this.#waiters.keys()) this.#wake(scaleSetId);
    const server = this.#server;
    this.#server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get origin(): string {
    return this.#origin;
  }

  /** What a scale-set client is configured with (GitHub's `githubConfigUrl`), org scope. */
  get githubConfigUrl(): string {
    return `${this.#origin}/${this.org}`;
  }

  /** The GitHub REST base the client derives from the config URL. */
  get githubApiUrl(): string {
    return `${this.#origin}${this.#restPrefix}`;
  }

  /** The Actions service base URL runner-registration hands out (with a trailing slash). */
  get tenantUrl(): string {
    return `${this.#origin}/tenant/${this.#tenantId}/`;
  }

  // ── scripting: scale sets, jobs, runners ─────────────────────────────────────────────────────

  /** Creates a scale set as a client would (for tests that start with one in place). */
  addScaleSet(name: string, options: { runnerGroupId?: number; labels?: string[] } = {}): FakeScaleSet {
    const group = this.#groups.find((g) => g.id === (options.runnerGroupId ?? 1));
    if (!group) throw new Error(`no runner group ${options.runnerGroupId}`);
    return this.#createScaleSet(
      name,
      group,
      (options.labels ?? [name]).map((l) => ({ name: l, type: 'System' })),
      true,
    );
  }

  /**
   * A workflow job GitHub matched to this scale set. 'explicit' acquisition announces it
   * (JobAvailable) and waits for the client to acquire it; 'immediate' assigns it right away when
   * the scale set has capacity. Returns its runnerRequestId, the handle for the other calls.
   */
  queueJob(scaleSetId: number, spec: QueueScaleSetJob = {}): number {
    const set = this.#scaleSet(scaleSetId);
    const repository = spec.repository ?? 'app';
    const owner = spec.owner ?? this.org;
    const runId = spec.workflowRunId ?? this.#nextRunId++;
    const job: FakeScaleSetJob = {
      runnerRequestId: ++this.#nextRequestId,
      scaleSetId,
      jobId: spec.jobId ?? randomUUID(),
      repositoryName: repository,
      ownerName: owner,
      workflowRef: spec.workflowRef ?? `${owner}/${repository}/.github/workflows/ci.yml@refs/heads/main`,
      displayName: spec.displayName ?? 'build',
      workflowRunId: runId,
      eventName: spec.eventName ?? 'push',
      labels: spec.labels ?? set.labels.map((l) => l.name),
      state: 'available',
      queuedAt: this.clock.now(),
      scaleSetAssignedAt: null,
      runnerAssignedAt: null,
      finishedAt: null,
      runner: null,
      result: null,
      requeues: 0,
      dueAt: null,
    };
    this.#jobs.set(job.runnerRequestId, job);
    this.#offer(job);
    this.#settle(scaleSetId);
    return job.runnerRequestId;
  }

  queueJobs(scaleSetId: number, count: number, spec: QueueScaleSetJob = {}): number[] {
    return Array.from({ length: count }, () => this.queueJob(scaleSetId, spec));
  }

  /**
   * The runner process with this JIT name connected: it goes online and, when a job assigned to its
   * scale set waits, takes the oldest (JobStarted). Returns that job's runnerRequestId, or null while
   * it waits idle (it takes the next job assigned).
   */
  connectRunner(name: string): number | null {
    const agent = [...this.#agents.values()].find((a) => a.name === name);
    if (!agent) throw new Error(`no runner named ${name}`);
    agent.status = 'online';
    this.#settle(agent.scaleSetId);
    return agent.runnerRequestId;
  }

  /** The running job ended (JobCompleted); GitHub then removes its one-job runner. */
  completeJob(runnerRequestId: number, result: JobResult = 'succeeded'): void {
    const job = this.#job(runnerRequestId);
    if (job.state !== 'running') throw new Error(`job ${runnerRequestId} is ${job.state}, not running`);
    this.#finish(job, result);
  }

  /** The workflow run was cancelled: wherever the job is, it ends canceled. */
  cancelJob(runnerRequestId: number): void {
    const job = this.#job(runnerRequestId);
    if (job.state === 'completed' || job.state === 'canceled') return;
    this.#finish(job, 'canceled');
  }

  /** Processes what is due at the clock's time: pickup deadlines, requeues, idle sessions. */
  tick(): void {
    this.#endIdleSessions();
    const now = this.clock.now();
    const touched = new Set<number>();
    for (const job of this.#jobs.values()) {
      if (job.dueAt === null || job.dueAt > now) continue;
      touched.add(job.scaleSetId);
      if (job.state === 'assigned') {
        // No runner took it in time: GitHub cancels the assignment and offers the job again later.
        this.#emit('JobCompleted', { ...job, result: 'canceled', finishedAt: now });
        if (job.requeues < this.#maxRequeues) {
          job.requeues++;
          job.state = 'requeued';
          job.scaleSetAssignedAt = null;
          job.dueAt = now + this.#requeueDelayMs * job.requeues;
        } else {
          job.state = 'canceled';
          job.result = 'canceled';
          job.finishedAt = now;
          job.dueAt = null;
        }
      } else if (job.state === 'requeued') {
        job.state = 'available';
        job.dueAt = null;
        this.#offer(job);
      }
    }
    for (const scaleSetId of touched) this.#settle(scaleSetId);
  }

  // ── faults ───────────────────────────────────────────────────────────────────────────────────

  /** Every admin token issued so far stops working (401); their `exp` claims still look valid. */
  expireAdminTokens(): void {
    this.#adminTokens.clear();
  }

  /** The queue tokens of every session (or one scale set's) expire now: the next poll gets 401. */
  expireQueueTokens(scaleSetId?: number): void {
    for (const session of this.#sessions.values()) {
      if (scaleSetId === undefined || session.scaleSetId === scaleSetId) {
        session.queueTokenExpiresAt = this.clock.now();
      }
    }
  }

  /** Every token the fake issued expires now: admin, queue, registration and installation tokens. */
  expireTokensNow(): void {
    this.expireAdminTokens();
    this.expireQueueTokens();
    this.#registrationTokens.clear();
    this.#installationTokens.clear();
  }

  /**
   * Puts raw entries into the scale set's next message, as they are (they need not be job messages):
   * for tests of a client's handling of what it cannot read.
   */
  injectJobMessages(scaleSetId: number, entries: readonly unknown[]): void {
    this.#queue(scaleSetId).pending.push(...(entries as JobMessage[]));
    this.#wake(scaleSetId);
  }

  /** The service forgets the scale set's session (as after a takeover or a cleanup). */
  dropSession(scaleSetId: number): void {
    for (const [id, session] of this.#sessions)
      if (session.scaleSetId === scaleSetId) this.#sessions.delete(id);
    this.#wake(scaleSetId);
  }

  // ── inspection ───────────────────────────────────────────────────────────────────────────────

  scaleSets(): FakeScaleSet[] {
    return [...this.#scaleSets.values()];
  }

  sessions(scaleSetId?: number): FakeSession[] {
    return [...this.#sessions.values()].filter(
      (s) => scaleSetId === undefined || s.scaleSetId === scaleSetId,
    );
  }

  jobs(scaleSetId?: number): FakeScaleSetJob[] {
    return [...this.#jobs.values()].filter((j) => scaleSetId === undefined || j.scaleSetId === scaleSetId);
  }

  job(runnerRequestId: number): FakeScaleSetJob | undefined {
    return this.#jobs.get(runnerRequestId);
  }

  runners(scaleSetId?: number): FakeAgent[] {
    return [...this.#agents.values()].filter((a) => scaleSetId === undefined || a.scaleSetId === scaleSetId);
  }

  /** The last X-ScaleSetMaxCapacity a client sent for the scale set. */
  maxCapacity(scaleSetId: number): number | undefined {
    return this.#capacity.get(scaleSetId);
  }

  /**
   * The scale set's statistics, from the fake's own state. Assigned jobs include running ones; idle
   * runners are connected ones without a job, so registered = busy + idle + not yet connected.
   */
  statistics(scaleSetId: number): Statistics {
    const jobs = this.jobs(scaleSetId);
    const count = (...states: FakeScaleSetJob['state'][]) =>
      jobs.filter((j) => states.includes(j.state)).length;
    const agents = this.runners(scaleSetId);
    const busy = agents.filter((a) => a.runnerRequestId !== null).length;
    return {
      totalAvailableJobs: count('available'),
      totalAcquiredJobs: count('acquired'),
      totalAssignedJobs: count('assigned', 'running'),
      totalRunningJobs: count('running'),
      totalRegisteredRunners: agents.length,
      totalBusyRunners: busy,
      totalIdleRunners: agents.filter((a) => a.status === 'online' && a.runnerRequestId === null).length,
    };
  }

  // ── internals: jobs, runners, messages ───────────────────────────────────────────────────────

  get #restPrefix(): string {
    return this.#options.restPrefix ?? '/api/v3';
  }
  get #maxRequeues(): number {
    return this.#options.maxRequeues ?? 3;
  }
  get #requeueDelayMs(): number {
    return this.#options.requeueDelayMs ?? 30_000;
  }

  #scaleSet(id: number): FakeScaleSet {
    const set = this.#scaleSets.get(id);
    if (!set) throw new Error(`no scale set ${id}`);
    return set;
  }

  #job(runnerRequestId: number): FakeScaleSetJob {
    const job = this.#jobs.get(runnerRequestId);
    if (!job) throw new Error(`no job with runnerRequestId ${runnerRequestId}`);
    return job;
  }

  #createScaleSet(name: string, group: FakeRunnerGroup, labels: ScaleSetLabel[], disableUpdate: boolean) {
    const set: FakeScaleSet = {
      id: ++this.#nextScaleSetId,
      name,
      runnerGroupId: group.id,
      runnerGroupName: group.name,
      labels,
      disableUpdate,
      createdAt: this.clock.now(),
    };
    this.#scaleSets.set(set.id, set);
    this.#queues.set(set.id, { pending: [], unacknowledged: [] });
    return set;
  }

  #queue(scaleSetId: number): ScaleSetQueue {
    let queue = this.#queues.get(scaleSetId);
    if (!queue) {
      queue = { pending: [], unacknowledged: [] };
      this.#queues.set(scaleSetId, queue);
    }
    return queue;
  }

  /** Records a job message for the scale set's queue, as the job stands now. */
  #emit(type: JobMessageType, job: FakeScaleSetJob): void {
    this.#queue(job.scaleSetId).pending.push(jobMessage(type, job, this.tenantUrl));
    this.#wake(job.scaleSetId);
  }

  /** A job becomes available: announced for acquisition, or (immediate) left for #settle to assign. */
  #offer(job: FakeScaleSetJob): void {
    if (this.#options.acquisition !== 'immediate') this.#emit('JobAvailable', job);
  }

  /**
   * Moves the scale set's jobs as far as GitHub would: jobs waiting for the scale set are assigned
   * while it has capacity (its last X-ScaleSetMaxCapacity), and assigned jobs go to idle connected
   * runners, oldest job to longest-waiting runner.
   */
  #settle(scaleSetId: number): void {
    const now = this.clock.now();
    const jobs = this.jobs(scaleSetId).sort((a, b) => a.runnerRequestId - b.runnerRequestId);
    const waiting = this.#options.acquisition === 'immediate' ? 'available' : 'acquired';
    const capacity = this.#capacity.get(scaleSetId) ?? Number.POSITIVE_INFINITY;
    let assigned = jobs.filter((j) => j.state === 'assigned' || j.state === 'running').length;
    for (const job of jobs) {
      if (assigned >= capacity) break;
      if (job.state !== waiting) continue;
      job.state = 'assigned';
      job.scaleSetAssignedAt = now;
      job.dueAt = now + (this.#options.pickupTimeoutMs ?? 300_000);
      assigned++;
      this.#emit('JobAssigned', job);
    }
    const idle = this.runners(scaleSetId)
      .filter((a) => a.status === 'online' && a.runnerRequestId === null)
      .sort((a, b) => a.createdAt - b.createdAt || a.id - b.id);
    for (const job of jobs) {
      if (job.state !== 'assigned') continue;
      const runner = idle.shift();
      if (!runner) break;
      runner.runnerRequestId = job.runnerRequestId;
      job.state = 'running';
      job.runner = { id: runner.id, name: runner.name };
      job.runnerAssignedAt = now;
      job.dueAt = null;
      this.#emit('JobStarted', job);
    }
  }

  #finish(job: FakeScaleSetJob, result: JobResult): void {
    job.state = result === 'canceled' ? 'canceled' : 'completed';
    job.result = result;
    job.finishedAt = this.clock.now();
    job.dueAt = null;
    this.#emit('JobCompleted', job);
    // A JIT runner runs one job; GitHub removes it afterwards.
    if (job.runner) this.#agents.delete(job.runner.id);
    this.#settle(job.scaleSetId);
  }

  /** The next message for a poll: the oldest unacknowledged one after lastMessageId, or a new batch. */
  #nextMessage(scaleSetId: number, lastMessageId: number): QueuedMessage | null {
    const queue = this.#queue(scaleSetId);
    const waiting = queue.unacknowledged.find((m) => m.id > lastMessageId);
    if (waiting) return waiting;
    if (queue.pending.length === 0) return null;
    const message = {
      id: ++this.#nextMessageId,
      body: queue.pending.splice(0, this.#options.maxJobMessagesPerMessage ?? 50),
    };
    queue.unacknowledged.push(message);
    return message;
  }

  #endIdleSessions(): void {
    const timeout = this.#options.sessionIdleTimeoutMs;
    if (timeout === undefined) return;
    const now = this.clock.now();
    for (const [id, session] of this.#sessions) {
      if (session.polling === 0 && now - session.lastSeenAt > timeout) {
        this.#sessions.delete(id);
        this.#wake(session.scaleSetId);
      }
    }
  }

  #wake(scaleSetId: number): void {
    const waiters = this.#waiters.get(scaleSetId);
    if (!waiters) return;
    this.#waiters.delete(scaleSetId);
    for (const wake of waiters) wake();
  }

  /** Waits (real time) until something happens to the scale set's queue, the deadline or a disconnect. */
  #waitForChange(scaleSetId: number, ms: number, closed: Promise<void>): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.#waiters.get(scaleSetId);
      if (!waiters) {
        waiters = new Set();
        this.#waiters.set(scaleSetId, waiters);
      }
      const done = () => {
        clearTimeout(timer);
        this.#waiters.get(scaleSetId)?.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
      void closed.then(done);
    });
  }

  async #poll(session: FakeSession, lastMessageId: number, closed: Promise<void>): Promise<Reply> {
    session.polling++;
    try {
      return await this.#waitForMessage(session, lastMessageId, closed);
    } finally {
      session.polling--;
      session.lastSeenAt = this.clock.now();
    }
  }

  async #waitForMessage(session: FakeSession, lastMessageId: number, closed: Promise<void>): Promise<Reply> {
    const deadline = Date.now() + (this.#options.longPollMs ?? 50_000);
    let gone = false;
    void closed.then(() => {
      gone = true;
    });
    for (;;) {
      if (!this.#sessions.has(session.id)) return fail(401, 'VssUnauthorizedException', 'Session ended.');
      const message = this.#nextMessage(session.scaleSetId, lastMessageId);
      if (message) {
        const statistics = this.statistics(session.scaleSetId);
        this.deliveries.push({
          messageId: message.id,
          sessionId: session.id,
          scaleSetId: session.scaleSetId,
          lastMessageId,
          jobMessages: message.body,
          statistics,
          at: this.clock.now(),
        });
        return { status: 200, body: queueMessage(message.id, message.body, statistics) };
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0 || gone || this.#stopping) return { status: 202 };
      await this.#waitForChange(session.scaleSetId, remaining, closed);
    }
  }

  // ── internals: HTTP ──────────────────────────────────────────────────────────────────────────

  #route(method: string, template: string, auth: AuthKind, handler: Route['handler']): void {
    const names: string[] = [];
    const source = template.replace(/\{(\w+)\}/g, (_m, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    this.#routes.push({ method, template, pattern: new RegExp(`^${source}$`), names, auth, handler });
  }

  #match(method: string, path: string): { route: Route; params: Record<string, string> } | null {
    for (const route of this.#routes) {
      const m = route.method === method ? route.pattern.exec(path) : null;
      if (m) {
        const params = Object.fromEntries(route.names.map((n, i) => [n, decodeURIComponent(m[i + 1] ?? '')]));
        if (params.tenant !== undefined && params.tenant !== this.#tenantId) continue;
        return { route, params };
      }
    }
    return null;
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', this.#origin);
    const method = req.method ?? 'GET';
    // The client joins paths onto the tenant URL and may keep or drop the trailing slash.
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
    this.tick();
    if (this.faults.latencyMs > 0) await new Promise((r) => setTimeout(r, this.faults.latencyMs));

    const capacityHeader = req.headers['x-scalesetmaxcapacity'];
    const maxCapacity =
      typeof capacityHeader === 'string' && /^\d+$/.test(capacityHeader) ? Number(capacityHeader) : null;
    const send = (route: string, reply: Reply) => {
      this.requests.push({
        method,
        route,
        path: url.pathname,
        status: reply.status,
        at: this.clock.now(),
        apiVersion: url.searchParams.get('api-version'),
        maxCapacity,
      });
      if (res.destroyed) return;
      const headers: Record<string, string> = { ActivityId: randomUUID(), ...reply.headers };
      if (reply.body !== undefined) headers['content-type'] = 'application/json; charset=utf-8';
      res.writeHead(reply.status, headers);
      res.end(reply.body === undefined ? undefined : JSON.stringify(reply.body));
    };

    const match = this.#match(method, path);
    if (!match) {
      if (this.#options.github && path.startsWith(`${this.#restPrefix}/`)) {
        await this.#forward(req, res, url, raw);
        this.requests.push({
          method,
          route: 'forwarded',
          path: url.pathname,
          status: res.statusCode,
          at: this.clock.now(),
          apiVersion: null,
          maxCapacity,
        });
        return;
      }
      send(path, fail(404, 'ResourceNotFoundException', `No route for ${method} ${path}`));
      return;
    }
    const { route, params } = match;
    if (this.faults.serverErrors > 0) {
      this.faults.serverErrors--;
      send(
        route.template,
        fail(this.faults.serverErrorStatus, 'ServiceUnavailableException', 'Injected fault'),
      );
      return;
    }

    const ctx: Context = {
      url,
      params,
      body: undefined,
      headers: req.headers,
      session: null,
      registrationScope: null,
      closed: new Promise((resolve) => res.once('close', () => resolve())),
    };
    const denied = await this.#authorize(route.auth, req.headers.authorization ?? '', ctx);
    if (denied) {
      send(route.template, denied);
      return;
    }
    if (raw.length > 0) {
      try {
        ctx.body = JSON.parse(raw.toString('utf8'));
      } catch {
        send(route.template, fail(400, 'ArgumentException', 'The request body is not JSON.', 'System'));
        return;
      }
    }
    send(route.template, await route.handler(ctx));
  }

  /** Null when the credential fits the route, otherwise the refusal. */
  async #authorize(kind: AuthKind, authorization: string, ctx: Context): Promise<Reply | null> {
    const [scheme = '', credential = ''] = authorization.split(/\s+/, 2);
    const now = this.clock.now();
    const unauthorized = () => fail(401, 'VssUnauthorizedException', 'The token is invalid or expired.');
    switch (kind) {
      case 'none':
        return null;
      case 'app-jwt': {
        const app = this.#options.app;
        const issuers = app ? [String(app.appId), ...(app.clientId ? [app.clientId] : [])] : [];
        const check =
          app && scheme.toLowerCase() === 'bearer'
            ? verifyAppJwt(credential, app.publicKey, issuers, now)
            : ({ ok: false, message: 'A JSON web token could not be decoded' } as const);
        return check.ok ? null : githubError(401, check.message);
      }
      case 'github-token': {
        if (!['token', 'bearer'].includes(scheme.toLowerCase()) || !credential) {
          return githubError(401, 'Requires authentication');
        }
        const expiresAt = this.#installationTokens.get(credential);
        if ((expiresAt !== undefined && expiresAt > now) || this.#options.pats?.includes(credential))
          return null;
        if (this.#options.github && (await this.#upstreamAccepts(authorization))) return null;
        return githubError(401, 'Bad credentials');
      }
      case 'remote-auth': {
        const token = this.#registrationTokens.get(credential);
        if (scheme !== 'RemoteAuth' || !token || token.expiresAt <= now)
          return githubError(401, 'Bad credentials');
        ctx.registrationScope = token.scope;
        return null;
      }
      case 'admin': {
        const expiresAt = scheme.toLowerCase() === 'bearer' ? this.#adminTokens.get(credential) : undefined;
        return expiresAt !== undefined && expiresAt > now ? null : unauthorized();
      }
      case 'queue': {
        const session = [...this.#sessions.values()].find((s) => s.queueToken === credential);
        if (scheme.toLowerCase() !== 'bearer' || !session || session.queueTokenExpiresAt <= now) {
          return unauthorized();
        }
        session.lastSeenAt = now;
        ctx.session = session;
        return null;
      }
    }
  }

  /** Whether the composed FakeGithub takes this Authorization (its free /rate_limit answers 200). */
  async #upstreamAccepts(authorization: string): Promise<boolean> {
    const res = await fetch(`${this.#options.github?.apiUrl}/rate_limit`, { headers: { authorization } });
    await res.arrayBuffer();
    return res.ok;
  }

  async #forward(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): Promise<void> {
    const target = `${this.#options.github?.apiUrl}${url.pathname.slice(this.#restPrefix.length)}${url.search}`;
    const headers: Record<string, string> = {};
    for (const name of ['authorization', 'accept', 'content-type', 'if-none-match', 'user-agent']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const upstream = await fetch(target, {
      method: req.method ?? 'GET',
      headers,
      body: body.length > 0 ? new Uint8Array(body) : undefined,
    });
    const replyHeaders: Record<string, string> = {};
    upstream.headers.forEach((value, name) => {
      if (!['content-length', 'content-encoding', 'transfer-encoding', 'connection'].includes(name)) {
        replyHeaders[name] = value;
      }
    });
    const payload = Buffer.from(await upstream.arrayBuffer());
    res.writeHead(upstream.status, replyHeaders);
    res.end(payload);
  }

  #issueAdminToken(): string {
    const now = this.clock.now();
    const expiresAt = now + (this.#options.adminTokenTtlMs ?? 3_600_000);
    const token = signJwt(
      {
        iss: 'fake-actions-service',
        aud: this.tenantUrl,
        sub: 'scaleset-admin',
        jti: randomUUID(),
        iat: Math.floor(now / 1000),
        nbf: Math.floor(now / 1000),
        exp: Math.floor(expiresAt / 1000),
      },
      this.#jwtSecret,
    );
    this.#adminTokens.set(token, expiresAt);
    return token;
  }

  #issueQueueToken(session: { id: string; scaleSetId: number }): { token: string; expiresAt: number } {
    const now = this.clock.now();
    const expiresAt = now + (this.#options.queueTokenTtlMs ?? 3_600_000);
    const token = signJwt(
      {
        iss: 'fake-actions-service',
        sub: `session:${session.id}`,
        scaleSetId: session.scaleSetId,
        jti: randomUUID(),
        iat: Math.floor(now / 1000),
        exp: Math.floor(expiresAt / 1000),
      },
      this.#jwtSecret,
    );
    return { token, expiresAt };
  }

  #messageQueueUrl(session: FakeSession): string {
    return `${this.#origin}/broker/sessions/${session.id}/messages`;
  }

  #scaleSetReply(set: FakeScaleSet) {
    return scaleSetBody(set, this.tenantUrl, this.statistics(set.id));
  }

  #sessionReply(session: FakeSession): Reply {
    const set = this.#scaleSet(session.scaleSetId);
    return {
      status: 200,
      body: sessionBody(
        { id: session.id, ownerName: session.ownerName, queueToken: session.queueToken },
        this.#scaleSetReply(set),
        this.#messageQueueUrl(session),
        this.statistics(set.id),
      ),
    };
  }

  #defineRoutes(): void {
    this.#defineGithubRoutes();
    this.#defineScaleSetRoutes();
    this.#defineSessionRoutes();
    this.#defineRunnerRoutes();
  }

  // ── routes: GitHub REST bootstrap ────────────────────────────────────────────────────────────

  #defineGithubRoutes(): void {
    const rest = this.#restPrefix;
    if (!this.#options.github) {
      this.#route('POST', `${rest}/app/installations/{installation_id}/access_tokens`, 'app-jwt', (ctx) => {
        if (Number(ctx.params.installation_id) !== this.installationId) return githubError(404, 'Not Found');
        const token = `ghs_${randomBytes(27).toString('base64url')}`;
        const expiresAt = this.clock.now() + (this.#options.installationTokenTtlMs ?? 3_600_000);
        this.#installationTokens.set(token, expiresAt);
        return {
          status: 201,
          body: {
            token,
            expires_at: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z'),
            permissions: { organization_self_hosted_runners: 'write', metadata: 'read' },
            repository_selection: 'all',
          },
        };
      });
    }

    const registrationToken = (scope: string | null): Reply => {
      if (scope === null) return githubError(404, 'Not Found');
      const expiresAt = this.clock.now() + (this.#options.registrationTokenTtlMs ?? 3_600_000);
      // GitHub's registration tokens: 29 upper-case letters and digits.
      const token = `A${createHash('sha256').update(randomBytes(16)).digest('hex').toUpperCase().slice(0, 28)}`;
      this.#registrationTokens.set(token, { expiresAt, scope });
      return {
        status: 201,
        body: { token, expires_at: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z') },
      };
    };
    this.#route('POST', `${rest}/orgs/{org}/actions/runners/registration-token`, 'github-token', (ctx) =>
      registrationToken(ctx.params.org === this.org ? this.org : null),
    );
    this.#route(
      'POST',
      `${rest}/repos/{owner}/{repo}/actions/runners/registration-token`,
      'github-token',
      (ctx) =>
        registrationToken(ctx.params.owner === this.org ? `${ctx.params.owner}/${ctx.params.repo}` : null),
    );
    this.#route(
      'POST',
      `${rest}/enterprises/{enterprise}/actions/runners/registration-token`,
      'github-token',
      (ctx) => registrationToken(`enterprises/${ctx.params.enterprise}`),
    );

    this.#route('POST', `${rest}/actions/runner-registration`, 'remote-auth', (ctx) => {
      const body = record(ctx.body);
      let scope: string | null = null;
      try {
        scope = new URL(String(body.url)).pathname.replace(/^\/+|\/+$/g, '');
      } catch {
        return githubError(422, 'Validation Failed');
      }
      // The registration token only opens the scope it was issued for.
      if (scope.toLowerCase() !== ctx.registrationScope?.toLowerCase()) return githubError(404, 'Not Found');
      return {
        status: 200,
        body: { url: this.tenantUrl, token: this.#issueAdminToken(), token_schema: 'OAuthAccessToken' },
      };
    });
  }

  // ── routes: scale sets and runner groups ─────────────────────────────────────────────────────

  #defineScaleSetRoutes(): void {
    const base = '/tenant/{tenant}/_apis/runtime';

    this.#route('GET', `${base}/runnergroups`, 'admin', (ctx) => {
      const name = ctx.url.searchParams.get('groupName');
      const groups = this.#groups.filter((g) => name === null || g.name.toLowerCase() === name.toLowerCase());
      const size = (g: FakeRunnerGroup) =>
        this.runners().filter((a) => this.#scaleSets.get(a.scaleSetId)?.runnerGroupId === g.id).length;
      return { status: 200, body: list(groups.map((g) => runnerGroupBody(g, size(g)))) };
    });

    this.#route('GET', `${base}/runnerscalesets`, 'admin', (ctx) => {
      const groupId = ctx.url.searchParams.get('runnerGroupId');
      const name = ctx.url.searchParams.get('name');
      const sets = this.scaleSets().filter(
        (s) =>
          (groupId === null || s.runnerGroupId === Number(groupId)) &&
          (name === null || s.name.toLowerCase() === name.toLowerCase()),
      );
      return { status: 200, body: list(sets.map((s) => this.#scaleSetReply(s))) };
    });

    this.#route('POST', `${base}/runnerscalesets`, 'admin', (ctx) => {
      const body = record(ctx.body);
      const name = typeof body.name === 'string' ? body.name.trim() : '';
      if (!name) return fail(400, 'ArgumentException', 'A runner scale set needs a name.', 'System');
      const group = this.#groups.find((g) => g.id === (Number(body.runnerGroupId) || 1));
      if (!group) return fail(404, 'RunnerGroupNotFoundException', `No runner group ${body.runnerGroupId}.`);
      if (
        this.scaleSets().some(
          (s) => s.runnerGroupId === group.id && s.name.toLowerCase() === name.toLowerCase(),
        )
      ) {
        return fail(409, 'RunnerScaleSetExistsException', `A runner scale set named ${name} already exists.`);
      }
      const set = this.#createScaleSet(
        name,
        group,
        this.#labels(body.labels, name),
        this.#disableUpdate(body),
      );
      return { status: 200, body: this.#scaleSetReply(set) };
    });

    const existing = (ctx: Context): FakeScaleSet | Reply =>
      this.#scaleSets.get(Number(ctx.params.id)) ??
      fail(404, 'RunnerScaleSetNotFoundException', `No runner scale set with id ${ctx.params.id}.`);

    this.#route('GET', `${base}/runnerscalesets/{id}`, 'admin', (ctx) => {
      const set = existing(ctx);
      return 'status' in set ? set : { status: 200, body: this.#scaleSetReply(set) };
    });

    this.#route('PATCH', `${base}/runnerscalesets/{id}`, 'admin', (ctx) => {
      const set = existing(ctx);
      if ('status' in set) return set;
      const body = record(ctx.body);
      if (typeof body.name === 'string' && body.name.trim()) set.name = body.name.trim();
      if (Number(body.runnerGroupId)) {
        const group = this.#groups.find((g) => g.id === Number(body.runnerGroupId));
        if (!group)
          return fail(404, 'RunnerGroupNotFoundException', `No runner group ${body.runnerGroupId}.`);
        set.runnerGroupId = group.id;
        set.runnerGroupName = group.name;
      }
      if (Array.isArray(body.labels) && body.labels.length > 0)
        set.labels = this.#labels(body.labels, set.name);
      if (body.RunnerSetting !== undefined || body.runnerSetting !== undefined) {
        set.disableUpdate = this.#disableUpdate(body);
      }
      return { status: 200, body: this.#scaleSetReply(set) };
    });

    this.#route('DELETE', `${base}/runnerscalesets/{id}`, 'admin', (ctx) => {
      const set = existing(ctx);
      if ('status' in set) return set;
      if (this.jobs(set.id).some((j) => j.state === 'running')) {
        return fail(
          409,
          'JobStillRunningException',
          `Runner scale set ${set.name} still runs jobs.`,
          AGENT_NAMESPACE,
        );
      }
      // Jobs not yet on a runner go back to GitHub's queue, which is outside this fake.
      for (const job of this.jobs(set.id))
        if (job.state !== 'completed' && job.state !== 'canceled') this.#jobs.delete(job.runnerRequestId);
      for (const agent of this.runners(set.id)) this.#agents.delete(agent.id);
      this.dropSession(set.id);
      this.#scaleSets.delete(set.id);
      this.#queues.delete(set.id);
      return { status: 204 };
    });
  }

  #labels(value: unknown, name: string): ScaleSetLabel[] {
    const labels = Array.isArray(value)
      ? value
          .map(record)
          .filter((l) => typeof l.name === 'string' && l.name)
          .map((l) => ({
            name: String(l.name),
            type: typeof l.type === 'string' && l.type ? l.type : 'System',
          }))
      : [];
    return labels.length > 0 ? labels : [{ name, type: 'System' }];
  }

  #disableUpdate(body: Record<string, unknown>): boolean {
    const setting = record(body.RunnerSetting ?? body.runnerSetting);
    return setting.disableUpdate === true;
  }

  // ── routes: sessions, the message queue, acquisition ─────────────────────────────────────────

  #defineSessionRoutes(): void {
    const base = '/tenant/{tenant}/_apis/runtime/runnerscalesets/{id}';

    this.#route('POST', `${base}/sessions`, 'admin', (ctx) => {
      const set = this.#scaleSets.get(Number(ctx.params.id));
      if (!set)
        return fail(404, 'RunnerScaleSetNotFoundException', `No runner scale set with id ${ctx.params.id}.`);
      const ownerName = String(record(ctx.body).ownerName ?? '');
      this.#endIdleSessions();
      if (this.sessions(set.id).length > 0) {
        return fail(
          409,
          'RunnerScaleSetSessionConflictException',
          `The actions runner scaleset ${set.name} already has an active session.`,
        );
      }
      const id = randomUUID();
      const { token, expiresAt } = this.#issueQueueToken({ id, scaleSetId: set.id });
      const session: FakeSession = {
        id,
        scaleSetId: set.id,
        ownerName,
        queueToken: token,
        queueTokenExpiresAt: expiresAt,
        createdAt: this.clock.now(),
        refreshes: 0,
        lastSeenAt: this.clock.now(),
        polling: 0,
      };
      this.#sessions.set(id, session);
      return this.#sessionReply(session);
    });

    const sessionOf = (ctx: Context): FakeSession | Reply => {
      const session = this.#sessions.get(ctx.params.sid ?? '');
      return session && session.scaleSetId === Number(ctx.params.id)
        ? session
        : fail(404, 'RunnerScaleSetSessionNotFoundException', `No session ${ctx.params.sid}.`);
    };

    this.#route('PATCH', `${base}/sessions/{sid}`, 'admin', (ctx) => {
      const session = sessionOf(ctx);
      if ('status' in session) return session;
      const { token, expiresAt } = this.#issueQueueToken(session);
      session.queueToken = token;
      session.queueTokenExpiresAt = expiresAt;
      session.refreshes++;
      return this.#sessionReply(session);
    });

    this.#route('DELETE', `${base}/sessions/{sid}`, 'admin', (ctx) => {
      const session = sessionOf(ctx);
      if ('status' in session) return session;
      this.#sessions.delete(session.id);
      this.#wake(session.scaleSetId);
      return { status: 204 };
    });

    // The Go client sends the session's queue token here, not the admin token.
    this.#route('POST', `${base}/acquirejobs`, 'queue', (ctx) => {
      const scaleSetId = Number(ctx.params.id);
      if (ctx.session?.scaleSetId !== scaleSetId)
        return fail(401, 'VssUnauthorizedException', 'Wrong session.');
      const ids = Array.isArray(ctx.body) ? ctx.body.filter((v): v is number => typeof v === 'number') : [];
      const acquired: number[] = [];
      for (const id of ids) {
        const job = this.#jobs.get(id);
        if (job?.scaleSetId === scaleSetId && job.state === 'available') {
          job.state = 'acquired';
          acquired.push(id);
        }
      }
      this.#settle(scaleSetId);
      return { status: 200, body: list(acquired) };
    });

    this.#route('GET', '/broker/sessions/{sid}/messages', 'queue', async (ctx) => {
      const session = ctx.session;
      if (!session || session.id !== ctx.params.sid)
        return fail(401, 'VssUnauthorizedException', 'Wrong session.');
      const capacity = ctx.headers['x-scalesetmaxcapacity'];
      if (typeof capacity === 'string' && /^\d+$/.test(capacity)) {
        this.#capacity.set(session.scaleSetId, Number(capacity));
        this.#settle(session.scaleSetId);
      }
      const lastMessageId = Number(ctx.url.searchParams.get('lastMessageId') ?? 0) || 0;
      return this.#poll(session, lastMessageId, ctx.closed);
    });

    this.#route('DELETE', '/broker/sessions/{sid}/messages/{messageId}', 'queue', (ctx) => {
      const session = ctx.session;
      if (!session || session.id !== ctx.params.sid)
        return fail(401, 'VssUnauthorizedException', 'Wrong session.');
      const queue = this.#queue(session.scaleSetId);
      const messageId = Number(ctx.params.messageId);
      const index = queue.unacknowledged.findIndex((m) => m.id === messageId);
      if (index >= 0) {
        queue.unacknowledged.splice(index, 1);
        this.acknowledged.push(messageId);
      }
      return { status: 204 };
    });
  }

  // ── routes: JIT configs and runners (agents) ─────────────────────────────────────────────────

  #defineRunnerRoutes(): void {
    const agents = '/tenant/{tenant}/_apis/distributedtask/pools/0/agents';
    const notFound = (id: string | undefined) =>
      fail(404, 'AgentNotFoundException', `No runner with id ${id}.`, AGENT_NAMESPACE);

    this.#route(
      'POST',
      '/tenant/{tenant}/_apis/runtime/runnerscalesets/{id}/generatejitconfig',
      'admin',
      (ctx) => {
        const set = this.#scaleSets.get(Number(ctx.params.id));
        if (!set)
          return fail(
            404,
            'RunnerScaleSetNotFoundException',
            `No runner scale set with id ${ctx.params.id}.`,
          );
        const body = record(ctx.body);
        const name = typeof body.name === 'string' ? body.name.trim() : '';
        if (!name) return fail(400, 'ArgumentException', 'A runner needs a name.', 'System');
        if (this.runners().some((a) => a.name.toLowerCase() === name.toLowerCase())) {
          return fail(409, 'AgentExistsException', `A runner named ${name} already exists.`, AGENT_NAMESPACE);
        }
        const agent: FakeAgent = {
          id: ++this.#nextAgentId,
          name,
          scaleSetId: set.id,
          status: 'offline',
          runnerRequestId: null,
          workFolder: typeof body.workFolder === 'string' && body.workFolder ? body.workFolder : '_work',
          createdAt: this.clock.now(),
        };
        this.#agents.set(agent.id, agent);
        return {
          status: 200,
          body: {
            runner: runnerReference(agent),
            encodedJITConfig: encodedJitConfig(agent, this.tenantUrl, this.githubConfigUrl),
          },
        };
      },
    );

    this.#route('GET', agents, 'admin', (ctx) => {
      const name = ctx.url.searchParams.get('agentName');
      const found = this.runners().filter(
        (a) => name === null || a.name.toLowerCase() === name.toLowerCase(),
      );
      return { status: 200, body: list(found.map(runnerReference)) };
    });

    this.#route('GET', `${agents}/{agentId}`, 'admin', (ctx) => {
      const agent = this.#agents.get(Number(ctx.params.agentId));
      return agent ? { status: 200, body: runnerReference(agent) } : notFound(ctx.params.agentId);
    });

    this.#route('DELETE', `${agents}/{agentId}`, 'admin', (ctx) => {
      const agent = this.#agents.get(Number(ctx.params.agentId));
      if (!agent) return notFound(ctx.params.agentId);
      if (agent.runnerRequestId !== null) {
        return fail(
          409,
          'JobStillRunningException',
          `Runner ${agent.name} is running job ${agent.runnerRequestId}.`,
          AGENT_NAMESPACE,
        );
      }
      this.#agents.delete(agent.id);
      return { status: 204 };
    });
  }
}
