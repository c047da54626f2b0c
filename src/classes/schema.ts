import type { V1Affinity } from '@kubernetes/client-node';
import { z } from 'zod';
import { LABEL_COMPONENT, LABEL_MANAGED_BY, RESERVED_KEY_PREFIX } from '../model/keys.ts';
import { isDnsLabel, isQualifiedName } from '../model/kube-names.ts';
import { parseQuantity } from '../model/quantity.ts';
import {
  absolutePath,
  annotationMap,
  count,
  dnsLabel,
  dnsSubdomain,
  duration,
  envMap,
  labelMap,
  quantity,
  resourceList,
} from './fields.ts';
import { checkPodOverrides, podOverrideFields } from './pod-overrides.ts';

/**
 * Runner classes: the operator's `classes:` map (name → class). A class says which jobs it takes,
 * how many runners it may run and how fast it may create them, and what its runner pods look like.
 * Every field has a default; cross-field mistakes are refused with the key that is wrong.
 */

/** Pod labels Gantry sets itself (and finds its pods by), which a class may not set. */
const RESERVED_LABELS = [LABEL_MANAGED_BY, LABEL_COMPONENT];
/** The runner's JIT config variable, which Gantry fills from the runner's secret. */
export const JIT_CONFIG_ENV = 'ACTIONS_RUNNER_INPUT_JITCONFIG';
export const CACHE_TOOLS = ['npm', 'pip', 'go', 'gradle'] as const;
export type CacheTool = (typeof CACHE_TOOLS)[number];

/** The runner's work folder (an emptyDir), where GitHub's runner checks out and builds. */
export const RUNNER_WORK_DIR = '/home/runner/_work';
/** The pod volume of the work folder. */
export const RUNNER_WORK_VOLUME = 'work';
/** The runner's container in its pod. */
export const RUNNER_CONTAINER = 'runner';

const toleration = z
  .strictObject({
    key: z.string().optional().describe('Taint key; empty with operator Exists tolerates every taint.'),
    operator: z.enum(['Exists', 'Equal']).default('Equal').describe('Exists or Equal.'),
    value: z.string().optional().describe('Taint value for operator Equal.'),
    effect: z
      .enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute'])
      .optional()
      .describe('Taint effect to tolerate; empty means all.'),
    tolerationSeconds: z
      .int()
      .min(0)
      .optional()
      .describe('For NoExecute: how long the pod stays once tainted.'),
  })
  .superRefine((value, ctx) => {
    if (value.operator === 'Exists' && value.value) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: 'expected no value with operator Exists' });
    }
    if (value.operator === 'Equal' && !value.key) {
      ctx.addIssue({
        code: 'custom',
        path: ['key'],
        message: 'expected a key with operator Equal (or use Exists)',
      });
    }
  });

/** Checked only at the top; the apiserver validates the rest of an affinity. */
const affinityTerm = z.record(z.string(), z.unknown());
const affinity = z
  .strictObject(
    {
      nodeAffinity: affinityTerm.optional(),
      podAffinity: affinityTerm.optional(),
      podAntiAffinity: affinityTerm.optional(),
    },
    { error: 'expected an affinity with nodeAffinity, podAffinity and/or podAntiAffinity' },
  )
  .transform((value): V1Affinity => value);

const cacheTools = z
  .array(z.enum(CACHE_TOOLS))
  .default([...CACHE_TOOLS])
  .describe('Tools whose cache environment variables point into this volume: npm, pip, go, gradle.');

const cacheCommon = {
  // The pod volume is called cache-<name>, which must itself be a DNS label.
  name: dnsLabel
    .refine((name) => name.length <= 57, { error: 'expected at most 57 characters' })
    .describe('Cache name, unique within the class; the pod volume is cache-<name>.'),
  mountPath: absolutePath.optional().describe('Where the cache is mounted; default /caches/<name>.'),
  tools: cacheTools,
};

