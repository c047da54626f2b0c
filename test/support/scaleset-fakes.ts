import { FakeActionsService, type FakeActionsServiceOptions } from './fake-actions-service/index.ts';
import { appKeys, FakeGithub, type FakeGithubOptions, fakeAppAuth } from './fake-github/index.ts';

/**
 * GitHub for scale-set mode: the fake Actions service in front (sessions, messages, JIT configs, the
 * registration bootstrap) and the fake GitHub behind it for the rest of the REST API (App tokens,
 * runner groups, workflow runs, repositories). Gantry is given the Actions fake's REST URL, as a
 * GitHub Enterprise Server address, and reaches both through it.
 */

export const SCALESET_APP_ID = 818;

export interface ScaleSetFakes {
  github: FakeGithub;
  actions: FakeActionsService;
  stop(): Promise<void>;
}

export interface ScaleSetFakesOptions {
  github?: Partial<FakeGithubOptions>;
  actions?: Partial<FakeActionsServiceOptions>;
  /** Runner groups on both fakes, with the REST access settings the fake GitHub reports. */
  runnerGroups?: {
    name: string;
    allowsPublicRepositories?: boolean;
    restrictedToWorkflows?: boolean;
    selectedWorkflows?: string[];
  }[];
}

/**
 * The groups most scale-set tests place their classes in: a release group restricted to acme/web's
 * main-branch workflow, and a sandbox group that admits public repositories.
 */
export const RELEASE_AND_SANDBOX_GROUPS: NonNullable<ScaleSetFakesOptions['runnerGroups']> = [
  {
    name: 'release',
    restrictedToWorkflows: true,
    selectedWorkflows: ['acme/web/.github/workflows/ci.yml@refs/heads/main'],
  },
  { name: 'sandbox', allowsPublicRepositories: true },
];

export async function startScaleSetFakes(options: ScaleSetFakesOptions = {}): Promise<ScaleSetFakes> {
  const groups = options.runnerGroups ?? [];
  const github = new FakeGithub({
    repos: ['acme/app', 'acme/lib', 'acme/web'],
    app: { appId: SCALESET_APP_ID, publicKey: appKeys().publicKey },
    runnerGroups: groups,
    ...options.github,
  });
  await github.start();
  const actions = new FakeActionsService({
    github,
    org: github.org,
    runnerGroups: groups.map((g) => g.name),
    ...options.actions,
  });
  await actions.start();
  return {
    github,
    actions,
    async stop() {
      await actions.stop();
      await github.stop();
    },
  };
}

/** Gantry's `github` section in scale-set mode against the fakes. */
export function scaleSetGithubConfig(fakes: ScaleSetFakes, extra: Record<string, unknown> = {}) {
  return {
    enabled: true,
    mode: 'scaleSets',
    apiUrl: fakes.actions.githubApiUrl,
    auth: fakeAppAuth(fakes.github, SCALESET_APP_ID),
    runners: { org: fakes.github.org },
    ...extra,
  };
}

/** The scale set of a class on the Actions fake, by Gantry's default name. */
export function scaleSetOf(fakes: ScaleSetFakes, className: string, prefix = 'gantry') {
  const set = fakes.actions.scaleSets().find((s) => s.name === `${prefix}-${className}`);
  if (!set) throw new Error(`no scale set for class ${className}`);
  return set;
}
