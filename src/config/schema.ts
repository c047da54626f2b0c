import { z } from 'zod';
import { dnsLabel, dnsSubdomain } from '../classes/fields.ts';
import { classesSchema, isSandboxTier, type RunnerClasses } from '../classes/schema.ts';
import { type GithubConfig, githubConfigSchema } from '../sources/github/config.ts';
import { tektonConfigSchema } from '../sources/tekton/config.ts';

/**
 * Gantry's configuration: the daemon's config file and, rendered from them, the Helm values.
 * Every field has a default so an empty file is a valid configuration; unknown keys are refused
 * so a typo never silently falls back to a default.
 */
export const configSchema = z
  .strictObject({
    github: githubConfigSchema.prefault({}),
    tekton: tektonConfigSchema,
    classes: classesSchema,
    controller: z
      .strictObject({
        startTimeoutSeconds: z
          .int()
          .positive()
          .default(600)
          .describe(
            'A runner pod not Running this long after it was scheduled (or created) is stuck, and replaced.',
          ),
        capacityTimeoutSeconds: z
          .int()
          .positive()
          .default(1800)
          .describe(
            'A runner pod no node fits (Pending, PodScheduled=False with reason Unschedulable) waits this long ' +
              'from its creation for a node autoscaler to add one, counted as waiting for capacity; then it ' +
              'is stuck, and replaced. At least startTimeoutSeconds.',
          ),
        deadlineGraceSeconds: z
          .int()
          .min(0)
          .default(60)
          .describe(
            'Beyond a class’s activeDeadlineSeconds, how long a busy runner may still run before it is stuck.',
          ),
        reconcilePeriodSeconds: z
          .number()
          .positive()
          .default(1)
          .describe('Longest time between two planning passes (changes trigger one sooner).'),
        concurrency: z
          .int()
          .positive()
          .default(64)
          .describe(
            'Most runner creations and removals under way at once. The limit adapts below it: it starts ' +
              'at 8 (or this, if lower), grows while work waits and the apiserver answers about as fast ' +
              'with more writes in flight, is taken back when latency rises with it, and halves on 429, ' +
              '5xx and timeouts.',
          ),
      })
      .prefault({})
      .superRefine((controller, ctx) => {
        if (controller.capacityTimeoutSeconds < controller.startTimeoutSeconds) {
          ctx.addIssue({
            code: 'custom',
            path: ['capacityTimeoutSeconds'],
            message: `expected at least controller.startTimeoutSeconds (${controller.startTimeoutSeconds}): a pod waiting for a node is not stuck sooner than one starting`,
          });
        }
      }),
    warmPools: z
      .strictObject({
        configMap: z
          .strictObject({
            name: dnsSubdomain
              .default('gantry-warm-pools')
              .describe('ConfigMap where the arrivals learned for warm pools are kept across restarts.'),
            namespace: dnsLabel
              .optional()
              .describe(
                'Its namespace; by default the namespace Gantry runs in (POD_NAMESPACE or the service account’s).',
              ),
          })
          .prefault({}),
        saveIntervalSeconds: z
          .int()
          .min(10)
          .default(300)
          .describe('How often the leader writes what it learned (also at each hour’s end and at shutdown).'),
      })
      .prefault({})
      .describe('Where classes with a warmPool objective keep the arrivals they learn (hour of week, UTC).'),
    trace: z
      .strictObject({
        recentJobs: z
          .int()
          .min(0)
          .max(1_000_000)
          .default(10_000)
          .describe(
            'GitHub jobs Gantry keeps a trace line of once they ended, served at GET /api/trace for ' +
              '`gantry trace export --gantry` (about 300 bytes each); 0: none.',
          ),
      })
      .prefault({})
      .describe('Gantry’s own record of the jobs it saw, for gantry simulate.'),
    kubernetes: z
      .strictObject({
        requestTimeoutSeconds: z
          .number()
          .positive()
          .default(15)
          .describe('Upper bound of one Kubernetes API request (watches excepted).'),
      })
      .prefault({}),
    http: z
      .strictObject({
        address: z.string().min(1).default('0.0.0.0').describe('Address the HTTP server listens on.'),
        port: z
          .int()
          .min(0)
          .max(65535)
          .default(8080)
          .describe(
            'Port for health, readiness, metrics and the status page (not GitHub’s webhook: github.webhook.port).',
          ),
      })
      .prefault({}),
    election: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe(
            'Lease-based leader election, for two or more replicas: one plans and acts, the others stand by.',
          ),
        namespace: z
          .string()
          .min(1)
          .optional()
          .describe(
            'Namespace of the Lease; by default the namespace Gantry runs in (POD_NAMESPACE or the service account’s).',
          ),
        leaseName: z.string().min(1).default('gantry-leader').describe('Name of the Lease.'),
        leaseDurationSeconds: z
          .number()
          .positive()
          .default(15)
          .describe('How long a stopped leader blocks the others before they take over.'),
        renewDeadlineSeconds: z
          .number()
          .positive()
          .default(10)
          .describe('A leader that could not renew its lease for this long stops acting.'),
        retryPeriodSeconds: z
          .number()
          .positive()
          .default(2)
          .describe('Time between two attempts to acquire or renew the lease.'),
      })
      .prefault({})
      .superRefine((election, ctx) => {
        if (election.renewDeadlineSeconds >= election.leaseDurationSeconds) {
          ctx.addIssue({
            code: 'custom',
            path: ['renewDeadlineSeconds'],
            message: `must be less than election.leaseDurationSeconds (${election.leaseDurationSeconds})`,
          });
        }
        if (election.retryPeriodSeconds >= election.renewDeadlineSeconds) {
          ctx.addIssue({
            code: 'custom',
            path: ['retryPeriodSeconds'],
            message: `must be less than election.renewDeadlineSeconds (${election.renewDeadlineSeconds})`,
          });
        }
      }),
    shutdownTimeoutSeconds: z
      .number()
      .positive()
      .default(20)
      .describe(
        'On SIGTERM, how long Gantry may finish the work in flight and release its lease before it exits anyway (code 1).',
      ),
    log: z
      .strictObject({
        level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .default('info')
          .describe('Lowest level that is logged.'),
      })
      .prefault({}),
  })
  .superRefine((config, ctx) => {
    const webhookPort = config.github.webhook.port;
    if (
      webhookPort !== 0 &&
      (webhookPort === config.http.port || webhookPort === config.tekton.webhook.port)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['github', 'webhook', 'port'],
        message: `${webhookPort} is taken by ${webhookPort === config.http.port ? 'http.port' : 'tekton.webhook.port'}: the webhook listener needs a port of its own`,
      });
    }
    if (config.github.trust.publicRepositories === 'trusted') {
      for (const [name, runnerClass] of Object.entries(config.classes)) {
        if (runnerClass.match.github && runnerClass.scope === 'repo' && !isSandboxTier(runnerClass)) {
          ctx.addIssue({
            code: 'custom',
            path: ['github', 'trust', 'publicRepositories'],
            message:
              `trusted would register class ${name}'s runners (scope repo) in public repositories, whose ` +
              'fork pull requests can take them; mark the class sandboxed or keep public repositories untrusted',
          });
        }
      }
    }
    // The webhook sees runs of tekton.namespaces only: a class bound elsewhere would never get one.
    if (config.tekton.namespaces.length > 0) {
      for (const [name, runnerClass] of Object.entries(config.classes)) {
        (runnerClass.match.tekton?.namespaces ?? []).forEach((namespace, index) => {
          if (config.tekton.namespaces.includes(namespace)) return;
          ctx.addIssue({
            code: 'custom',
            path: ['classes', name, 'match', 'tekton', 'namespaces', index],
            message: `${namespace} is not among tekton.namespaces (${config.tekton.namespaces.join(', ')}): its runs never reach Gantry`,
          });
        });
      }
    }
    if (config.github.enabled && config.github.mode === 'scaleSets') checkScaleSets(config, ctx);
    if (!config.github.enabled || config.github.runners.org) return;
    for (const [name, runnerClass] of Object.entries(config.classes)) {
      if (runnerClass.scope === 'org' && runnerClass.match.github) {
        ctx.addIssue({
          code: 'custom',
          path: ['github', 'runners', 'org'],
          message: `required: class ${name} registers its runners in the organisation (scope org)`,
        });
        return;
      }
    }
  });

