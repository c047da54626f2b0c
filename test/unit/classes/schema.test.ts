import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { classesSchema, runnerClassSchema } from '../../../src/classes/schema.ts';
import { parseConfig } from '../../../src/config/load.ts';
import { cpuMillicores, parseQuantity } from '../../../src/model/quantity.ts';

// The top-level config nests the map under `classes`; parse the same way so paths read as operators see them.
const configWithClasses = z.strictObject({ classes: classesSchema });

/** The messages the config loader would print: `key.path: what was expected`. */
function problems(classes: unknown): string[] {
  const result = configWithClasses.safeParse({ classes });
  if (result.success) return [];
  return result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

function parse(classes: unknown) {
  return configWithClasses.parse({ classes }).classes;
}

const lint = { match: { github: { labels: ['self-hosted', 'linux', 'lint'] } } };
/** What an untrusted class needs beyond its labels: a namespace, a runner group and a sandbox. */
const sandbox = {
  untrusted: true,
  namespace: 'sandbox',
  runnerGroup: 'sandbox',
  runtimeClassName: 'gvisor',
};

describe('runner class configuration', () => {
  it('fills every default from a class that only says what it matches', () => {
    const parsed = parse({ lint });
    expect(parsed.lint).toEqual({
      namespace: 'gantry-runners',
      match: { github: { labels: ['self-hosted', 'linux', 'lint'] } },
      untrusted: false,
      trustedOnly: false,
      allowedEvents: [],
      allowedRefs: [],
      sandboxed: false,
      allowDefaultRuntime: false,
      scope: 'org',
      runnerGroup: 'default',
      minIdle: 0,
      maxRunners: 10,
      maxCreatePerSecond: 5,
      idleTimeout: 300,
      image: 'ghcr.io/actions/actions-runner:latest',
      command: ['/home/runner/run.sh'],
      env: {},
      resources: { requests: { cpu: '1', memory: '2Gi' }, limits: { memory: '2Gi' } },
      workspace: { sizeLimit: '20Gi' },
      nodeSelector: {},
      tolerations: [],
      podAnnotations: {},
      podLabels: {},
      imagePullSecrets: [],
      mountServiceAccountToken: false,
      volumes: [],
      volumeMounts: [],
      initContainers: [],
      sidecars: [],
      topologySpreadConstraints: [],
      hostAliases: [],
      doNotDisrupt: true,
      activeDeadlineSeconds: 21600,
      enforce: false,
      caches: [],
      cost: { perVcpuHour: 0, perGibHour: 0, perRunnerHour: 0 },
      fairness: { enabled: true, maxShare: 1 },
    });
  });

  it('documents every field of a class', () => {
    const undocumented = Object.entries(runnerClassSchema.shape)
      .filter(([, schema]) => !schema.description)
      .map(([key]) => key);
    expect(undocumented).toEqual([]);
  });

  it('accepts no classes at all', () => {
    expect(configWithClasses.parse({})).toEqual({ classes: {} });
  });

  it('normalises YAML numbers and durations', () => {
    const parsed = parse({
      lint: {
        ...lint,
        idleTimeout: '1h30m',
        resources: { requests: { cpu: 2, memory: '4Gi' }, limits: { cpu: 4 } },
        env: { RETRIES: 3, VERBOSE: true },
      },
    });
    expect(parsed.lint?.idleTimeout).toBe(5400);
    expect(parsed.lint?.resources).toEqual({ requests: { cpu: '2', memory: '4Gi' }, limits: { cpu: '4' } });
    expect(parsed.lint?.env).toEqual({ RETRIES: '3', VERBOSE: 'true' });
  });

  it('names the key and the expectation for a bad value', () => {
    expect(problems({ lint: { ...lint, maxRunners: -1 } })).toEqual([
      'classes.lint.maxRunners: expected a number >= 0',
    ]);
    expect(problems({ lint: { ...lint, minIdle: 1.5 } })).toEqual([
      'classes.lint.minIdle: expected a whole number',
    ]);
    expect(problems({ lint: { ...lint, maxCreatePerSecond: 0 } })).toEqual([
      'classes.lint.maxCreatePerSecond: expected a number > 0',
    ]);
    expect(problems({ lint: { ...lint, idleTimeout: 'soon' } })).toEqual([
      'classes.lint.idleTimeout: expected seconds >= 0 or a duration such as 90s, 5m, 1h30m',
    ]);
    expect(problems({ lint: { ...lint, resources: { limits: { memory: '2 gigs' } } } })).toEqual([
      'classes.lint.resources.limits.memory: expected a Kubernetes quantity such as 500m, 2 or 4Gi',
    ]);
    expect(problems({ lint: { ...lint, namespace: 'CI_Runners' } })).toEqual([
      'classes.lint.namespace: expected a DNS-1123 label (lowercase letters, digits and "-", at most 63 characters)',
    ]);
  });

  it('refuses unknown keys with their path', () => {
    const result = configWithClasses.safeParse({ classes: { lint: { ...lint, maxRunner: 3 } } });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]).toMatchObject({ code: 'unrecognized_keys', path: ['classes', 'lint'] });
  });

  it('refuses class names that are not DNS labels', () => {
    expect(problems({ Lint_Fast: lint })).toEqual([
      'classes.Lint_Fast: class names must be DNS-1123 labels (lowercase letters, digits and "-", at most 63)',
    ]);
  });

  it('requires a class to match something', () => {
    expect(problems({ lint: { match: {} } })).toEqual([
      'classes.lint.match: expected at least one of github or tekton',
    ]);
    expect(problems({ lint: {} })).toEqual([
      'classes.lint.match: expected match with github.labels and/or a tekton selector',
    ]);
    expect(problems({ lint: { match: { github: { labels: [] } } } })).toEqual([
      'classes.lint.match.github.labels: expected at least one label',
    ]);
  });

  it('refuses inverted limits and requests above limits', () => {
    expect(problems({ lint: { ...lint, minIdle: 5, maxRunners: 2 } })).toEqual([
      'classes.lint.minIdle: expected at most maxRunners (2), got 5',
    ]);
    expect(
      problems({
        lint: {
          ...lint,
          resources: { requests: { cpu: '1500m', memory: '1Gi' }, limits: { cpu: 1, memory: '1Gi' } },
        },
      }),
    ).toEqual(['classes.lint.resources.requests.cpu: expected at most limits.cpu (1), got 1500m']);
    expect(
      problems({ lint: { ...lint, resources: { requests: { memory: '2G' }, limits: { memory: '2Gi' } } } }),
    ).toEqual([]);
  });

  it('refuses a trusted-only class that takes untrusted jobs', () => {
    expect(
      problems({ release: { ...lint, trustedOnly: true, untrusted: true, runtimeClassName: 'gvisor' } }),
    ).toEqual([
      'classes.release.trustedOnly: a trusted-only class cannot also take untrusted jobs (untrusted: true)',
    ]);
  });

  it('refuses two classes of the same trust with the same GitHub labels, in any order or case', () => {
    const twin = { match: { github: { labels: ['LINT', 'self-hosted', 'linux', 'lint'] } } };
    expect(problems({ lint, twin })).toEqual([
      'classes.twin.match.github.labels: same label set as class lint: jobs would be ambiguous',
    ]);
    // An untrusted class only ever sees untrusted jobs, so repeating a trusted set is not ambiguous.
    const forks = { ...twin, ...sandbox };
    expect(problems({ lint, forks })).toEqual([]);
    expect(problems({ lint, forks, forks2: forks })).toEqual([
      'classes.forks2.match.github.labels: same label set as class forks: jobs would be ambiguous',
    ]);
  });

  it('refuses two trusted classes with the same Tekton selector', () => {
    const selector = { matchLabels: { 'gantry.dev/class': 'build' } };
    expect(problems({ a: { match: { tekton: selector } }, b: { match: { tekton: selector } } })).toEqual([
      'classes.b.match.tekton: same selector as class a: runs would be ambiguous',
    ]);
    expect(
      problems({
        a: { match: { tekton: { matchExpressions: [{ key: 'tier', operator: 'Exists', values: ['x'] }] } } },
      }),
    ).toEqual(['classes.a.match.tekton.matchExpressions.0.values: expected no values for operator Exists']);
  });

  it('tells Tekton classes bound to different namespaces apart, and refuses a namespace twice', () => {
    const selector = { matchLabels: { 'gantry.dev/class': 'build' } };
    expect(
      problems({
        a: { match: { tekton: { ...selector, namespaces: ['team-a'] } } },
        b: { match: { tekton: { ...selector, namespaces: ['team-b'] } } },
      }),
    ).toEqual([]);
    expect(
      problems({
        a: { match: { tekton: { ...selector, namespaces: ['team-a', 'team-b'] } } },
        b: { match: { tekton: { ...selector, namespaces: ['team-b', 'team-a'] } } },
      }),
    ).toEqual(['classes.b.match.tekton: same selector as class a: runs would be ambiguous']);
    expect(problems({ a: { match: { tekton: { namespaces: ['x', 'Team'] } } } })).toEqual([
      'classes.a.match.tekton.namespaces.1: expected a DNS-1123 label (lowercase letters, digits and "-", at most 63 characters)',
    ]);
    expect(problems({ a: { match: { tekton: { namespaces: ['x', 'x'] } } } })).toEqual([
      'classes.a.match.tekton.namespaces.1: x is listed twice',
    ]);
  });

  it('keeps enforce to classes that take Tekton runs; serviceAccountName serves runner pods and TaskRuns alike', () => {
    expect(
      parse({ p: { match: { tekton: {} }, enforce: true, serviceAccountName: 'builder' } }).p,
    ).toMatchObject({ enforce: true, serviceAccountName: 'builder' });
    expect(problems({ lint: { ...lint, enforce: true, serviceAccountName: 'builder' } })).toEqual([
      'classes.lint.enforce: only for a class with match.tekton: it judges and sets PipelineRuns',
    ]);
    expect(problems({ p: { match: { tekton: {} }, serviceAccountName: 'Builder_1' } })).toEqual([
      'classes.p.serviceAccountName: expected a DNS-1123 subdomain (lowercase letters, digits, "-" and ".")',
    ]);
  });

  it('keeps warm pools to classes that run GitHub runners', () => {
    expect(problems({ pipelines: { match: { tekton: {} }, minIdle: 2 } })).toEqual([
      'classes.pipelines.minIdle: expected 0 for a class without match.github: Tekton runs bring their own pods',
    ]);
  });

  it('keeps repo-scoped classes to what GitHub allows', () => {
    expect(problems({ lint: { ...lint, scope: 'repo', minIdle: 1 } })).toEqual([
      'classes.lint.minIdle: expected 0 for scope repo: a warm runner would not know which repository to join',
    ]);
    expect(problems({ lint: { ...lint, scope: 'repo', runnerGroup: 'ci' } })).toEqual([
      'classes.lint.runnerGroup: expected "default" for scope repo: runner groups exist only for organisations',
    ]);
  });

  it('keeps Gantry’s own labels and environment to Gantry', () => {
    expect(
      problems({
        lint: {
          ...lint,
          podLabels: { 'gantry.dev/class': 'x', team: 'web' },
          env: { ACTIONS_RUNNER_INPUT_JITCONFIG: 'x' },
        },
      }),
    ).toEqual([
      'classes.lint.env.ACTIONS_RUNNER_INPUT_JITCONFIG: is set by Gantry from the runner’s secret',
      'classes.lint.podLabels.gantry.dev/class: is reserved: Gantry sets it to find its pods',
    ]);
    expect(problems({ lint: { ...lint, podLabels: { 'app.kubernetes.io/part-of': 'ci' } } })).toEqual([]);
    expect(problems({ lint: { ...lint, podLabels: { team: 'web platform' } } })).toEqual([
      'classes.lint.podLabels.team: expected a label value (at most 63 letters, digits, "-", "_" or ".", alphanumeric at both ends)',
    ]);
  });

  it('checks caches: kinds, unique names and mount paths, one cache per tool', () => {
    const caches = [
      { type: 'persistentVolumeClaim', name: 'deps', claimName: 'ci-deps' },
      { type: 'ephemeral', name: 'deps', size: '10Gi', tools: ['npm'] },
      { type: 'ephemeral', name: 'scratch', size: 'big', tools: [] },
      { type: 'nfs', name: 'x' },
      { type: 'ephemeral', name: 'work', size: '1Gi', tools: [], mountPath: '/home/runner/_work/cache' },
    ];
    expect(problems({ lint: { ...lint, caches } })).toEqual([
      'classes.lint.caches.2.size: expected a Kubernetes quantity such as 500m, 2 or 4Gi',
      'classes.lint.caches.3.type: expected a cache with type persistentVolumeClaim or ephemeral',
    ]);
    expect(problems({ lint: { ...lint, caches: [caches[0], caches[1], caches[4]] } })).toEqual([
      'classes.lint.caches.1.name: duplicates caches[0].name',
      "classes.lint.caches.1.mountPath: duplicates caches[0]'s mount path",
      'classes.lint.caches.1.tools: npm is already served by caches[0]',
      'classes.lint.caches.2.mountPath: must not overlap the work folder /home/runner/_work',
    ]);
  });

  it('checks tolerations the way the apiserver would', () => {
    const tolerations = [{ operator: 'Exists', key: 'ci', value: 'x' }, { value: 'x' }];
    expect(problems({ lint: { ...lint, tolerations } })).toEqual([
      'classes.lint.tolerations.0.value: expected no value with operator Exists',
      'classes.lint.tolerations.1.key: expected a key with operator Equal (or use Exists)',
    ]);
  });

  it('accepts a fully specified class', () => {
    const release = {
      namespace: 'ci-release',
      match: {
        github: { labels: ['self-hosted', 'release'] },
        tekton: { matchLabels: { pipeline: 'release' } },
      },
      trustedOnly: true,
      scope: 'repo',
      maxRunners: 4,
      maxCreatePerSecond: 0.5,
      idleTimeout: '2m',
      image: 'registry.example.com/runner:2.330',
      command: ['/home/runner/run.sh', '--once'],
      env: { TZ: 'UTC' },
      resources: {
        requests: { cpu: '2', memory: '4Gi', 'ephemeral-storage': '10Gi' },
        limits: { memory: '8Gi' },
      },
      workspace: { sizeLimit: '50Gi' },
      runtimeClassName: 'gvisor',
      nodeSelector: { 'node.kubernetes.io/pool': 'ci' },
      tolerations: [{ key: 'ci', operator: 'Exists', effect: 'NoSchedule' }],
      affinity: { nodeAffinity: {} },
      priorityClassName: 'ci-high',
      podAnnotations: { 'kwok.gantry.dev/succeed-after': '30s' },
      podLabels: { team: 'release' },
      activeDeadlineSeconds: 3600,
      caches: [
        { type: 'persistentVolumeClaim', name: 'gradle', claimName: 'gradle-cache', tools: ['gradle'] },
      ],
      cost: { perVcpuHour: 0.04, perGibHour: 0.005, perRunnerHour: 0.01 },
      fairness: { enabled: true, maxShare: 0.5 },
    };
    expect(problems({ release })).toEqual([]);
    expect(parse({ release }).release?.tolerations).toEqual([
      { key: 'ci', operator: 'Exists', effect: 'NoSchedule' },
    ]);
  });
});

