/**
 * The Helm chart's values schema, generated: the `config:` key is Gantry's own configuration schema
 * (src/config/schema.ts) and the other keys are the chart's, described here. Run
 * `node hack/chart/values-schema.ts` after changing either; a unit test fails while
 * chart/values.schema.json differs from what this prints.
 */
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { classesSchema } from '../../src/classes/schema.ts';
import { configSchema } from '../../src/config/schema.ts';
import { isDnsLabel, isDnsSubdomain, isLabelValue, isQualifiedName } from '../../src/model/kube-names.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const VALUES_SCHEMA_PATH = resolve(repoRoot, 'chart/values.schema.json');

// ── Patterns the JSON schema uses where Gantry checks with a function ─────────────────────────────

const DNS_LABEL_PART = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
export const PATTERNS = {
  dnsLabel: `^${DNS_LABEL_PART}$`,
  /** A DNS label of at most 63 characters, the length in the pattern itself. */
  classNameLabel: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$',
  dnsSubdomain: `^${DNS_LABEL_PART}(\\.${DNS_LABEL_PART})*$`,
  labelValue: '^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$',
  qualifiedName: `^(${DNS_LABEL_PART}(\\.${DNS_LABEL_PART})*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`,
  quantity: '^\\s*\\+?(\\d+(\\.\\d*)?|\\.\\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][-+]?\\d+)?\\s*$',
  duration: '^\\s*(\\d+h(\\d+m)?(\\d+s)?|\\d+m(\\d+s)?|\\d+s)\\s*$',
} as const;

/** JSON-schema keywords standing in for each naming check of src/model/kube-names.ts. */
const NAME_CHECKS = new Map<unknown, Record<string, unknown>>([
  [isDnsLabel, { pattern: PATTERNS.dnsLabel, maxLength: 63 }],
  [isDnsSubdomain, { pattern: PATTERNS.dnsSubdomain, maxLength: 253 }],
  [isLabelValue, { pattern: PATTERNS.labelValue, maxLength: 63 }],
  [isQualifiedName, { pattern: PATTERNS.qualifiedName, maxLength: 317 }],
]);

// ── The chart's own keys ─────────────────────────────────────────────────────────────────────────
// No defaults here: values.yaml holds them, and the schema judges the merged values.

const dnsLabel = z.string().regex(new RegExp(PATTERNS.dnsLabel)).max(63);
const dnsSubdomain = z.string().regex(new RegExp(PATTERNS.dnsSubdomain)).max(253);
const quantity = z.union([z.string().regex(new RegExp(PATTERNS.quantity)), z.number().min(0)]);
const stringMap = z.record(z.string(), z.string());
const labels = z.record(z.string().regex(new RegExp(PATTERNS.qualifiedName)), z.string());
/** Kubernetes structures passed through as written; the apiserver validates them. */
const kubeObject = z.record(z.string(), z.unknown());
const cidr = z.union([z.cidrv4(), z.cidrv6()]);

const secretRef = (purpose: string, defaultKey: string) =>
  z
    .strictObject({
      existingSecret: z
        .union([z.literal(''), dnsSubdomain])
        .optional()
        .describe(`Name of an existing Secret in the release namespace holding ${purpose}; empty: none.`),
      key: z
        .string()
        .regex(/^[-._a-zA-Z0-9]*$/)
        .optional()
        .describe(`Key in that Secret (default ${defaultKey}).`),
    })
    .optional();

