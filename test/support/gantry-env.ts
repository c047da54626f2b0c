import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { type AppEnv, type AppEnvOptions, startAppEnv } from './app-env.ts';
import { appKeys, FakeGithub, type FakeGithubOptions, fakeGithubConfig } from './fake-github/index.ts';
import { listManaged } from './managed.ts';
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

export interface GantryEnv extends AppEnv<ReturnType<typeof startRunnerSimulator>> {
  fake: FakeGithub;
}

export interface GantryEnvOptions extends AppEnvOptions {
  fake?: Partial<FakeGithubOptions>;
}

/** Starts Gantry with `classes` against a fresh fake GitHub; `env.stop()` stops it all. */
export async function startGantryEnv(kc: KubeConfig, options: GantryEnvOptions): Promise<GantryEnv> {
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
  const env = await startAppEnv(kc, options, {
    github: fakeGithubConfig(fake, APP_ID, SECRET),
    started: async (webhookUrl) => fake.setWebhookTarget(`${webhookUrl}/webhooks/github`, SECRET),
    startSimulator: (namespaces) => startRunnerSimulator(kc, fake, namespaces),
    stop: () => fake.stop(),
  });
  return Object.assign(env, { fake });
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
  const found = await Promise.all(
    Object.values(env.namespaces).map((namespace) => listManaged(core, namespace)),
  );
  return {
    pods: found.reduce((sum, f) => sum + f.pods.length, 0),
    secrets: found.reduce((sum, f) => sum + f.secrets.length, 0),
    githubRunners: env.fake.runners().length,
  };
}