const sharedCacheOptions = {
  readOnly: z
    .boolean()
    .optional()
    .describe(
      'Mount the claim read-only (tools then only read from it: Go through a file:// module proxy, Gradle ' +
        'as a read-only dependency cache; npm and pip keep their own). Default: read-only for untrusted ' +
        'classes, whose jobs would otherwise plant content for one another, read-write for the others.',
    ),
  perRepository: z
    .boolean()
    .default(false)
    .describe(
      'Mount a sub-path per repository (owner/name, lowercase) instead of the whole claim. Scope repo ' +
        'only: there a runner takes jobs of its own repository alone, while GitHub hands an org-scoped ' +
        'runner any repository’s job.',
    ),
  buildCaches: z
    .boolean()
    .default(false)
    .describe(
      'Also point GOCACHE and GRADLE_USER_HOME into this shared claim. Faster, but what one job writes ' +
        'there later jobs execute (Gradle init scripts; Go build results are not verified on read): only ' +
        'where every job of the class is trusted. Off: the shared claim holds verified or inert caches ' +
        'only (npm, pip, GOMODCACHE, GRADLE_RO_DEP_CACHE).',
    ),
};

const cache = z.discriminatedUnion(
  'type',
  [
    z.strictObject({
      type: z.literal('persistentVolumeClaim'),
      ...cacheCommon,
      claimName: dnsSubdomain.describe(
        'An existing PVC in the class’s namespace, shared by its runners. Needs an access mode that ' +
          'allows many pods. A trusted-only class may not share its claim with another class.',
      ),
      ...sharedCacheOptions,
    }),
    z.strictObject({
      type: z.literal('ephemeral'),
      ...cacheCommon,
      size: quantity.describe('Size of the per-runner volume, created with the pod and deleted with it.'),
      storageClassName: dnsSubdomain.optional().describe('Storage class; the cluster default when empty.'),
    }),
  ],
  { error: 'expected a cache with type persistentVolumeClaim or ephemeral' },
);
export type CacheConfig = z.output<typeof cache>;

const matchExpression = z.strictObject({
  key: z.string().refine(isQualifiedName, { error: 'expected a label key' }),
  operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
  values: z.array(z.string()).default([]),
});

const tektonSelector = z
  .strictObject({
    matchLabels: labelMap
      .default({})
      .describe('Labels the PipelineRun must carry with exactly these values.'),
    matchExpressions: z
      .array(matchExpression)
      .default([])
      .describe('Set-based requirements, as in a Deployment.'),
    namespaces: z
      .array(dnsLabel)
      .default([])
      .describe(
        'Namespaces whose PipelineRuns the class takes; empty: any. A run of another namespace is not ' +
          'selected, and one that names the class (label gantry.dev/class) is refused at creation.',
      ),
  })
  .superRefine((selector, ctx) => {
    const seen = new Set<string>();
    selector.namespaces.forEach((namespace, index) => {
      if (seen.has(namespace)) {
        ctx.addIssue({
          code: 'custom',
          path: ['namespaces', index],
          message: `${namespace} is listed twice`,
        });
      }
      seen.add(namespace);
    });
    selector.matchExpressions.forEach((expression, index) => {
      const needsValues = expression.operator === 'In' || expression.operator === 'NotIn';
      if (needsValues !== expression.values.length > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['matchExpressions', index, 'values'],
          message: needsValues
            ? `expected at least one value for operator ${expression.operator}`
            : `expected no values for operator ${expression.operator}`,
        });
      }
    });
  });
export type TektonSelector = z.output<typeof tektonSelector>;

/** The queue-time quantiles an objective may name. */
export const OBJECTIVE_QUANTILES = { p50: 0.5, p90: 0.9, p95: 0.95, p99: 0.99 } as const;