const namespaceSettings = z
  .strictObject({
    labels: labels.optional().describe('Extra labels of the namespace (Pod Security labels are set).'),
    podSecurity: z
      .enum(['restricted', 'baseline', 'privileged'])
      .optional()
      .describe(
        'Pod Security level the namespace enforces (warn and audit stay restricted); restricted for the sandbox tier.',
      ),
    resourceQuota: z
      .strictObject({
        enabled: z.boolean().optional(),
        hard: z
          .record(z.string().regex(new RegExp(PATTERNS.qualifiedName)), quantity)
          .optional()
          .describe('ResourceQuota spec.hard, e.g. pods, requests.cpu, limits.memory.'),
      })
      .optional()
      .describe('A ResourceQuota capping all runner pods of the namespace; Gantry plans within it.'),
    limitRange: z
      .strictObject({
        enabled: z.boolean().optional(),
        limits: z.array(kubeObject).optional().describe('LimitRange spec.limits, as in Kubernetes.'),
      })
      .optional()
      .describe('A LimitRange with defaults and bounds for containers of the namespace.'),
    networkPolicy: z
      .strictObject({
        enabled: z.boolean().optional(),
        allowedCIDRs: z.array(cidr).optional().describe('Egress destinations runner pods may reach.'),
        deniedCIDRs: z
          .array(cidr)
          .optional()
          .describe(
            'Carved out of allowedCIDRs of the same family: private, link-local and special ranges, NAT64.',
          ),
        clusterCIDRs: z
          .array(cidr)
          .optional()
          .describe(
            'The cluster’s pod and service ranges deniedCIDRs do not cover (IPv6 global unicast, public ' +
              'IPv4 used privately); denied alike.',
          ),
        dns: z
          .strictObject({
            enabled: z.boolean().optional(),
            namespace: dnsLabel.optional().describe('Namespace of the cluster DNS pods.'),
            podLabels: labels.optional().describe('Labels of the cluster DNS pods.'),
            nodeLocal: z
              .strictObject({
                enabled: z.boolean().optional(),
                address: z
                  .union([z.ipv4(), z.ipv6()])
                  .optional()
                  .describe('Where NodeLocal DNSCache listens on every node (169.254.20.10).'),
              })
              .optional()
              .describe('Egress to NodeLocal DNSCache on port 53.'),
          })
          .optional()
          .describe('Egress to the cluster DNS on port 53 (it lives in a denied range).'),
        extraEgress: z
          .array(kubeObject)
          .optional()
          .describe('More NetworkPolicy egress rules, e.g. to an in-cluster cache proxy.'),
      })
      .optional()
      .describe('Egress of runner pods: internet yes, cluster and metadata endpoints no; no ingress.'),
  })
  .optional();

/** Prometheus durations as rules and ServiceMonitors take them: 30s, 15m, 1h30m. */
const promDuration = z.string().regex(/^(0|([0-9]+(ms|s|m|h|d|w|y))+)$/);
const monitoringToggle = z
  .union([z.literal('auto'), z.boolean()])
  .optional()
  .describe('auto: when the cluster serves monitoring.coreos.com/v1; true: always; false: never.');
const alert = <T extends z.core.$ZodLooseShape>(shape: T) =>
  z
    .strictObject({
      enabled: z.boolean().optional(),
      for: promDuration.optional().describe('How long the condition holds before the alert fires.'),
      severity: z.string().min(1).optional().describe('The severity label of the alert.'),
      ...shape,
    })
    .optional();

const metricsSettings = z
  .strictObject({
    serviceMonitor: z
      .strictObject({
        enabled: monitoringToggle,
        labels: labels.optional().describe('Extra labels, e.g. what serviceMonitorSelector picks.'),
        interval: z.union([z.literal(''), promDuration]).optional(),
        scrapeTimeout: z.union([z.literal(''), promDuration]).optional(),
      })
      .optional()
      .describe('A Prometheus Operator ServiceMonitor for the Service.'),
    prometheusRule: z
      .strictObject({
        enabled: monitoringToggle,
        labels: labels.optional(),
        selector: z
          .string()
          .optional()
          .describe('PromQL label matchers of this install’s series; default: its job and namespace.'),
        alertLabels: labels.optional().describe('Added to every alert.'),
        alerts: z
          .strictObject({
            queueTime: alert({
              quantile: z.number().gt(0).lt(1).optional(),
              objectiveSeconds: z.number().positive().optional().describe('Objective of every class.'),
              classes: z
                .record(z.string().regex(new RegExp(PATTERNS.classNameLabel)), z.number().positive())
                .optional()
                .describe('Objective seconds per class, over objectiveSeconds.'),
              window: promDuration.optional(),
            }),
            runnersStuckStarting: alert({ window: promDuration.optional() }),
            rateLimit: alert({ remainingRatio: z.number().gt(0).lt(1).optional() }),
            quotaLimited: alert({}),
            runnerStartFailures: alert({
              threshold: z.number().min(0).optional().describe('Failed starts per window tolerated.'),
              window: promDuration.optional(),
            }),
            runnersLost: alert({
              threshold: z.number().min(0).optional().describe('Runners lost mid-job per window tolerated.'),
              window: promDuration.optional(),
            }),
            trustViolation: alert({ window: promDuration.optional() }),
            webhookSignatureFailures: alert({
              threshold: z.number().min(0).optional().describe('Failures per window tolerated.'),
              window: promDuration.optional(),
            }),
          })
          .optional(),
      })
      .optional()
      .describe('A Prometheus Operator PrometheusRule with Gantry’s alerts.'),
    dashboard: z
      .strictObject({
        enabled: z.boolean().optional(),
        namespace: z
          .union([z.literal(''), dnsLabel])
          .optional()
          .describe('Default: the release namespace.'),
        labels: labels.optional().describe('Labels Grafana’s dashboard sidecar looks for.'),
        annotations: stringMap.optional(),
      })
      .optional()
      .describe('The Grafana dashboard in a ConfigMap.'),
  })
  .optional();

