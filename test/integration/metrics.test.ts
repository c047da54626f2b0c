import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type V1Pod, Watch } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { launchChromium } from '../support/browser.ts';
import { controlPlaneBinDir } from '../support/control-plane/binaries.ts';
import { appKeys, FakeGithub, fakeGithubConfig } from '../support/fake-github/index.ts';
import { createTestNamespace, deleteNamespace, testKubeConfig, until } from '../support/kube.ts';
import { startRunnerSimulator } from '../support/runner-simulator.ts';

// A scripted load through the whole stack (fake GitHub, Gantry, the apiserver, KWOK, the simulated
// runner process), then the metrics Gantry exports are compared with what the script's own records
// say: each job's created/started/completed times at GitHub's one-second precision, and each runner
// pod's start and end as the apiserver reported them (watched here, independently of Gantry).

const kc = testKubeConfig();
const SECRET = 'metrics-webhook-secret';
const APP_ID = 778;
const HOUR_MS = 3_600_000;
const QUEUE_BUCKETS = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600];

/** Per class: pod requests and rates; the hourly rate each runner costs. */
const CLASSES = {
  lint: { cpu: 0.1, memGib: 0.125, rates: { perVcpuHour: 2, perGibHour: 0.8, perRunnerHour: 0.3 } },
  build: { cpu: 0.25, memGib: 0.25, rates: { perVcpuHour: 1.5, perGibHour: 0.4, perRunnerHour: 0.1 } },
} as const;
type ClassName = keyof typeof CLASSES;
const hourlyRate = (c: ClassName) => {
  const { cpu, memGib, rates } = CLASSES[c];
  return cpu * rates.perVcpuHour + memGib * rates.perGibHour + rates.perRunnerHour;
};

/** What the apiserver said about one runner pod over its life. */
interface PodFacts {
  className: string;
  runningSince?: number;
  endedAt?: number;
}

const floorToSecond = (ms: number) => Math.floor(ms / 1000) * 1000;
const toMs = (value: Date | string | undefined) =>
  value === undefined ? undefined : new Date(value).getTime();

function startPodRecorder(namespace: string) {
  const facts = new Map<string, PodFacts>();
  const record = (pod: V1Pod) => {
    const name = pod.metadata?.name;
    const className = pod.metadata?.labels?.['gantry.dev/class'];
    if (!name || !className) return;
    const entry = facts.get(name) ?? { className };
    const state = pod.status?.containerStatuses?.[0]?.state;
    entry.runningSince ??= toMs(state?.running?.startedAt);
    entry.endedAt ??= toMs(state?.terminated?.finishedAt) ?? toMs(pod.metadata?.deletionTimestamp);
    facts.set(name, entry);
  };
  const controller = new Watch(kc).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    { labelSelector: 'app.kubernetes.io/managed-by=gantry' },
    (_type: string, pod: V1Pod) => record(pod),
    () => {},
  );
  return {
    facts,
    async stop() {
      (await controller).abort();
    },
  };
}