const warmPoolSchema = z
  .strictObject({
    queueTimeObjective: z
      .strictObject({
        p50: duration.optional(),
        p90: duration.optional(),
        p95: duration.optional(),
        p99: duration.optional(),
      })
      .refine((o) => Object.values(o).filter((v) => v !== undefined).length === 1, {
        error: 'expected exactly one of p50, p90, p95 or p99, e.g. { p95: 30s }',
      })
      .describe('The queue time (job queued → started) to keep within, as one percentile: { p95: 30s }.'),
    min: count().default(0).describe('Fewest warm runners, whatever the objective says.'),
    max: count().optional().describe('Most warm runners; default maxRunners.'),
  })
  .transform((pool) => {
    const [name, seconds] = Object.entries(pool.queueTimeObjective).find(([, v]) => v !== undefined) as [
      keyof typeof OBJECTIVE_QUANTILES,
      number,
    ];
    return { ...pool, objective: { percentile: name, quantile: OBJECTIVE_QUANTILES[name], seconds } };
  });
export type WarmPoolConfig = z.output<typeof warmPoolSchema>;

// ── One class ──────────────────────────────────────────────────────────────────────────────────────

export const runnerClassSchema = z
  .strictObject({
    namespace: dnsLabel
      .default('gantry-runners')
      .describe('Namespace of the class’s runner pods and secrets.'),
    match: z
      .strictObject(
        {
          github: z
            .strictObject({
              labels: z
                .array(z.string().trim().min(1, { error: 'expected a non-empty label' }))
                .min(1, { error: 'expected at least one label' })
                .max(100, { error: 'expected at most 100 labels (GitHub’s limit per runner)' })
                .describe(
                  'The runner’s labels. A job goes to this class when every label of its runs-on is among them ' +
                    '(case-insensitive); include self-hosted if workflows ask for it.',
                ),
            })
            .optional()
            .describe('GitHub Actions jobs this class serves.'),
          tekton: tektonSelector
            .optional()
            .describe('Label selector for the PipelineRuns this class admits.'),
        },
        { error: 'expected match with github.labels and/or a tekton selector' },
      )
      .describe('Which jobs the class takes. At least one of github and tekton.'),
    untrusted: z
      .boolean()
      .default(false)
      .describe(
        'This class runs untrusted jobs (fork pull requests, public repositories: see github.trust) and ' +
          'only those. It needs a namespace and (org scope) a runner group no trusted class uses, and a ' +
          'runtimeClassName. Without an untrusted class, untrusted jobs are left alone and counted.',
      ),
    trustedOnly: z
      .boolean()
      .default(false)
      .describe(
        'Only trusted jobs of the allowed events and refs get this class’s runners (meant for release). ' +
          'Its runner group must admit no public repository and only selected workflows.',
      ),
    allowedEvents: z
      .array(z.string().regex(/^[a-z][a-z_]*$/, 'expected a GitHub event name such as push or release'))
      .default([])
      .describe(
        'Trusted-only classes: the events whose runs may use the class, e.g. [push, release]. Empty: every ' +
          'event but those of github.trust.trustedOnlyDeniedEvents.',
      ),
    allowedRefs: z
      .array(
        z
          .string()
          .regex(
            /^refs\/(heads|tags)\/\S+$/,
            'expected refs/heads/NAME or refs/tags/NAME (* matches any text)',
          ),
      )
      .default([])
      .describe(
        'Trusted-only classes: the branches and tags whose runs may use the class, e.g. [refs/heads/main, ' +
          'refs/tags/v*]. Empty: any. GitHub reports a run’s branch or tag name without saying which it ' +
          'is, so refs/heads/X and refs/tags/X both match a run of X (a release event is always a tag).',
      ),
    sandboxed: z
      .boolean()
      .default(false)
      .describe(
        'A trusted class isolated like an untrusted one (runtimeClassName, no namespace or runner group ' +
          'shared with trusted classes), whose runner group may therefore admit public repositories: an ' +
          'untrusted job that lands on it is counted, not stopped.',
      ),
    allowDefaultRuntime: z
      .boolean()
      .default(false)
      .describe(
        'Untrusted and sandboxed classes: run without a runtimeClassName, on the nodes’ default runtime. ' +
          'Only where the nodeSelector picks nodes that sandbox every container anyway.',
      ),
    scope: z
      .enum(['org', 'repo'])
      .default('org')
      .describe('org: runners register to the organisation; repo: each runner to the repository of its job.'),
    runnerGroup: z
      .string()
      .min(1)
      .default('default')
      .describe('Organisation runner group the runners join (org scope only).'),
    minIdle: count().default(0).describe('Idle runners kept warm beyond queued demand (org scope only).'),
    warmPool: warmPoolSchema
      .optional()
      .describe(
        'A warm pool sized from a queue-time objective instead of a fixed minIdle (org scope only): each ' +
          'hour, the least number of idle runners that meets the objective for the arrivals Gantry learned ' +
          'for that hour of the week (UTC), between min and max.',
      ),
    maxRunners: count()
      .default(10)
      .describe('Most runners (and admitted Tekton runs) alive at once, busy or not.'),
    maxCreatePerSecond: z
      .number({ error: 'expected a number' })
      .positive({ error: 'expected a number > 0' })
      .default(5)
      .describe(
        'Sustained creation rate (runners plus admitted runs per second); bursts up to one second’s worth.',
      ),
    idleTimeout: duration
      .default(300)
      .describe('Seconds (or 90s, 5m, …) an idle runner above minIdle is kept before it is removed.'),
    image: z.string().min(1).default('ghcr.io/actions/actions-runner:latest').describe('Runner image.'),
    command: z
      .array(z.string().min(1))
      .min(1)
      .default(['/home/runner/run.sh'])
      .describe('Runner command; it reads its JIT config from ACTIONS_RUNNER_INPUT_JITCONFIG.'),
    env: envMap.default({}).describe('Extra environment for the runner; wins over the cache variables.'),
    resources: z
      .strictObject({
        requests: resourceList.default({}).describe('What the scheduler reserves (and quotas count).'),
        limits: resourceList.default({}).describe('Hard ceilings; memory above it is OOM-killed.'),
      })
      .default({ requests: { cpu: '1', memory: '2Gi' }, limits: { memory: '2Gi' } })
      .describe('Runner container resources. Default: requests cpu 1, memory 2Gi; limit memory 2Gi.'),
    workspace: z
      .strictObject({
        sizeLimit: quantity.default('20Gi').describe('Most the job may write to its work folder.'),
      })
      .prefault({})
      .describe('The runner’s work folder, an emptyDir at /home/runner/_work.'),
    runtimeClassName: dnsSubdomain
      .optional()
      .describe('RuntimeClass sandboxing the pod, e.g. gvisor or kata.'),
    nodeSelector: labelMap.default({}).describe('Node labels the pod must run on.'),
    tolerations: z.array(toleration).default([]).describe('Taints the pod tolerates.'),
    affinity: affinity.optional().describe('Node and pod affinity, as in a pod spec.'),
    priorityClassName: dnsSubdomain.optional().describe('PriorityClass of the runner pods.'),
    podAnnotations: annotationMap.default({}).describe('Annotations added to every runner pod.'),
    podLabels: labelMap.default({}).describe('Labels added to every runner pod (not gantry.dev/…).'),
    ...podOverrideFields,
    activeDeadlineSeconds: z
      .int({ error: 'expected a whole number' })
      .positive({ error: 'expected a number > 0' })
      .default(6 * 3600)
      .describe('Job timeout: the pod is stopped this many seconds after it starts.'),
    enforce: z
      .boolean()
      .default(false)
      .describe(
        'Tekton: refuse, at creation, a PipelineRun whose pod templates (taskRunTemplate and taskRunSpecs) ' +
          'contradict the class’s pod settings or Gantry’s floor (runAsNonRoot, seccomp RuntimeDefault, no ' +
          'service-account token), set a toleration the class lacks, use the host’s network, PID or IPC ' +
          'namespace or a hostPath volume, or whose embedded Task specs run a step or sidecar privileged, ' +
          'with added capabilities or as root. Referenced Tasks and Pipelines are not visible at creation: ' +
          'Pod Security on the namespace must refuse their pods. Off: the class’s settings are defaults the ' +
          'author may override (with a warning).',
      ),
    maxQueueAge: duration
      .optional()
      .describe(
        'Tekton: a PipelineRun still queued this long (seconds, or 30m, 2h, …) is cancelled, with the reason ' +
          'in its gantry.dev/cancel-reason annotation. Unset: runs wait as long as it takes.',
      ),
    caches: z.array(cache).default([]).describe('Cache volumes mounted into every runner of the class.'),
    cost: z
      .strictObject({
        perVcpuHour: z.number().min(0).default(0).describe('Dollars per requested vCPU-hour.'),
        perGibHour: z.number().min(0).default(0).describe('Dollars per requested GiB-hour of memory.'),
        perRunnerHour: z.number().min(0).default(0).describe('Dollars per runner-hour (licences, overhead).'),
      })
      .prefault({})
      .describe('Cost rates for the cost metrics.'),
    fairness: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            'When saturated, share new capacity max-min fairly across repositories; off: oldest job first.',
          ),
        maxShare: z
          .number()
          .gt(0, { error: 'expected a number > 0' })
          .max(1, { error: 'expected a number <= 1' })
          .default(1)
          .describe(
            'With fairness enabled and others waiting, a repository holds at most this fraction of maxRunners ' +
              '(at least one runner).',
          ),
      })
      .prefault({})
      .describe('Per-repository sharing for repo-scoped runners and Tekton namespaces.'),
  })
  .superRefine(checkRunnerClass);