describe('Kubernetes quantities', () => {
  it('reads decimal, binary and exponent suffixes in base units', () => {
    expect(parseQuantity('500m')).toBe(0.5);
    expect(parseQuantity('2')).toBe(2);
    expect(parseQuantity('1.5')).toBe(1.5);
    expect(parseQuantity('4Gi')).toBe(4 * 2 ** 30);
    expect(parseQuantity('2G')).toBe(2e9);
    expect(parseQuantity('1e3')).toBe(1000);
    expect(parseQuantity('128974848')).toBe(128974848);
  });

  it('refuses what Kubernetes would refuse, and negative amounts', () => {
    for (const bad of ['', 'Gi', '2 Gi', '2gi', '-1', '1.2.3', '4GB', 'lots'])
      expect(parseQuantity(bad), bad).toBeUndefined();
  });

  it('rounds CPU up to whole millicores', () => {
    expect(cpuMillicores(0.5)).toBe(500);
    expect(cpuMillicores(0.1 + 0.2)).toBe(300);
    expect(cpuMillicores(0.0001)).toBe(1);
  });
});

describe('runner classes and trust', () => {
  describe('trust tiers', () => {
    const forks = { match: { github: { labels: ['self-hosted', 'linux', 'sandbox'] } }, ...sandbox };

    it('allows several untrusted classes apart from the trusted ones', () => {
      const big = { ...forks, match: { github: { labels: ['self-hosted', 'linux', 'sandbox', 'big'] } } };
      expect(problems({ lint, forks, big })).toEqual([]);
    });

    it('refuses an untrusted class in a trusted class’s namespace or runner group', () => {
      const shared = { ...forks, namespace: 'gantry-runners', runnerGroup: 'Default' };
      expect(problems({ lint, forks: shared })).toEqual([
        'classes.forks.namespace: gantry-runners is also the namespace of trusted class lint: an untrusted class needs a namespace of its own (quota, network policy and caches would be shared)',
        'classes.forks.runnerGroup: "Default" is also the runner group of trusted class lint: GitHub gives a job to any idle runner of a group that admits its repository, so untrusted jobs would reach lint\'s runners; an untrusted class needs a runner group of its own',
      ]);
    });

    it('refuses repository scope for both tiers', () => {
      const repoLint = { ...lint, scope: 'repo' };
      expect(
        problems({ lint: repoLint, forks: { ...forks, scope: 'repo', runnerGroup: 'default' } }),
      ).toEqual([
        'classes.forks.scope: repo, like trusted class lint: both would register runners in the same repositories, where GitHub gives a job to any idle runner; use scope org with a runner group of its own',
      ]);
    });

    it('requires a sandbox runtime and refuses tolerating every taint', () => {
      const { runtimeClassName: _, ...bare } = forks;
      expect(problems({ forks: { ...bare, tolerations: [{ operator: 'Exists' }] } })).toEqual([
        'classes.forks.runtimeClassName: required for an untrusted or sandboxed class (e.g. gvisor or kata), unless allowDefaultRuntime is set',
        'classes.forks.tolerations.0: tolerates every taint: an untrusted or sandboxed class must stay off nodes tainted for others',
      ]);
      expect(problems({ forks: { ...bare, allowDefaultRuntime: true } })).toEqual([]);
      expect(problems({ lint: { ...lint, allowDefaultRuntime: true } })).toEqual([
        'classes.lint.allowDefaultRuntime: only for an untrusted or sandboxed class',
      ]);
    });

    it('holds a sandboxed trusted class to the untrusted tier’s rules', () => {
      const open = { match: { github: { labels: ['self-hosted', 'oss'] } }, sandboxed: true };
      expect(problems({ open })).toEqual([
        'classes.open.runtimeClassName: required for an untrusted or sandboxed class (e.g. gvisor or kata), unless allowDefaultRuntime is set',
      ]);
      expect(
        problems({
          lint,
          open: { ...open, runtimeClassName: 'gvisor', namespace: 'oss', runnerGroup: 'oss' },
        }),
      ).toEqual([]);
      expect(problems({ open: { ...open, runtimeClassName: 'gvisor', trustedOnly: true } })).toEqual([
        'classes.open.sandboxed: only for a trusted class that is neither untrusted nor trustedOnly',
      ]);
    });

    it('takes allowed events and refs on trusted-only classes only', () => {
      const release = {
        ...lint,
        trustedOnly: true,
        allowedEvents: ['push', 'release'],
        allowedRefs: ['refs/tags/v*'],
      };
      expect(problems({ release })).toEqual([]);
      expect(problems({ lint: { ...lint, allowedEvents: ['push'] } })).toEqual([
        'classes.lint.allowedEvents: only for a trustedOnly class',
      ]);
      expect(problems({ release: { ...release, allowedRefs: ['main'] } })).toEqual([
        'classes.release.allowedRefs.0: expected refs/heads/NAME or refs/tags/NAME (* matches any text)',
      ]);
    });
  });

  describe('caches and trust', () => {
    const claim = (claimName: string, extra: Record<string, unknown> = {}) => ({
      caches: [{ name: 'deps', type: 'persistentVolumeClaim', claimName, ...extra }],
    });

    it('refuses a trusted-only class sharing its claim with another class, naming both', () => {
      expect(
        problems({
          lint: { ...lint, ...claim('deps') },
          release: {
            ...lint,
            trustedOnly: true,
            match: { github: { labels: ['release'] } },
            ...claim('deps'),
          },
        }),
      ).toEqual([
        'classes.release.caches.0.claimName: claim gantry-runners/deps is shared with lint: a trusted-only class may not share a cache claim with another class',
      ]);
      // The same claim name in another namespace is another claim.
      expect(
        problems({
          lint: { ...lint, ...claim('deps') },
          release: {
            ...lint,
            namespace: 'release',
            trustedOnly: true,
            match: { github: { labels: ['release'] } },
            ...claim('deps'),
          },
        }),
      ).toEqual([]);
    });

    it('keeps per-repository paths to repository scope, and build caches off the sandbox tier', () => {
      expect(problems({ lint: { ...lint, ...claim('deps', { perRepository: true }) } })).toEqual([
        'classes.lint.caches.0.perRepository: needs scope repo: GitHub hands an org-scoped runner any repository’s job',
      ]);
      expect(
        problems({ lint: { ...lint, scope: 'repo', ...claim('deps', { perRepository: true }) } }),
      ).toEqual([]);
      expect(problems({ forks: { ...lint, ...sandbox, ...claim('deps', { buildCaches: true }) } })).toEqual([
        'classes.forks.caches.0.buildCaches: not for an untrusted or sandboxed class: what one job writes there later jobs execute',
      ]);
    });
  });
});