const tektonSettings = z
  .strictObject({
    webhook: z
      .strictObject({
        failurePolicy: z
          .enum(['Ignore', 'Fail'])
          .optional()
          .describe('When Gantry does not answer: Ignore creates the PipelineRun unqueued; Fail refuses it.'),
        timeoutSeconds: z
          .int()
          .min(1)
          .max(30)
          .optional()
          .describe('Seconds the apiserver waits for Gantry’s answer.'),
        certManager: z
          .strictObject({
            enabled: z
              .boolean()
              .optional()
              .describe(
                'cert-manager issues the serving certificate (the default); false: Gantry makes its own.',
              ),
          })
          .optional(),
      })
      .optional()
      .describe('The MutatingWebhookConfiguration through which Gantry holds new PipelineRuns.'),
  })
  .optional();

export const chartValuesSchema = z.strictObject({
  nameOverride: z.string().max(63).optional(),
  fullnameOverride: z.string().max(63).optional(),
  image: z
    .strictObject({
      repository: z.string().min(1).optional(),
      tag: z.string().optional().describe('Default: the chart appVersion.'),
      digest: z
        .string()
        .regex(/^(sha256:[a-f0-9]{64})?$/)
        .optional()
        .describe('Pins the image by digest; wins over tag.'),
      pullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
    })
    .optional(),
  imagePullSecrets: z.array(z.strictObject({ name: dnsSubdomain })).optional(),
  replicaCount: z
    .int()
    .min(0)
    .optional()
    .describe('Controller replicas; above 1 the chart turns on leader election.'),
  resources: z
    .strictObject({
      requests: z.strictObject({ cpu: quantity, memory: quantity }),
      limits: z.strictObject({ cpu: quantity.optional(), memory: quantity }),
    })
    .optional()
    .describe('Controller container resources; requests and a memory limit are required.'),
  podAnnotations: stringMap.optional(),
  podLabels: labels.optional(),
  nodeSelector: stringMap.optional(),
  tolerations: z.array(kubeObject).optional(),
  affinity: kubeObject.optional(),
  priorityClassName: z.union([z.literal(''), dnsSubdomain]).optional(),
  serviceAccount: z
    .strictObject({
      name: z
        .union([z.literal(''), dnsSubdomain])
        .optional()
        .describe('Default: the release fullname.'),
      annotations: stringMap.optional().describe('e.g. a workload-identity binding.'),
    })
    .optional(),
  service: z
    .strictObject({
      type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer']).optional(),
      port: z.int().min(1).max(65535).optional(),
      annotations: stringMap.optional(),
    })
    .optional(),
  webhookService: z
    .strictObject({
      type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer']).optional(),
      port: z.int().min(1).max(65535).optional(),
      annotations: stringMap.optional(),
    })
    .optional()
    .describe('The Service of GitHub’s webhook listener alone, the one to publish.'),
  networkPolicy: z
    .strictObject({
      enabled: z.boolean().optional(),
      httpFrom: z
        .array(kubeObject)
        .optional()
        .describe('NetworkPolicy peers that may reach health, metrics and the status page; empty: anyone.'),
      webhookFrom: z
        .array(kubeObject)
        .optional()
        .describe('NetworkPolicy peers that may reach GitHub’s webhook listener; empty: anyone.'),
    })
    .optional()
    .describe('A NetworkPolicy for Gantry’s own pods.'),
  podDisruptionBudget: z
    .strictObject({
      enabled: z.boolean().optional(),
      maxUnavailable: z.union([z.int().min(0), z.string().regex(/^\d+%$/)]).optional(),
    })
    .optional(),
  secrets: z
    .strictObject({
      githubAuth: secretRef(
        'the GitHub App private key (auth kind app) or the token (kind token)',
        'private-key.pem or token',
      ),
      webhook: secretRef('the GitHub webhook secret', 'webhook-secret'),
    })
    .optional()
    .describe('Existing Secrets mounted as files; the chart sets the matching *Path keys of config.'),
  runnerNamespaces: z
    .strictObject({
      create: z
        .boolean()
        .optional()
        .describe('Create the class namespaces, labelled Pod Security restricted; false: they exist.'),
      podSecurityConfirmed: z
        .boolean()
        .optional()
        .describe(
          'With create false: you labelled every runner namespace Pod Security restricted (enforce); ' +
            'rendering fails without it.',
        ),
      defaults: namespaceSettings.describe('Settings of every runner namespace.'),
      overrides: z
        .record(dnsLabel, namespaceSettings.unwrap())
        .optional()
        .describe('Per namespace, merged over defaults.'),
    })
    .optional(),
  tekton: tektonSettings.describe('The chart’s side of the Tekton queue (on with config.tekton.enabled).'),
  metrics: metricsSettings.describe('Prometheus Operator objects and the Grafana dashboard.'),
  config: configSchema
    .optional()
    .describe(
      'Gantry’s configuration (see src/config/), rendered into the ConfigMap as written. ' +
        'The chart fills github.auth.privateKeyPath/tokenPath and github.webhook.secretPath from secrets, ' +
        'and tekton.webhook.tls from the objects it creates.',
    ),
});