/** Parses the text format into sample name+labels → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

describe('metrics and the status page under a scripted load', () => {
  let app: App;
  let url: string;
  let fake: FakeGithub;
  let simulator: ReturnType<typeof startRunnerSimulator>;
  let recorder: ReturnType<typeof startPodRecorder>;
  let namespace: string;
  const jobIds: Record<ClassName, number[]> = { lint: [], build: [] };

  beforeAll(async () => {
    namespace = await createTestNamespace(kc, 'metrics', {
      'pod-security.kubernetes.io/enforce': 'restricted',
    });
    recorder = startPodRecorder(namespace);
    fake = new FakeGithub({
      repos: ['acme/app', 'acme/lib'],
      app: { appId: APP_ID, publicKey: appKeys().publicKey },
    });
    await fake.start();
    fake.runInRealTime(100);
    const runnerClass = (c: ClassName) => ({
      namespace,
      match: { github: { labels: ['self-hosted', c] } },
      nodeSelector: { type: 'kwok' },
      resources: {
        requests: { cpu: `${CLASSES[c].cpu * 1000}m`, memory: `${CLASSES[c].memGib * 1024}Mi` },
        limits: { memory: `${CLASSES[c].memGib * 1024}Mi` },
      },
      idleTimeout: '5s',
      cost: CLASSES[c].rates,
    });
    const config = parseConfig({
      log: { level: 'silent' },
      http: { address: '127.0.0.1', port: 0 },
      github: fakeGithubConfig(fake, APP_ID, SECRET),
      controller: { reconcilePeriodSeconds: 0.5 },
      classes: { lint: runnerClass('lint'), build: runnerClass('build') },
    });
    app = createApp(config, { kubeConfig: kc, logger: pino({ level: 'silent' }) });
    const started = await app.start();
    url = started.url;
    fake.setWebhookTarget(`${started.webhookUrl}/webhooks/github`, SECRET);
    simulator = startRunnerSimulator(kc, fake, [namespace]);

    // The script: jobs of known durations in two classes, queued at once.
    jobIds.lint = fake.queueJobs({
      repo: 'acme/app',
      labels: ['self-hosted', 'lint'],
      count: 4,
      durationMs: 1_500,
    }).jobIds;
    jobIds.build = fake.queueJobs({
      repo: 'acme/lib',
      labels: ['self-hosted', 'build'],
      count: 3,
      durationMs: 2_500,
    }).jobIds;
    const all = [...jobIds.lint, ...jobIds.build];
    await until(
      'all jobs completed',
      async () => all.every((id) => fake.job(id)?.status === 'completed'),
      60_000,
    );
    await until('every runner pod gone', async () => app.runners?.ledger.runnerNames().next().done, 30_000);
    await until('every runner accounted', async () => app.observers.meteredRunners === 0, 30_000);
  }, 150_000);

  afterAll(async () => {
    await simulator?.stop();
    await app?.stop();
    await fake?.stop();
    await recorder?.stop();
    if (namespace) await deleteNamespace(kc, namespace);
  });

  it('counts every job in the queue-time histogram, in the buckets the script puts it', async () => {
    const scraped = samples(await (await fetch(`${url}/metrics`)).text());
    for (const c of ['lint', 'build'] as const) {
      // Gantry sees GitHub's timestamps, which have whole seconds.
      const queued = jobIds[c].map((id) => {
        const job = fake.job(id);
        if (!job) throw new Error(`no job ${id}`);
        return (floorToSecond(job.startedAt) - floorToSecond(job.createdAt)) / 1000;
      });
      const series = (suffix: string, extra = '') =>
        scraped.get(`gantry_job_queue_seconds_${suffix}{${extra}source="github",class="${c}"}`);
      expect(series('count')).toBe(queued.length);
      expect(series('sum')).toBeCloseTo(
        queued.reduce((a, b) => a + b, 0),
        6,
      );
      for (const le of QUEUE_BUCKETS) {
        expect(series('bucket', `le="${le}",`), `${c} le=${le}`).toBe(queued.filter((q) => q <= le).length);
      }
    }
  });

  it('charges each runner its requests times its wall time, split into busy and idle by its job', async () => {
    const expected = new Map<string, number>();
    const add = (c: string, use: string, dollars: number) =>
      expected.set(`${c}/${use}`, (expected.get(`${c}/${use}`) ?? 0) + dollars);
    const jobByRunner = new Map(fake.jobs().flatMap((j) => (j.runner ? [[j.runner.name, j] as const] : [])));
    let pods = 0;
    for (const [name, pod] of recorder.facts) {
      if (pod.runningSince === undefined) continue;
      pods++;
      expect(pod.endedAt, `${name} ended`).toBeDefined();
      const life = { from: pod.runningSince, to: pod.endedAt ?? 0 };
      const job = jobByRunner.get(name);
      const busyMs = job
        ? Math.max(
            0,
            Math.min(life.to, floorToSecond(job.completedAt ?? 0)) -
              Math.max(life.from, floorToSecond(job.startedAt)),
          )
        : 0;
      const rate = hourlyRate(pod.className as ClassName);
      add(pod.className, 'busy', (busyMs / HOUR_MS) * rate);
      add(pod.className, 'idle', ((life.to - life.from - busyMs) / HOUR_MS) * rate);
    }
    expect(pods).toBe(7);
    const scraped = samples(await (await fetch(`${url}/metrics`)).text());
    for (const c of ['lint', 'build']) {
      for (const use of ['busy', 'idle']) {
        const value =
          scraped.get(`gantry_cost_dollars_total{class="${c}",source="github",use="${use}"}`) ?? 0;
        expect(value, `${c} ${use}`).toBeCloseTo(expected.get(`${c}/${use}`) ?? 0, 9);
      }
      // Busy time is the jobs' scripted durations, to GitHub's whole seconds.
      expect(expected.get(`${c}/busy`)).toBeGreaterThan(0);
    }
  });

  it('exports pool gauges from the ledger and passes promtool when it is installed', async (ctx) => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const scraped = samples(text);
    expect(scraped.get('gantry_class_max_runners{class="lint"}')).toBe(10);
    expect(scraped.get('gantry_jobs_queued{source="github",class="build"}')).toBe(0);
    expect(scraped.get('gantry_runners{class="lint",state="busy"}')).toBe(0);
    expect(scraped.get('gantry_reconcile_seconds_count')).toBeGreaterThan(0);
    expect(scraped.get('gantry_runner_startup_seconds_count{class="build"}')).toBe(3);
    // The pinned build from hack/control-plane/build.sh, else one on PATH.
    const built = join(controlPlaneBinDir(), 'promtool');
    const promtool = existsSync(built)
      ? built
      : (
          await promisify(execFile)('sh', ['-c', 'command -v promtool']).catch(() => undefined)
        )?.stdout.trim();
    if (!promtool) {
      ctx.skip('promtool is neither built by hack/control-plane/build.sh nor on PATH');
      return;
    }
    const dir = await mkdtemp(join(tmpdir(), 'gantry-scrape-'));
    await writeFile(join(dir, 'scrape.prom'), text);
    const result = await promisify(execFile)(
      'sh',
      ['-c', `"$0" check metrics < ${join(dir, 'scrape.prom')}`, promtool],
      {
        timeout: 20_000,
      },
    );
    expect(result.stdout + result.stderr).toBe('');
  });

  it('shows every class on the status page in a real browser', async (ctx) => {
    const browser = await launchChromium(ctx);
    if (!browser) return;

    try {
      const page = await browser.newPage();
      const response = await page.goto(`${url}/`, { timeout: 20_000 });
      expect(response?.status()).toBe(200);
      expect(await page.title()).toBe('Gantry status');
      const classes = await page.$$eval('tbody tr', (rows) =>
        rows.map((row) => (row.querySelector('td') as { textContent: string | null } | null)?.textContent),
      );
      expect(classes.sort()).toEqual(['build', 'lint']);
      const events = await page.$$eval('ol li', (items) => items.length);
      expect(events).toBeGreaterThan(0);
      const dir = await mkdtemp(join(tmpdir(), 'gantry-status-page-'));
      const shot = join(dir, 'status.png');
      await page.screenshot({ path: shot, fullPage: true, timeout: 20_000 });
      expect((await stat(shot)).size).toBeGreaterThan(1_000);
    } finally {
      await browser.close();
    }
  });
});