export type Config = z.output<typeof configSchema>;

/**
 * Scale sets belong to an organisation, one per class: a repository-scoped class would need a scale
 * set (and a session) per repository, and the names must be told apart by GitHub.
 */
function checkScaleSets(
  config: { github: GithubConfig; classes: RunnerClasses },
  ctx: z.RefinementCtx,
): void {
  const { scaleSets, runners } = config.github;
  if (!runners.org) {
    ctx.addIssue({
      code: 'custom',
      path: ['github', 'runners', 'org'],
      message: 'required with github.mode scaleSets: scale sets belong to an organisation',
    });
  }
  const seen = new Map<string, string>();
  for (const [name, runnerClass] of Object.entries(config.classes)) {
    if (!runnerClass.match.github) continue;
    if (runnerClass.scope !== 'org') {
      ctx.addIssue({
        code: 'custom',
        path: ['classes', name, 'scope'],
        message:
          'expected org with github.mode scaleSets: a scale set belongs to the organisation (one per ' +
          'repository would need a session each)',
      });
    }
    const scaleSet = (scaleSets.names[name] ?? `${runners.namePrefix}-${name}`).toLowerCase();
    const other = seen.get(scaleSet);
    if (other) {
      ctx.addIssue({
        code: 'custom',
        path: ['github', 'scaleSets', 'names', name],
        message: `scale set name ${scaleSet} is class ${other}'s too: each class needs a scale set of its own`,
      });
    }
    seen.set(scaleSet, name);
  }
  for (const name of Object.keys(scaleSets.names)) {
    if (!config.classes[name]?.match.github) {
      ctx.addIssue({
        code: 'custom',
        path: ['github', 'scaleSets', 'names', name],
        message: `no class ${name} serves GitHub jobs`,
      });
    }
  }
}