export type RunnerClass = z.output<typeof runnerClassSchema>;

// ── The map ────────────────────────────────────────────────────────────────────────────────────────

export const classesSchema = z
  .record(z.string(), runnerClassSchema)
  .default({})
  .superRefine(checkClasses)
  .describe('Runner classes by name (DNS-1123 labels). Each job goes to exactly one class, or to none.');

export type RunnerClasses = z.output<typeof classesSchema>;

type Ctx = z.RefinementCtx;

function checkRunnerClass(runnerClass: RunnerClass, ctx: Ctx): void {
  const issue = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: 'custom', path, message });

  if (!runnerClass.match.github && !runnerClass.match.tekton) {
    issue(['match'], 'expected at least one of github or tekton');
  }
  // Field errors are reported already; comparing a bad value would only add noise.
  if (runnerClass.maxRunners >= 0 && runnerClass.minIdle > runnerClass.maxRunners) {
    issue(['minIdle'], `expected at most maxRunners (${runnerClass.maxRunners}), got ${runnerClass.minIdle}`);
  }
  if (runnerClass.warmPool) {
    const pool = runnerClass.warmPool;
    if (runnerClass.minIdle > 0) issue(['warmPool'], 'use warmPool or minIdle, not both');
    if (!runnerClass.match.github) issue(['warmPool'], 'only for a class with match.github');
    if (runnerClass.scope === 'repo') {
      issue(['warmPool'], 'not for scope repo: a warm runner would not know which repository to join');
    }
    const max = pool.max ?? runnerClass.maxRunners;
    if (pool.max !== undefined && runnerClass.maxRunners >= 0 && pool.max > runnerClass.maxRunners) {
      issue(['warmPool', 'max'], `expected at most maxRunners (${runnerClass.maxRunners}), got ${pool.max}`);
    }
    if (pool.min > max)
      issue(
        ['warmPool', 'min'],
        `expected at most ${pool.max !== undefined ? 'warmPool.max' : 'maxRunners'} (${max}), got ${pool.min}`,
      );
  }
  if (runnerClass.trustedOnly && runnerClass.untrusted) {
    issue(['trustedOnly'], 'a trusted-only class cannot also take untrusted jobs (untrusted: true)');
  }
  if (runnerClass.sandboxed && (runnerClass.untrusted || runnerClass.trustedOnly)) {
    issue(['sandboxed'], 'only for a trusted class that is neither untrusted nor trustedOnly');
  }
  for (const key of ['allowedEvents', 'allowedRefs'] as const) {
    if (runnerClass[key].length > 0 && !runnerClass.trustedOnly) {
      issue([key], 'only for a trustedOnly class');
    }
  }
  if (isSandboxTier(runnerClass) && runnerClass.match.github) {
    if (!runnerClass.runtimeClassName && !runnerClass.allowDefaultRuntime) {
      issue(
        ['runtimeClassName'],
        'required for an untrusted or sandboxed class (e.g. gvisor or kata), unless allowDefaultRuntime is set',
      );
    }
    runnerClass.tolerations.forEach((toleration, index) => {
      if (toleration.operator === 'Exists' && !toleration.key) {
        issue(
          ['tolerations', index],
          'tolerates every taint: an untrusted or sandboxed class must stay off nodes tainted for others',
        );
      }
    });
  }
  if (runnerClass.allowDefaultRuntime && !isSandboxTier(runnerClass)) {
    issue(['allowDefaultRuntime'], 'only for an untrusted or sandboxed class');
  }
  if (!runnerClass.match.tekton) {
    if (runnerClass.enforce) {
      issue(['enforce'], 'only for a class with match.tekton: it judges and sets PipelineRuns');
    }
  }
  if (!runnerClass.match.github && runnerClass.minIdle > 0) {
    issue(['minIdle'], 'expected 0 for a class without match.github: Tekton runs bring their own pods');
  }
  if (runnerClass.scope === 'repo' && runnerClass.minIdle > 0) {
    issue(['minIdle'], 'expected 0 for scope repo: a warm runner would not know which repository to join');
  }
  if (runnerClass.scope === 'repo' && runnerClass.runnerGroup !== 'default') {
    issue(['runnerGroup'], 'expected "default" for scope repo: runner groups exist only for organisations');
  }
  for (const name of ['cpu', 'memory', 'ephemeral-storage'] as const) {
    const request = runnerClass.resources.requests[name];
    const limit = runnerClass.resources.limits[name];
    if (request !== undefined && limit !== undefined) {
      if ((parseQuantity(request) ?? 0) > (parseQuantity(limit) ?? 0)) {
        issue(['resources', 'requests', name], `expected at most limits.${name} (${limit}), got ${request}`);
      }
    }
  }
  const storageLimit = runnerClass.resources.limits['ephemeral-storage'];
  const workspace = runnerClass.workspace.sizeLimit;
  if (storageLimit !== undefined && (parseQuantity(storageLimit) ?? 0) < (parseQuantity(workspace) ?? 0)) {
    issue(
      ['resources', 'limits', 'ephemeral-storage'],
      `expected at least workspace.sizeLimit (${workspace}): the kubelet counts the work folder against it`,
    );
  }
  if (JIT_CONFIG_ENV in runnerClass.env) {
    issue(['env', JIT_CONFIG_ENV], 'is set by Gantry from the runner’s secret');
  }
  for (const key of Object.keys(runnerClass.podLabels)) {
    if (key.startsWith(RESERVED_KEY_PREFIX) || RESERVED_LABELS.includes(key)) {
      issue(['podLabels', key], 'is reserved: Gantry sets it to find its pods');
    }
  }
  checkCaches(runnerClass.caches, issue);
  checkPodOverrides(
    runnerClass,
    {
      container: RUNNER_CONTAINER,
      volumes: new Set([RUNNER_WORK_VOLUME, ...runnerClass.caches.map(cacheVolumeName)]),
      mountPaths: [RUNNER_WORK_DIR, ...runnerClass.caches.map(cacheMountPath)],
    },
    isSandboxTier(runnerClass),
    issue,
  );
  runnerClass.caches.forEach((cacheConfig, index) => {
    if (cacheConfig.type !== 'persistentVolumeClaim') return;
    if (cacheConfig.perRepository && runnerClass.scope !== 'repo') {
      issue(
        ['caches', index, 'perRepository'],
        'needs scope repo: GitHub hands an org-scoped runner any repository’s job',
      );
    }
    if (cacheConfig.buildCaches && isSandboxTier(runnerClass)) {
      issue(
        ['caches', index, 'buildCaches'],
        'not for an untrusted or sandboxed class: what one job writes there later jobs execute',
      );
    }
  });
}

