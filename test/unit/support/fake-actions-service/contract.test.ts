import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeActionsService } from '../../../support/fake-actions-service/index.ts';
import { appKeys } from '../../../support/fake-github/index.ts';
import {
  buildScalesetClient,
  findGo,
  type ScalesetClientBuild,
} from '../../../support/scaleset-client/build.ts';
import { until } from '../../../support/until.ts';

// The contract check: GitHub's own scale-set client (github.com/actions/scaleset at SCALESET_VERSION,
// with its listener package) runs against the fake. If the fake drifted from the protocol the library
// speaks, this fails even when the fake's own tests pass. The client is built once into
// ~/.cache/gantry/scaleset-client-<version>/ (first run: about half a minute, Go modules from the proxy).

const APP_ID = 6160;
const MAX_RUNNERS = 3;
const go = findGo();
if (!go) {
  console.warn(
    'skipping the scaleset contract test: Go is not installed (looked on PATH and in /usr/local/go/bin)',
  );
}

interface ClientEvent {
  event: string;
  [field: string]: unknown;
}

describe.skipIf(!go)('fake Actions service against GitHub’s scaleset client', () => {
  let build: ScalesetClientBuild;
  let workDir = '';
  let child: ChildProcess | null = null;
  const fake = new FakeActionsService({
    app: { appId: APP_ID, publicKey: appKeys().publicKey },
    longPollMs: 400,
  });

  beforeAll(async () => {
    build = await buildScalesetClient(go ?? 'go');
    if (build.built) console.info(`built scaleset-client ${build.version} in ${build.buildMs} ms`);
    workDir = await mkdtemp(join(tmpdir(), 'gantry-scaleset-contract-'));
    await fake.start();
  }, 600_000);

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await fake.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('bootstraps, listens, acquires, scales, gets a JIT config and sees a job through', async () => {
    const keyFile = join(workDir, 'app.pem');
    await writeFile(keyFile, appKeys().privateKeyPem, { mode: 0o600 });
    const events: ClientEvent[] = [];
    const stderr: string[] = [];
    const startedAt = Date.now();
    const proc = spawn(
      build.binary,
      [
        `-url=${fake.githubConfigUrl}`,
        `-app-client-id=${APP_ID}`,
        `-app-installation-id=${fake.installationId}`,
        `-app-private-key-file=${keyFile}`,
        '-name=gantry-contract',
        '-labels=linux,x64',
        `-max-runners=${MAX_RUNNERS}`,
        '-job-events=2',
        '-timeout=60s',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    createInterface({ input: proc.stdout }).on('line', (line) =>
      events.push(JSON.parse(line) as ClientEvent),
    );
    createInterface({ input: proc.stderr }).on('line', (line) => stderr.push(line));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const seen = (name: string) => events.find((e) => e.event === name);
    const waitFor = (name: string) =>
      until(
        `the client's ${name} event (stderr: ${stderr.slice(-5).join(' | ')})`,
        async () => seen(name),
        30_000,
        20,
      );

    try {
      const session = await waitFor('session');
      const scaleSetId = Number(seen('scale_set_created')?.id);
      expect(fake.sessions(scaleSetId)).toHaveLength(1);

      // An expired queue token: the library must refresh the session (PATCH) and keep polling.
      fake.expireQueueTokens(scaleSetId);
      await until(
        'a session refresh',
        async () => (fake.sessions(scaleSetId)[0]?.refreshes ?? 0) >= 1,
        10_000,
        20,
      );
      // A 5xx on the next request: the library's retrying HTTP client must get past it.
      fake.faults.serverErrors = 1;

      const runnerRequestId = fake.queueJob(scaleSetId, {
        repository: 'app',
        workflowRunId: 4711,
        jobId: 'contract-job-1',
        labels: ['gantry-contract', 'linux'],
      });
      const jit = await waitFor('jit');
      expect(fake.job(runnerRequestId)?.state).toBe('assigned');
      fake.connectRunner(String(jit.runnerName));
      await waitFor('job_started');
      fake.completeJob(runnerRequestId, 'succeeded');
      const code = await exited;
      const elapsedMs = Date.now() - startedAt;
      console.info(`scaleset client ran ${elapsedMs} ms against the fake`);
      expect(code, stderr.slice(-20).join('\n')).toBe(0);

      // Bootstrap and scale-set management.
      expect(seen('runner_group')).toMatchObject({ id: 1, name: 'Default', isDefault: true });
      expect(seen('scale_set')).toMatchObject({
        id: scaleSetId,
        name: 'gantry-contract',
        runnerGroupId: 1,
        disableUpdate: true,
        labels: [
          { name: 'gantry-contract', type: 'System' },
          { name: 'linux', type: 'System' },
          { name: 'x64', type: 'System' },
        ],
      });
      expect(seen('scale_set_updated')?.labels).toContainEqual({ name: 'contract-updated', type: 'System' });

      // The session: created for the owner, refreshed once, deleted at exit.
      expect(session.ownerName).toBe('gantry-contract-listener');
      const sessionPath = `sessions/${session.sessionId}`;
      const sessionCalls = fake.requests
        .filter((r) => r.path.endsWith(sessionPath))
        .map((r) => `${r.method} ${r.status}`);
      expect(sessionCalls).toEqual(['PATCH 200', 'DELETE 204']);
      expect(seen('session_closed')?.error).toBeNull();

      // Messages: every one delivered was acknowledged; the poll said its capacity.
      const delivered = new Set(fake.deliveries.map((d) => d.messageId));
      expect(delivered.size).toBeGreaterThanOrEqual(1);
      expect([...delivered].every((id) => fake.acknowledged.includes(id))).toBe(true);
      const kinds = fake.deliveries.flatMap((d) => d.jobMessages.map((m) => m.messageType));
      expect(kinds).toEqual(['JobAvailable', 'JobAssigned', 'JobStarted', 'JobCompleted']);
      expect(fake.maxCapacity(scaleSetId)).toBe(MAX_RUNNERS);
      expect(fake.requests.filter((r) => r.route.endsWith('/acquirejobs')).map((r) => r.status)).toEqual([
        200,
      ]);
      expect(fake.requests.some((r) => r.status === 500)).toBe(true);
      expect(
        fake.requests.filter((r) => r.route.includes('/_apis/')).every((r) => r.apiVersion === '6.0-preview'),
      ).toBe(true);

      // Statistics reached the listener and the Scaler: 0 assigned at first, then 1.
      const assignedSeen = events.filter((e) => e.event === 'desired').map((e) => e.assigned);
      expect(assignedSeen[0]).toBe(0);
      expect(assignedSeen).toContain(1);
      expect(events.filter((e) => e.event === 'desired').every((e) => Number(e.desired) <= MAX_RUNNERS)).toBe(
        true,
      );
      const statistics = events.filter((e) => e.event === 'statistics').map((e) => e.statistics);
      expect(statistics).toContainEqual(
        expect.objectContaining({ totalAssignedJobs: 1, totalRunningJobs: 1 }),
      );

      // The JIT config came from the fake, for this scale set.
      expect(jit).toMatchObject({ runnerName: 'gantry-contract-runner-1', scaleSetId });
      expect(Number(jit.encodedJitConfigLength)).toBeGreaterThan(100);
      expect(fake.job(runnerRequestId)?.runner?.id).toBe(jit.runnerId);

      // Job messages decoded by the library, with the service's error shapes mapped to its errors.
      expect(seen('job_started')).toMatchObject({
        runnerRequestId,
        jobId: 'contract-job-1',
        repositoryName: 'app',
        ownerName: 'acme',
        workflowRunId: 4711,
        requestLabels: ['gantry-contract', 'linux'],
        runnerName: 'gantry-contract-runner-1',
      });
      expect(Date.parse(String(seen('job_started')?.queueTime))).toBe(fake.job(runnerRequestId)?.queuedAt);
      expect(seen('remove_busy_runner')).toMatchObject({ jobStillRunning: true });
      expect(seen('job_completed')).toMatchObject({
        runnerRequestId,
        result: 'succeeded',
        runnerId: jit.runnerId,
      });
      expect(seen('runner_after_job')).toMatchObject({ notFound: true });

      expect(seen('scale_set_deleted')?.error).toBeNull();
      expect(fake.scaleSets()).toEqual([]);
      expect(seen('done')).toBeDefined();
    } catch (err) {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      (err as Error).message +=
        `\nclient events:\n${events.map((e) => JSON.stringify(e)).join('\n')}\nclient stderr (tail):\n${stderr.slice(-30).join('\n')}`;
      throw err;
    }
  }, 90_000);
});
