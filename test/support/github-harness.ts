import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createWebhookServer, type ListenerLimits } from '../../src/http/server.ts';
import type { JobEvent } from '../../src/model/job.ts';
import { githubConfigSchema } from '../../src/sources/github/config.ts';
import { createGithubSource, type GithubSource } from '../../src/sources/github/source.ts';
import { appKeys, FakeGithub, type FakeGithubOptions, ManualClock } from './fake-github/index.ts';

export const WEBHOOK_SECRET = 'harness-secret';
export const APP_ID = 424242;
export const PAT = 'ghp_harness_token_000000000000000000000';

export interface HarnessOptions {
  repos?: string[];
  /** Configure repositories explicitly; default: list them from the installation. */
  configuredRepos?: string[];
  webhooks?: boolean;
  auth?: 'app' | 'token';
  perPage?: number;
  quotaLimit?: number;
  fake?: Partial<FakeGithubOptions>;
  github?: Record<string, unknown>;
  /** Sleeps wait for the test to move the clock (default: a sleep moves the clock itself). */
  manualClock?: boolean;
  /** Tighter deadlines for the webhook listener than Gantry's own. */
  listenerLimits?: Partial<ListenerLimits>;
  /** Where the classes register runners: the installation token is narrowed to what that takes. */
  runnerScopes?: ('org' | 'repo')[];
}

export interface Harness {
  clock: ManualClock;
  fake: FakeGithub;
  source: GithubSource;
  http: FastifyInstance;
  /** Base URL of the webhook listener (empty without webhooks). */
  webhookUrl: string;
  events: JobEvent[];
  logs: Record<string, unknown>[];
  metrics: Registry;
  /** Waits for webhook deliveries in flight and for the source to apply them. */
  settle(): Promise<void>;
  /** Moves time, lets the fake act on it (jobs complete), and settles. */
  advance(ms: number): Promise<void>;
  metricValue(name: string, labels?: Record<string, string>): Promise<number | undefined>;
  close(): Promise<void>;
}

/** The GitHub source wired to a fake GitHub on loopback, with a manual clock shared by both. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const clock = new ManualClock({ autoAdvance: !options.manualClock });
  const keys = appKeys();
  const fake = new FakeGithub({
    clock,
    repos: options.repos ?? ['acme/app', 'acme/lib'],
    app: { appId: APP_ID, publicKey: keys.publicKey },
    pats: [PAT],
    quotaLimit: options.quotaLimit ?? 5_000,
    runnerGroups: ['ci'],
    ...options.fake,
  });
  const apiUrl = await fake.start();
  const { logs, logger } = capturingLogger();
  const metrics = new Registry();
  const http = createWebhookServer(logger, options.listenerLimits);
  const events: JobEvent[] = [];
  const auth =
    options.auth === 'token'
      ? { kind: 'token', token: PAT }
      : { kind: 'app', appId: APP_ID, installationId: fake.installationId, privateKey: keys.privateKeyPem };
  const webhooks = options.webhooks ?? true;
  const config = githubConfigSchema.parse({
    enabled: true,
    apiUrl,
    auth,
    repositories:
      options.configuredRepos ??
      (options.auth === 'token' ? (options.repos ?? ['acme/app', 'acme/lib']) : []),
    webhook: webhooks ? { secret: WEBHOOK_SECRET } : {},
    poll: { perPage: options.perPage ?? 100 },
    runners: { org: 'acme' },
    ...options.github,
  });
  const source = createGithubSource({
    config,
    logger,
    metrics,
    webhooks: http,
    onEvent: (e) => events.push(e),
    clock,
    ...(options.runnerScopes ? { runnerScopes: new Set(options.runnerScopes) } : {}),
  });
  let webhookUrl = '';
  if (webhooks) {
    webhookUrl = await http.listen({ host: '127.0.0.1', port: 0 });
    fake.setWebhookTarget(`${webhookUrl}/webhooks/github`, WEBHOOK_SECRET);
  } else {
    await http.ready();
  }
  const settle = async () => {
    await fake.flushWebhooks();
    await source.whenIdle();
  };
  return {
    clock,
    fake,
    source,
    http,
    webhookUrl,
    events,
    logs,
    metrics,
    settle,
    async advance(ms) {
      clock.advance(ms);
      fake.tick();
      await settle();
    },
    async metricValue(name, labels = {}) {
      const metric = await metrics.getSingleMetric(name)?.get();
      return metric?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
        ?.value;
    },
    async close() {
      await source.stop();
      await http.close();
      await fake.stop();
    },
  };
}

/** The ids of GitHub jobs in events of a kind. */
/** A debug logger whose lines are kept, parsed, in `logs`. */
export function capturingLogger() {
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
        done();
      },
    }),
  );
  return { logs, logger };
}

export function jobIdsOf(events: readonly JobEvent[], kind: JobEvent['kind']): number[] {
  return events
    .filter((e) => e.kind === kind)
    .map((e) => Number(e.job.key.replace('github:', '')))
    .sort((a, b) => a - b);
}