/**
 * The tier whose runners fork code may reach: untrusted classes, and trusted classes isolated as if
 * they were. GitHub's runner groups (and namespaces, on the cluster's side) must keep it apart.
 */
export function isSandboxTier(runnerClass: RunnerClass): boolean {
  return runnerClass.untrusted || runnerClass.sandboxed;
}

function checkCaches(
  caches: CacheConfig[],
  issue: (path: (string | number)[], message: string) => void,
): void {
  const names = new Map<string, number>();
  const paths = new Map<string, number>();
  const tools = new Map<CacheTool, number>();
  caches.forEach((cacheConfig, index) => {
    const firstName = names.get(cacheConfig.name);
    if (firstName !== undefined) issue(['caches', index, 'name'], `duplicates caches[${firstName}].name`);
    else names.set(cacheConfig.name, index);

    const path = cacheMountPath(cacheConfig);
    const firstPath = paths.get(path);
    if (firstPath !== undefined) {
      issue(['caches', index, 'mountPath'], `duplicates caches[${firstPath}]'s mount path`);
    } else {
      paths.set(path, index);
    }
    if (
      path === RUNNER_WORK_DIR ||
      path.startsWith(`${RUNNER_WORK_DIR}/`) ||
      RUNNER_WORK_DIR.startsWith(`${path}/`)
    ) {
      issue(['caches', index, 'mountPath'], `must not overlap the work folder ${RUNNER_WORK_DIR}`);
    }

    for (const tool of new Set(cacheConfig.tools)) {
      const firstTool = tools.get(tool);
      if (firstTool !== undefined) {
        issue(['caches', index, 'tools'], `${tool} is already served by caches[${firstTool}]`);
      } else {
        tools.set(tool, index);
      }
    }
  });
}

