import { afterEach, describe, expect, it } from 'vitest';
import {
  FakeActionsService,
  type FakeActionsServiceOptions,
  type Statistics,
} from '../../../support/fake-actions-service/index.ts';
import { jwtClaims } from '../../../support/fake-actions-service/wire.ts';
import { appKeys, FakeGithub, ManualClock } from '../../../support/fake-github/index.ts';
import {
  type AdminConnection,
  acknowledge,
  appJwt,
  bootstrap,
  http,
  type JitWire,
  jobMessages,
  type ListWire,
  poll,
  type RunnerGroupWire,
  type RunnerWire,
  type ScaleSetWire,
  type SessionWire,
  service,
} from './client.ts';

// The fake's own tests, end to end over HTTP: what a scale-set client sees must follow the protocol of
// GitHub's client library, or every Gantry test built on the fake proves nothing.

const APP_ID = 5150;
const started: { stop(): Promise<void> }[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()));
});

async function startFake(options: FakeActionsServiceOptions = {}) {
  const fake = new FakeActionsService({
    app: { appId: APP_ID, publicKey: appKeys().publicKey },
    longPollMs: 150,
    ...options,
  });
  started.push(fake);
  await fake.start();
  const connect = () =>
    bootstrap(
      { apiUrl: fake.githubApiUrl, configUrl: fake.githubConfigUrl, installationId: fake.installationId },
      APP_ID,
      fake.clock.now(),
    );
  const conn = await connect();
  return { fake, conn, connect, call: service(conn) };
}

async function openSession(call: ReturnType<typeof service>, name = 'linux-x64', owner = 'listener-a') {
  const set = await call<ScaleSetWire>('POST', '_apis/runtime/runnerscalesets', {
    name,
    runnerGroupId: 1,
    labels: [{ name }],
    RunnerSetting: { disableUpdate: true },
  });
  expect(set.status).toBe(200);
  const session = await call<SessionWire>('POST', `_apis/runtime/runnerscalesets/${set.body.id}/sessions`, {
    ownerName: owner,
  });
  expect(session.status).toBe(200);
  return { set: set.body, session: session.body };
}

const stats = (partial: Partial<Statistics> = {}): Statistics => ({
  totalAvailableJobs: 0,
  totalAcquiredJobs: 0,
  totalAssignedJobs: 0,
  totalRunningJobs: 0,
  totalRegisteredRunners: 0,
  totalBusyRunners: 0,
  totalIdleRunners: 0,
  ...partial,
});

describe('fake Actions service: bootstrap', () => {
  it('hands out the tenant URL and an admin JWT whose exp claim it enforces', async () => {
    const clock = new ManualClock({ startMs: Date.parse('2026-03-02T10:00:00Z') });
    const { fake, conn, connect, call } = await startFake({ clock, adminTokenTtlMs: 600_000 });
    expect(conn.tenantUrl).toBe(fake.tenantUrl);
    expect(conn.tenantUrl.endsWith('/')).toBe(true);
    expect(conn.registrationToken).toMatch(/^A[0-9A-Z]{28}$/);
    expect(jwtClaims(conn.adminToken)?.exp).toBe(Math.floor(clock.now() / 1000) + 600);

    expect((await call('GET', '_apis/runtime/runnerscalesets')).status).toBe(200);
    clock.advance(600_000);
    const expired = await call('GET', '_apis/runtime/runnerscalesets');
    expect(expired.status).toBe(401);
    // A client that refreshes (the Go client does so 60 s before exp) gets a working token.
    const fresh = await connect();
    expect((await service(fresh)('GET', '_apis/runtime/runnerscalesets')).status).toBe(200);
  });

  it('refuses a wrong RemoteAuth token and a registration token used for another scope', async () => {
    const { fake, conn } = await startFake();
    const register = (auth: string, url: string) =>
      http('POST', `${fake.githubApiUrl}/actions/runner-registration`, {
        auth,
        body: { url, runner_event: 'register' },
      });
    expect((await register('RemoteAuth AWRONGTOKEN', fake.githubConfigUrl)).status).toBe(401);
    expect((await register(`Bearer ${conn.registrationToken}`, fake.githubConfigUrl)).status).toBe(401);
    expect(
      (await register(`RemoteAuth ${conn.registrationToken}`, `${fake.githubConfigUrl}/app`)).status,
    ).toBe(404);
  });

  it('composes with FakeGithub: its installation tokens open registration, other REST calls reach it', async () => {
    const github = new FakeGithub({ app: { appId: APP_ID, publicKey: appKeys().publicKey } });
    started.push(github);
    await github.start();
    const fake = new FakeActionsService({ github });
    started.push(fake);
    await fake.start();
    const rest = {
      apiUrl: fake.githubApiUrl,
      configUrl: fake.githubConfigUrl,
      installationId: github.installationId,
    };
    const conn: AdminConnection = await bootstrap(rest, APP_ID, Date.now());
    expect(conn.tenantUrl).toBe(fake.tenantUrl);
    expect(github.requests.map((r) => r.route)).toContain(
      '/app/installations/{installation_id}/access_tokens',
    );

    const token = (
      await http<{ token: string }>(
        'POST',
        `${rest.apiUrl}/app/installations/${github.installationId}/access_tokens`,
        {
          auth: `Bearer ${appJwt(APP_ID, Date.now())}`,
        },
      )
    ).body.token;
    const groups = await http<{ total_count: number }>(
      'GET',
      `${rest.apiUrl}/orgs/acme/actions/runner-groups`,
      {
        auth: `token ${token}`,
      },
    );
    expect(groups.status).toBe(200);
    expect(groups.body.total_count).toBe(1);

    github.revokeInstallationTokens();
    const refused = await http('POST', `${rest.apiUrl}/orgs/acme/actions/runners/registration-token`, {
      auth: `Bearer ${token}`,
    });
    expect(refused.status).toBe(401);
  });
});