// ── Generation ───────────────────────────────────────────────────────────────────────────────────

type JsonSchema = Record<string, unknown>;

/**
 * What zod cannot express in JSON schema on its own: checks written as functions. Naming checks are
 * recognised by the function itself; quantities and durations (unions of string and number turned
 * into one type) by what they accept.
 */
function addCheckKeywords(ctx: { zodSchema: z.core.$ZodTypes; jsonSchema: JsonSchema }): void {
  const { zodSchema, jsonSchema } = ctx;
  if (zodSchema === classesSchema) {
    // Names outside the pattern fall to additionalProperties: false. (propertyNames would give a
    // better reason, but Helm's validator reports it at an unrelated path.)
    const { additionalProperties: classSchema, propertyNames: _, ...rest } = jsonSchema;
    for (const key of Object.keys(jsonSchema)) delete jsonSchema[key];
    Object.assign(jsonSchema, rest, {
      patternProperties: { [PATTERNS.classNameLabel]: classSchema },
      additionalProperties: false,
    });
    return;
  }
  for (const check of zodSchema._zod.def.checks ?? []) {
    const def = check._zod.def;
    if (def.check !== 'custom' || !('fn' in def)) continue;
    const keywords = NAME_CHECKS.get(def.fn);
    if (keywords) Object.assign(jsonSchema, keywords);
  }
  // Quantities and durations: a union of string and number piped into one type.
  const branches = jsonSchema.anyOf;
  if (zodSchema._zod.def.type !== 'pipe' || !Array.isArray(branches) || branches.length !== 2) return;
  const string = branches.find((b: JsonSchema) => b.type === 'string' && Object.keys(b).length === 1);
  const number = branches.find((b: JsonSchema) => b.type === 'number' && Object.keys(b).length === 1);
  if (!string || !number) return;
  const accepts = (value: unknown) => z.safeParse(zodSchema, value).success;
  if (accepts('1h30m') && !accepts(-1) && !accepts('soon')) {
    string.pattern = PATTERNS.duration;
    number.minimum = 0;
  } else if (accepts('4Gi') && accepts('500m') && !accepts('-1') && !accepts(-1)) {
    string.pattern = PATTERNS.quantity;
    number.minimum = 0;
  }
}

/** chart/values.schema.json as it should be, ending with a newline. */
export function renderValuesSchema(): string {
  const schema = z.toJSONSchema(chartValuesSchema, {
    io: 'input',
    target: 'draft-2020-12',
    unrepresentable: 'throw',
    override: addCheckKeywords,
  });
  const document = {
    $schema: schema.$schema,
    title: 'Gantry Helm chart values',
    description: 'Generated by hack/chart/values-schema.ts from src/config/schema.ts; do not edit.',
    ...schema,
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(VALUES_SCHEMA_PATH, renderValuesSchema());
  process.stdout.write(`wrote ${VALUES_SCHEMA_PATH}\n`);
}