function checkClasses(classes: Record<string, RunnerClass>, ctx: Ctx): void {
  const issue = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: 'custom', path, message });
  const names = Object.keys(classes).sort();

  for (const name of names) {
    if (!isDnsLabel(name)) {
      issue([name], 'class names must be DNS-1123 labels (lowercase letters, digits and "-", at most 63)');
    }
  }

  // A job of one trust only goes to a class of that trust, so an untrusted class may repeat a trusted
  // class's labels; two classes of the same trust with the same set could not be told apart.
  const byLabels = new Map<string, string>();
  const bySelector = new Map<string, string>();
  for (const name of names) {
    const runnerClass = classes[name];
    if (!runnerClass) continue;
    const github = runnerClass.match.github;
    if (github) {
      const key = `${runnerClass.untrusted}\n${canonicalLabelSet(github.labels).join('\n')}`;
      const other = byLabels.get(key);
      if (other)
        issue(
          [name, 'match', 'github', 'labels'],
          `same label set as class ${other}: jobs would be ambiguous`,
        );
      else byLabels.set(key, name);
    }
    const tekton = runnerClass.match.tekton;
    if (tekton && !runnerClass.untrusted) {
      const key = canonicalSelector(tekton);
      const other = bySelector.get(key);
      if (other) issue([name, 'match', 'tekton'], `same selector as class ${other}: runs would be ambiguous`);
      else bySelector.set(key, name);
    }
  }
  checkTiersApart(classes, names, issue);
  checkTrustedOnlyClaims(classes, names, issue);
}