describe('fake Actions service: scale sets and sessions', () => {
  it('looks up runner groups and creates, finds, patches and deletes scale sets', async () => {
    const { fake, call } = await startFake({ runnerGroups: ['gpu'] });
    const groups = await call<ListWire<RunnerGroupWire>>(
      'GET',
      '_apis/runtime/runnergroups/?groupName=default',
    );
    expect(groups.body).toEqual({
      count: 1,
      value: [{ id: 1, name: 'Default', size: 0, isDefaultGroup: true }],
    });
    expect(
      (await call<ListWire<RunnerGroupWire>>('GET', '_apis/runtime/runnergroups/?groupName=none')).body.count,
    ).toBe(0);

    const created = await call<ScaleSetWire>('POST', '_apis/runtime/runnerscalesets', {
      name: 'linux-x64',
      runnerGroupId: 2,
      labels: [{ name: 'linux-x64' }, { name: 'gpu', type: 'System' }],
      RunnerSetting: { disableUpdate: true },
    });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({
      name: 'linux-x64',
      runnerGroupId: 2,
      runnerGroupName: 'gpu',
      labels: [
        { name: 'linux-x64', type: 'System' },
        { name: 'gpu', type: 'System' },
      ],
      runnerSetting: { disableUpdate: true },
      statistics: stats(),
    });
    const id = created.body.id;
    const duplicate = await call('POST', '_apis/runtime/runnerscalesets', {
      name: 'linux-x64',
      runnerGroupId: 2,
    });
    expect(duplicate.status).toBe(409);

    const byName = await call<ListWire<ScaleSetWire>>(
      'GET',
      '_apis/runtime/runnerscalesets?runnerGroupId=2&name=linux-x64',
    );
    expect(byName.body.count).toBe(1);
    expect(byName.body.value[0]?.id).toBe(id);
    expect(
      (
        await call<ListWire<ScaleSetWire>>(
          'GET',
          '_apis/runtime/runnerscalesets?runnerGroupId=1&name=linux-x64',
        )
      ).body.count,
    ).toBe(0);

    const patched = await call<ScaleSetWire>('PATCH', `_apis/runtime/runnerscalesets/${id}`, {
      labels: [{ name: 'linux-x64' }, { name: 'big' }],
    });
    expect(patched.body.labels.map((l) => l.name)).toEqual(['linux-x64', 'big']);
    expect((await call<ScaleSetWire>('GET', `_apis/runtime/runnerscalesets/${id}`)).body.labels).toHaveLength(
      2,
    );

    expect((await call('DELETE', `_apis/runtime/runnerscalesets/${id}`)).status).toBe(204);
    const gone = await call('GET', `_apis/runtime/runnerscalesets/${id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.typeName).toContain('RunnerScaleSetNotFoundException');
    // Every call carried the API version the Go client sends.
    const serviceCalls = fake.requests.filter((r) => r.route.includes('_apis'));
    expect(serviceCalls.every((r) => r.apiVersion === '6.0-preview')).toBe(true);
  });

  it('allows one session per scale set: a second answers 409 in the service error shape', async () => {
    const { fake, call } = await startFake();
    const { set, session } = await openSession(call);
    expect(session).toMatchObject({
      ownerName: 'listener-a',
      runnerScaleSet: { id: set.id, name: 'linux-x64' },
      statistics: stats(),
    });
    expect(session.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(session.messageQueueUrl).toContain(fake.origin);

    const second = await call('POST', `_apis/runtime/runnerscalesets/${set.id}/sessions`, {
      ownerName: 'listener-b',
    });
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({
      typeName:
        'GitHub.Actions.Runtime.WebApi.RunnerScaleSetSessionConflictException, GitHub.Actions.Runtime.WebApi',
      message: 'The actions runner scaleset linux-x64 already has an active session.',
    });

    const path = `_apis/runtime/runnerscalesets/${set.id}/sessions/${session.sessionId}`;
    expect((await call('DELETE', path)).status).toBe(204);
    expect((await call('DELETE', path)).status).toBe(404);
    const takeover = await call<SessionWire>('POST', `_apis/runtime/runnerscalesets/${set.id}/sessions`, {
      ownerName: 'listener-b',
    });
    expect(takeover.status).toBe(200);
    expect(fake.sessions(set.id).map((s) => s.ownerName)).toEqual(['listener-b']);
  });

  it('answers 401 on an expired queue token until the session is refreshed', async () => {
    const { fake, call } = await startFake();
    const { set, session } = await openSession(call);
    expect((await poll(session, 0)).status).toBe(202);
    fake.expireQueueTokens();
    expect((await poll(session, 0)).status).toBe(401);
    expect((await acknowledge(session, 1)).status).toBe(401);

    const refreshed = await call<SessionWire>(
      'PATCH',
      `_apis/runtime/runnerscalesets/${set.id}/sessions/${session.sessionId}`,
    );
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.sessionId).toBe(session.sessionId);
    expect(refreshed.body.messageQueueAccessToken).not.toBe(session.messageQueueAccessToken);
    expect((await poll(refreshed.body, 0)).status).toBe(202);
    expect((await poll(session, 0)).status).toBe(401);
  });
});

describe('fake Actions service: the message queue', () => {
  it('long-polls: 202 after the wait, a message as soon as a job is queued', async () => {
    const { fake, call } = await startFake({ longPollMs: 4_000 });
    const { set, session } = await openSession(call);

    const waiting = poll(session, 0, 7);
    await new Promise((r) => setTimeout(r, 300));
    const runnerRequestId = fake.queueJob(set.id, { repository: 'web', eventName: 'pull_request' });
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect(answer.ms).toBeGreaterThanOrEqual(250);
    expect(answer.ms).toBeLessThan(2_000);
    expect(answer.body.messageType).toBe('RunnerScaleSetJobMessages');
    expect(typeof answer.body.body).toBe('string');
    expect(jobMessages(answer)).toMatchObject([
      {
        messageType: 'JobAvailable',
        runnerRequestId,
        repositoryName: 'web',
        ownerName: 'acme',
        eventName: 'pull_request',
      },
    ]);
    expect(fake.maxCapacity(set.id)).toBe(7);
    expect(fake.requests.find((r) => r.route.includes('broker'))?.maxCapacity).toBe(7);
  });

  it('answers 202 when nothing arrives within the configured wait', async () => {
    const { call } = await startFake({ longPollMs: 150 });
    const { session } = await openSession(call);
    const answer = await poll(session, 0);
    expect(answer.status).toBe(202);
    expect(answer.ms).toBeGreaterThanOrEqual(140);
    expect(answer.body).toBeUndefined();
  });

  it('redelivers a message until it is acknowledged', async () => {
    const { fake, call } = await startFake();
    const { set, session } = await openSession(call);
    fake.queueJobs(set.id, 2);
    const first = await poll(session, 0);
    const again = await poll(session, 0);
    expect(again.body.messageId).toBe(first.body.messageId);
    expect(jobMessages(again)).toHaveLength(2);
    // lastMessageId skips what the client says it processed, without acknowledging it.
    expect((await poll(session, first.body.messageId)).status).toBe(202);
    expect((await poll(session, 0)).body.messageId).toBe(first.body.messageId);

    expect((await acknowledge(session, first.body.messageId)).status).toBe(204);
    expect(fake.acknowledged).toEqual([first.body.messageId]);
    expect((await poll(session, 0)).status).toBe(202);
  });

  it('packs at most the configured number of job messages into one message', async () => {
    const { fake, call } = await startFake({ maxJobMessagesPerMessage: 3 });
    const { set, session } = await openSession(call);
    fake.queueJobs(set.id, 5);
    const first = await poll(session, 0);
    expect(jobMessages(first)).toHaveLength(3);
    expect(first.body.statistics.totalAvailableJobs).toBe(5);
    const second = await poll(session, first.body.messageId);
    expect(jobMessages(second)).toHaveLength(2);
  });
});

describe('fake Actions service: jobs, runners and statistics', () => {
  it('walks a job through Available, Assigned, Started and Completed with consistent statistics', async () => {
    const { fake, call } = await startFake();
    const { set, session } = await openSession(call);
    let lastMessageId = 0;
    const next = async () => {
      const answer = await poll(session, lastMessageId);
      expect(answer.status).toBe(200);
      lastMessageId = answer.body.messageId;
      expect((await acknowledge(session, lastMessageId)).status).toBe(204);
      // The statistics a message carries are the fake's state at delivery.
      expect(answer.body.statistics).toEqual(fake.statistics(set.id));
      return { messages: jobMessages(answer), statistics: answer.body.statistics };
    };

    const runnerRequestId = fake.queueJob(set.id, {
      repository: 'app',
      owner: 'acme',
      eventName: 'push',
      workflowRef: 'acme/app/.github/workflows/build.yml@refs/heads/main',
      displayName: 'compile',
      workflowRunId: 123,
      jobId: 'job-guid-1',
    });
    const available = await next();
    expect(available.messages).toEqual([
      expect.objectContaining({
        messageType: 'JobAvailable',
        runnerRequestId,
        repositoryName: 'app',
        ownerName: 'acme',
        jobId: 'job-guid-1',
        jobWorkflowRef: 'acme/app/.github/workflows/build.yml@refs/heads/main',
        jobDisplayName: 'compile',
        workflowRunId: 123,
        eventName: 'push',
        requestLabels: ['linux-x64'],
        acquireJobUrl: `${fake.tenantUrl}_apis/runtime/runnerscalesets/${set.id}/acquirejobs`,
        scaleSetAssignTime: '0001-01-01T00:00:00Z',
      }),
    ]);
    expect(available.statistics).toEqual(stats({ totalAvailableJobs: 1 }));

    // acquirejobs takes the session's queue token, not the admin token.
    const acquirePath = `_apis/runtime/runnerscalesets/${set.id}/acquirejobs`;
    expect((await call('POST', acquirePath, [runnerRequestId])).status).toBe(401);
    const queueAuth = `Bearer ${session.messageQueueAccessToken}`;
    const acquired = await call<ListWire<number>>('POST', acquirePath, [runnerRequestId, 999], queueAuth);
    expect(acquired.body).toEqual({ count: 1, value: [runnerRequestId] });
    expect((await call<ListWire<number>>('POST', acquirePath, [runnerRequestId], queueAuth)).body.count).toBe(
      0,
    );

    const assigned = await next();
    expect(assigned.messages.map((m) => m.messageType)).toEqual(['JobAssigned']);
    expect(assigned.statistics).toEqual(stats({ totalAssignedJobs: 1 }));

    const jit = await call<JitWire>('POST', `_apis/runtime/runnerscalesets/${set.id}/generatejitconfig`, {
      name: 'linux-x64-runner-1',
      workFolder: '_work',
    });
    expect(fake.statistics(set.id)).toEqual(stats({ totalAssignedJobs: 1, totalRegisteredRunners: 1 }));
    expect(fake.connectRunner('linux-x64-runner-1')).toBe(runnerRequestId);
    const running = await next();
    expect(running.messages).toEqual([
      expect.objectContaining({
        messageType: 'JobStarted',
        runnerId: jit.body.runner.id,
        runnerName: 'linux-x64-runner-1',
      }),
    ]);
    expect(running.messages[0]?.runnerAssignTime).not.toBe('0001-01-01T00:00:00Z');
    expect(running.statistics).toEqual(
      stats({ totalAssignedJobs: 1, totalRunningJobs: 1, totalRegisteredRunners: 1, totalBusyRunners: 1 }),
    );

    fake.completeJob(runnerRequestId, 'failed');
    const completed = await next();
    expect(completed.messages).toEqual([
      expect.objectContaining({
        messageType: 'JobCompleted',
        result: 'failed',
        runnerId: jit.body.runner.id,
      }),
    ]);
    expect(completed.messages[0]?.finishTime).not.toBe('0001-01-01T00:00:00Z');
    // The one-job runner is gone once its job ended.
    expect(completed.statistics).toEqual(stats());
  });

  it('gives an assigned job to a runner that connected first, and counts it idle meanwhile', async () => {
    const { fake, call } = await startFake({ acquisition: 'immediate' });
    const { set, session } = await openSession(call);
    await call('POST', `_apis/runtime/runnerscalesets/${set.id}/generatejitconfig`, { name: 'warm-1' });
    expect(fake.connectRunner('warm-1')).toBeNull();
    expect(fake.statistics(set.id)).toEqual(stats({ totalRegisteredRunners: 1, totalIdleRunners: 1 }));

    const runnerRequestId = fake.queueJob(set.id);
    const answer = await poll(session, 0);
    // github.com today: no JobAvailable and no acquire step.
    expect(jobMessages(answer).map((m) => m.messageType)).toEqual(['JobAssigned', 'JobStarted']);
    expect(fake.job(runnerRequestId)?.runner?.name).toBe('warm-1');
    expect(answer.body.statistics).toEqual(
      stats({ totalAssignedJobs: 1, totalRunningJobs: 1, totalRegisteredRunners: 1, totalBusyRunners: 1 }),
    );
  });

  it('assigns no more jobs than the last X-ScaleSetMaxCapacity; the rest stay acquired', async () => {
    const { fake, call } = await startFake();
    const { set, session } = await openSession(call);
    const [first, second] = fake.queueJobs(set.id, 2);
    const announced = await poll(session, 0, 1);
    await acknowledge(session, announced.body.messageId);
    const acquired = await call<ListWire<number>>(
      'POST',
      `_apis/runtime/runnerscalesets/${set.id}/acquirejobs`,
      [first, second],
      `Bearer ${session.messageQueueAccessToken}`,
    );
    expect(acquired.body.count).toBe(2);
    expect(fake.statistics(set.id)).toEqual(stats({ totalAcquiredJobs: 1, totalAssignedJobs: 1 }));

    await call('POST', `_apis/runtime/runnerscalesets/${set.id}/generatejitconfig`, { name: 'r-1' });
    fake.connectRunner('r-1');
    fake.completeJob(first ?? 0);
    expect(fake.job(second ?? 0)?.state).toBe('assigned');
    const messages = jobMessages(await poll(session, announced.body.messageId, 1));
    expect(messages.map((m) => `${m.messageType}:${m.runnerRequestId}`)).toEqual([
      `JobAssigned:${first}`,
      `JobStarted:${first}`,
      `JobCompleted:${first}`,
      `JobAssigned:${second}`,
    ]);
  });

  it('takes back a job no runner picked up in time and offers it again, at most 3 times', async () => {
    const clock = new ManualClock({ startMs: Date.now() });
    const { fake, call } = await startFake({ clock, pickupTimeoutMs: 60_000, requeueDelayMs: 10_000 });
    const { set, session } = await openSession(call);
    const runnerRequestId = fake.queueJob(set.id);
    const queueAuth = `Bearer ${session.messageQueueAccessToken}`;
    let lastMessageId = 0;
    const drain = async () => {
      const answer = await poll(session, lastMessageId);
      if (answer.status !== 200) return [];
      lastMessageId = answer.body.messageId;
      await acknowledge(session, lastMessageId);
      return jobMessages(answer).map((m) =>
        m.messageType === 'JobCompleted' ? `JobCompleted:${m.result}` : m.messageType,
      );
    };
    const seen: string[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      seen.push(...(await drain()));
      await call('POST', `_apis/runtime/runnerscalesets/${set.id}/acquirejobs`, [runnerRequestId], queueAuth);
      clock.advance(60_000);
      seen.push(...(await drain()));
      clock.advance(10_000 * (attempt + 1));
    }
    seen.push(...(await drain()));
    const offer = ['JobAvailable', 'JobAssigned', 'JobCompleted:canceled'];
    expect(seen).toEqual([...offer, ...offer, ...offer, ...offer]);
    expect(fake.job(runnerRequestId)).toMatchObject({ state: 'canceled', requeues: 3 });
    expect(fake.statistics(set.id)).toEqual(stats());
  });

  it('issues JIT configs per scale set and refuses to remove a runner that runs a job', async () => {
    const { fake, call } = await startFake();
    const { set } = await openSession(call);
    const jit = await call<JitWire>('POST', `_apis/runtime/runnerscalesets/${set.id}/generatejitconfig`, {
      name: 'linux-x64-runner-7',
      workFolder: '_work',
    });
    expect(jit.status).toBe(200);
    expect(jit.body.runner).toEqual({
      id: expect.any(Number),
      name: 'linux-x64-runner-7',
      runnerScaleSetId: set.id,
    });
    const files = JSON.parse(Buffer.from(jit.body.encodedJITConfig, 'base64').toString('utf8')) as Record<
      string,
      string
    >;
    expect(Object.keys(files).sort()).toEqual(['.credentials', '.credentials_rsaparams', '.runner']);
    expect(JSON.parse(Buffer.from(files['.runner'] ?? '', 'base64').toString('utf8'))).toMatchObject({
      AgentId: jit.body.runner.id,
      AgentName: 'linux-x64-runner-7',
      Ephemeral: true,
    });
    const clash = await call('POST', `_apis/runtime/runnerscalesets/${set.id}/generatejitconfig`, {
      name: 'linux-x64-runner-7',
    });
    expect(clash.status).toBe(409);
    expect(clash.body.typeName).toContain('AgentExistsException');

    const agents = '_apis/distributedtask/pools/0/agents';
    const byId = await call<RunnerWire>('GET', `${agents}/${jit.body.runner.id}`);
    expect(byId.body).toEqual(jit.body.runner);
    const byName = await call<ListWire<RunnerWire>>('GET', `${agents}?agentName=linux-x64-runner-7`);
    expect(byName.body).toEqual({ count: 1, value: [jit.body.runner] });

    const job = fake.queueJob(set.id);
    await call(
      'POST',
      `_apis/runtime/runnerscalesets/${set.id}/acquirejobs`,
      [job],
      `Bearer ${fake.sessions(set.id)[0]?.queueToken}`,
    );
    fake.connectRunner('linux-x64-runner-7');
    const busy = await call('DELETE', `${agents}/${jit.body.runner.id}`);
    expect(busy.status).toBe(409);
    expect(busy.body.typeName).toContain('JobStillRunningException');

    fake.completeJob(job);
    const gone = await call('GET', `${agents}/${jit.body.runner.id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.typeName).toContain('AgentNotFoundException');

    await call('POST', `_apis/runtime/runnerscalesets/${set.id}/generatejitconfig`, { name: 'idle-1' });
    const idle = (await call<ListWire<RunnerWire>>('GET', `${agents}?agentName=idle-1`)).body.value[0];
    expect((await call('DELETE', `${agents}/${idle?.id}`)).status).toBe(204);
    expect(fake.runners(set.id)).toEqual([]);
  });
});

describe('fake Actions service: fault knobs', () => {
  it('fails the next N requests with 5xx, adds latency, expires admin tokens and drops sessions', async () => {
    const { fake, call, connect } = await startFake({ longPollMs: 5_000 });
    const { set, session } = await openSession(call);

    fake.faults.serverErrors = 2;
    expect((await call('GET', '_apis/runtime/runnerscalesets')).status).toBe(500);
    expect((await call('GET', '_apis/runtime/runnerscalesets')).status).toBe(500);
    expect((await call('GET', '_apis/runtime/runnerscalesets')).status).toBe(200);

    fake.faults.latencyMs = 200;
    expect((await call('GET', '_apis/runtime/runnerscalesets')).ms).toBeGreaterThanOrEqual(190);
    fake.faults.latencyMs = 0;

    // A dropped session ends a waiting poll; refreshing it is refused and a new one can be opened.
    const waiting = poll(session, 0);
    await new Promise((r) => setTimeout(r, 100));
    fake.dropSession(set.id);
    const ended = await waiting;
    expect(ended.status).toBe(401);
    expect(ended.ms).toBeLessThan(2_000);
    const refresh = await call(
      'PATCH',
      `_apis/runtime/runnerscalesets/${set.id}/sessions/${session.sessionId}`,
    );
    expect(refresh.status).toBe(404);

    fake.expireAdminTokens();
    expect(
      (await call('POST', `_apis/runtime/runnerscalesets/${set.id}/sessions`, { ownerName: 'b' })).status,
    ).toBe(401);
    const again = service(await connect());
    expect(
      (await again('POST', `_apis/runtime/runnerscalesets/${set.id}/sessions`, { ownerName: 'b' })).status,
    ).toBe(200);
  });
});
