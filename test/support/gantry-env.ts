import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { type App, createApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { appKeys, FakeGithub, type FakeGithubOptions, fakeGithubConfig } from './fake-github/index.ts';
import { createTestNamespace } from './kube.ts';
import { startRunnerSimulator } from './runner-simulator.ts';
import { SANDBOX_RUNTIME_CLASS } from './runtime-class.ts';

export { ensureSandboxRuntimeClass } from './runtime-class.ts';

/**
 * Gantry end to end, in process: a fake GitHub that queues jobs and sends signed webhooks to
 * Gantry's HTTP surface, Gantry launching runner pods on the shared apiserver (KWOK runs them), and
 * the runner simulator playing each pod's runner process.
 */

const APP_ID = 777;
const SECRET = 'e2e-webhook-secret';
const RESTRICTED = { 'pod-security.kubernetes.io/enforce': 'restricted' };

export interface GantryEnv {
  app: App;
  config: ReturnType<typeof parseConfig>;
  fake: FakeGithub;
  simulator: ReturnType<typeof startRunnerSimulator>;
  /** The namespaces made for this env, by the names the test asked for. */
  namespaces: Record<string, string>;
  /** A new Gantry process (same config) replaces the running one, as after a restart. */
  restart(): Promise<App>;
  stop(): Promise<void>;
}

export interface GantryEnvOptions {
  /** Namespaces to create (Pod Security restricted), by the names `classes` refers to them by. */
  namespaces: readonly string[];
  /** Labels of a namespace instead of Pod Security restricted, by name (e.g. another level). */
  namespaceLabels?: Record<string, Record<string, string>>;
  /** Keys of the `controller:` section, over the env's quick defaults. */
  controller?: Record<string, unknown>;
  /** The classes, given the namespaces made. */
  classes: (namespaces: Record<string, string>) => Record<string, unknown>;
  fake?: Partial<FakeGithubOptions>;
  /** Extra keys of the `github:` section (merged over the fake's). */
  github?: Record<string, unknown>;
  /** Other top-level keys of the configuration (warmPools, trace, …). */
  config?: Record<string, unknown>;
  /** Namespaces to delete after the file, collected here. */
  cleanup: string[];
}

/** Starts Gantry with `classes` against a fresh fake GitHub; `env.stop()` stops it all. */
export async function startGantryEnv(kc: KubeConfig, options: GantryEnvOptions): Promise<GantryEnv> {
  const namespaces: Record<string, string> = {};
  for (const name of options.namespaces) {
    namespaces[name] = await createTestNamespace(kc, name, options.namespaceLabels?.[name] ?? RESTRICTED);
    options.cleanup.push(namespaces[name]);
  }
  const keys = appKeys();
  const fake = new FakeGithub({
    repos: ['acme/app', 'acme/lib', 'acme/web'],
    app: { appId: APP_ID, publicKey: keys.publicKey },
    // The trusted-only classes' group: closed to public repositories, and to any workflow but acme/web's.
    runnerGroups: [
      {
        name: 'release',
        restrictedToWorkflows: true,
        selectedWorkflows: ['acme/web/.github/workflows/ci.yml@refs/heads/main'],
      },
    ],
    ...options.fake,
  });
  await fake.start();
  fake.runInRealTime(100);
  const config = parseConfig({
    ...options.config,
    log: { level: process.env.GANTRY_TEST_LOG ?? 'silent' },
    http: { address: '127.0.0.1', port: 0 },
    github: { ...fakeGithubConfig(fake, APP_ID, SECRET), ...options.github },
    controller: {
      reconcilePeriodSeconds: 0.5,
      startTimeoutSeconds: 4,
      deadlineGraceSeconds: 1,
      ...options.controller,
    },
    classes: options.classes(namespaces),
  });
  const startApp = async () => {
    const app = createApp(config, {
      kubeConfig: kc,
      logger: pino({ level: process.env.GANTRY_TEST_LOG ?? 'silent' }),
    });
    const { webhookUrl } = await app.start();
    fake.setWebhookTarget(`${webhookUrl}/webhooks/github`, SECRET);
    return app;
  };
  let app: App;
  try {
    app = await startApp();
  } catch (err) {
    await fake.stop();
    throw err;
  }
  const simulator = startRunnerSimulator(kc, fake, Object.values(namespaces));
  const env: GantryEnv = {
    app,
    config,
    fake,
    simulator,
    namespaces,
    async restart() {
      await env.app.stop();
      env.app = await startApp();
      return env.app;
    },
    async stop() {
      await simulator.stop();
      await env.app.stop();
      await fake.stop();
    },
  };
  return env;
}

/** A class on the simulated nodes; its runner pods exit when their job is done (see the simulator). */
export function runnerClass(namespace: string, labels: string[], extra: Record<string, unknown> = {}) {
  return {
    namespace,
    match: { github: { labels } },
    nodeSelector: { type: 'kwok' },
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '128Mi' } },
    idleTimeout: '5s',
    ...extra,
  };
}

/** What an untrusted class needs beyond a runner class: a runner group and a sandbox runtime. */
export const SANDBOX = {
  untrusted: true,
  runnerGroup: 'sandbox',
  runtimeClassName: SANDBOX_RUNTIME_CLASS,
} as const;

/** Runner pods and JIT Secrets left in the env's namespaces, and registrations left on GitHub. */
export async function leftovers(
  kc: KubeConfig,
  env: GantryEnv,
): Promise<{ pods: number; secrets: number; githubRunners: number }> {
  const core = kc.makeApiClient(CoreV1Api);
  let pods = 0;
  let secrets = 0;
  for (const namespace of Object.values(env.namespaces)) {
    const selector = { namespace, labelSelector: 'app.kubernetes.io/managed-by=gantry' };
    pods += (await core.listNamespacedPod(selector)).items.length;
    secrets += (await core.listNamespacedSecret(selector)).items.length;
  }
  return { pods, secrets, githubRunners: env.fake.runners().length };
}