/**
 * GitHub hands a queued job to any idle runner whose labels cover it and whose runner group (or,
 * scope repo, repository) admits the job's repository, whatever Gantry planned; a fork author writes
 * the labels. So the sandbox tier and the trusted tier must not share a runner group or a repository
 * scope on GitHub's side, nor a namespace (quota, NetworkPolicy, caches) on the cluster's.
 */
function checkTiersApart(
  classes: Record<string, RunnerClass>,
  names: readonly string[],
  issue: (path: (string | number)[], message: string) => void,
): void {
  const github = names.flatMap((name) => {
    const runnerClass = classes[name];
    return runnerClass?.match.github ? [{ name, runnerClass }] : [];
  });
  const trusted = github.filter(({ runnerClass }) => !isSandboxTier(runnerClass));
  const what = (runnerClass: RunnerClass) => (runnerClass.untrusted ? 'an untrusted' : 'a sandboxed');
  for (const { name, runnerClass } of github.filter((c) => isSandboxTier(c.runnerClass))) {
    const sameNamespace = trusted.find((c) => c.runnerClass.namespace === runnerClass.namespace);
    if (sameNamespace) {
      issue(
        [name, 'namespace'],
        `${runnerClass.namespace} is also the namespace of trusted class ${sameNamespace.name}: ` +
          `${what(runnerClass)} class needs a namespace of its own (quota, network policy and caches ` +
          'would be shared)',
      );
    }
    if (runnerClass.scope === 'org') {
      const group = runnerClass.runnerGroup.toLowerCase();
      const sameGroup = trusted.find(
        (c) => c.runnerClass.scope === 'org' && c.runnerClass.runnerGroup.toLowerCase() === group,
      );
      if (sameGroup) {
        issue(
          [name, 'runnerGroup'],
          `"${runnerClass.runnerGroup}" is also the runner group of trusted class ${sameGroup.name}: GitHub ` +
            'gives a job to any idle runner of a group that admits its repository, so untrusted jobs would ' +
            `reach ${sameGroup.name}'s runners; ${what(runnerClass)} class needs a runner group of its own`,
        );
      }
    } else {
      const repoScoped = trusted.find((c) => c.runnerClass.scope === 'repo');
      if (repoScoped) {
        issue(
          [name, 'scope'],
          `repo, like trusted class ${repoScoped.name}: both would register runners in the same ` +
            'repositories, where GitHub gives a job to any idle runner; use scope org with a runner group ' +
            'of its own',
        );
      }
    }
  }
}