describe('a warm pool from a queue-time objective', () => {
  const lint = (extra: Record<string, unknown>) => ({
    classes: { lint: { match: { github: { labels: ['self-hosted', 'lint'] } }, maxRunners: 20, ...extra } },
  });

  it('takes one percentile and bounds, in place of minIdle', () => {
    const config = parseConfig(lint({ warmPool: { queueTimeObjective: { p95: '30s' }, max: 8 } }));
    expect(config.classes.lint?.warmPool).toEqual({
      queueTimeObjective: { p95: 30 },
      min: 0,
      max: 8,
      objective: { percentile: 'p95', quantile: 0.95, seconds: 30 },
    });
  });

  it('refuses what cannot work, naming the key', () => {
    const refuse = (extra: Record<string, unknown>, message: string) =>
      expect(() => parseConfig(lint(extra))).toThrow(message);
    refuse(
      { warmPool: { queueTimeObjective: {} } },
      'classes.lint.warmPool.queueTimeObjective: expected exactly one of p50, p90, p95 or p99',
    );
    refuse(
      { warmPool: { queueTimeObjective: { p95: '30s', p99: '60s' } } },
      'expected exactly one of p50, p90, p95 or p99',
    );
    refuse(
      { warmPool: { queueTimeObjective: { p95: 'soon' } } },
      'classes.lint.warmPool.queueTimeObjective.p95',
    );
    refuse(
      { warmPool: { queueTimeObjective: { p95: 30 } }, minIdle: 2 },
      'classes.lint.warmPool: use warmPool or minIdle, not both',
    );
    refuse(
      { warmPool: { queueTimeObjective: { p95: 30 }, max: 30 } },
      'classes.lint.warmPool.max: expected at most maxRunners (20), got 30',
    );
    refuse(
      { warmPool: { queueTimeObjective: { p95: 30 }, min: 25 } },
      'classes.lint.warmPool.min: expected at most maxRunners (20), got 25',
    );
    refuse(
      { warmPool: { queueTimeObjective: { p95: 30 } }, scope: 'repo' },
      'classes.lint.warmPool: not for scope repo',
    );
    refuse(
      { warmPool: { queueTimeObjective: { p95: 30 }, spare: 1 } },
      'unknown key classes.lint.warmPool.spare',
    );
  });
});