/** A trusted-only class's cache holds release material: no other class may mount its claim. */
function checkTrustedOnlyClaims(
  classes: Record<string, RunnerClass>,
  names: readonly string[],
  issue: (path: (string | number)[], message: string) => void,
): void {
  const users = new Map<string, string[]>();
  for (const name of names) {
    const runnerClass = classes[name];
    for (const cacheConfig of runnerClass?.caches ?? []) {
      if (cacheConfig.type !== 'persistentVolumeClaim' || !runnerClass) continue;
      const claim = `${runnerClass.namespace}/${cacheConfig.claimName}`;
      users.set(claim, [...new Set([...(users.get(claim) ?? []), name])]);
    }
  }
  for (const [claim, sharing] of users) {
    if (sharing.length < 2) continue;
    for (const name of sharing.filter((n) => classes[n]?.trustedOnly)) {
      const index = classes[name]?.caches.findIndex(
        (c) => c.type === 'persistentVolumeClaim' && claim.endsWith(`/${c.claimName}`),
      );
      issue(
        [name, 'caches', index ?? 0, 'claimName'],
        `claim ${claim} is shared with ${sharing.filter((n) => n !== name).join(', ')}: a trusted-only ` +
          'class may not share a cache claim with another class',
      );
    }
  }
}

/** GitHub compares runner labels case-insensitively; order and repeats do not matter. */
export function canonicalLabelSet(labels: readonly string[]): string[] {
  return [...new Set(labels.map((label) => label.toLowerCase()))].sort();
}

/** Two classes with the same labels but apart in namespaces select different runs. */
function canonicalSelector(selector: TektonSelector): string {
  const labels = Object.entries(selector.matchLabels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const expressions = selector.matchExpressions
    .map((e) => `${e.key} ${e.operator} ${[...new Set(e.values)].sort().join(',')}`)
    .sort();
  return JSON.stringify([labels, expressions, [...selector.namespaces].sort()]);
}

/** The pod volume of a cache. */
export function cacheVolumeName(cacheConfig: CacheConfig): string {
  return `cache-${cacheConfig.name}`;
}

/** Where a cache is mounted in the runner container. */
export function cacheMountPath(cacheConfig: CacheConfig): string {
  return cacheConfig.mountPath ?? `/caches/${cacheConfig.name}`;
}
