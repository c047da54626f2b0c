import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { type App, createApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import {
  applyAll,
  CHART_DIR,
  type ChartObject,
  helm,
  KUBE_VERSION,
  manifests,
  objectsOfKind,
  readValues,
  render,
  valuesFile,
} from '../support/chart.ts';
import { controlPlaneBinDir } from '../support/control-plane/binaries.ts';
import { appKeys, FakeGithub, fakeGithubConfig } from '../support/fake-github/index.ts';
import { createTestNamespace, deleteNamespace, testKubeConfig, until } from '../support/kube.ts';

// The chart's monitoring parts: the PrometheusRule's rules and the dashboard's queries are checked by
// promtool and against the metric names a real running Gantry exposes, and the Prometheus Operator
// objects are created in the control plane under the operator's own CRDs.

const kc = testKubeConfig();
const kubeconfig = inject('kubeconfig');
const FIELD_MANAGER = 'gantry-chart-monitoring-test';
const binDir = controlPlaneBinDir();
/** Built by hack/control-plane/build.sh; optional in a GANTRY_BIN_DIR folder. */
const PROMTOOL = join(binDir, 'promtool');
const CRD_DIR = join(binDir, 'crds');
const NO_PROMTOOL = `no promtool in ${binDir} (GANTRY_BIN_DIR folders may leave it out)`;
const DASHBOARD = readFileSync(join(CHART_DIR, 'dashboards/gantry.json'), 'utf8');
const MONITORING_API = 'monitoring.coreos.com/v1';
const SECRET = 'monitoring-webhook-secret';
const APP_ID = 779;

/** Every monitoring part switched on, with a per-class objective to exercise the override path. */
const MONITORING_ON = {
  metrics: {
    serviceMonitor: { enabled: true, labels: { release: 'prometheus' } },
    prometheusRule: {
      enabled: true,
      alertLabels: { team: 'ci' },
      alerts: { queueTime: { classes: { lint: 60, release: 900 } } },
    },
    dashboard: { enabled: true },
  },
};

function renderMonitoring(extra: Record<string, unknown> = {}, namespace = 'gantry-system'): ChartObject[] {
  const values = { ...readValues('full'), ...MONITORING_ON, ...extra };
  return manifests(render({ namespace, values }));
}

/** Kinds helm renders for the given values file and settings, with the API present or not. */
function monitoringKinds(options: { apiPresent: boolean; metrics?: unknown }): string[] {
  const args = ['template', 'gantry', CHART_DIR, '--kube-version', KUBE_VERSION];
  args.push('--values', valuesFile('github'));
  if (options.apiPresent) args.push('--api-versions', MONITORING_API);
  if (options.metrics !== undefined) {
    const file = join(mkdtempSync(join(tmpdir(), 'gantry-values-')), 'values.yaml');
    writeFileSync(file, stringifyYaml({ metrics: options.metrics }));
    args.push('--values', file);
  }
  const result = helm(args);
  if (result.code !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return manifests(result.stdout)
    .filter((o) => o.apiVersion === MONITORING_API)
    .map((o) => o.kind)
    .sort();
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  annotations?: Record<string, string>;
}
interface RuleGroup {
  name: string;
  rules: Rule[];
}

function ruleGroupsOf(objects: ChartObject[]): RuleGroup[] {
  const [rule] = objectsOfKind(objects, 'PrometheusRule');
  if (!rule) throw new Error('no PrometheusRule rendered');
  return (rule.spec as { groups: RuleGroup[] }).groups;
}

/** The dashboard's PromQL, Grafana's variables replaced by what they stand for at "All". */
function dashboardQueries(): string[] {
  const dashboard = JSON.parse(DASHBOARD) as {
    panels: { targets?: { expr: string }[] }[];
    templating: { list: { query?: string | { query: string } }[] };
  };
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  const variables = dashboard.templating.list.flatMap((v) =>
    typeof v.query === 'object' ? [v.query.query] : [],
  );
  // label_values(query, label) is Grafana's; its query is PromQL.
  return [...exprs, ...variables].map((q) =>
    q
      .replace(/^label_values\((.*), \w+\)$/, '$1')
      .replaceAll('$__rate_interval', '5m')
      .replaceAll('$__range', '1d')
      .replace(/\$[a-z]+/g, '.*'),
  );
}

/** Metric names a PromQL expression reads (Gantry's are all prefixed gantry_). */
const metricNames = (expr: string) => expr.match(/\bgantry_[A-Za-z0-9_]+/g) ?? [];

function promtool(args: string[], input?: string) {
  const result = spawnSync(PROMTOOL, args, { input, encoding: 'utf8', timeout: 30_000 });
  if (result.error) throw result.error;
  return { code: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}

function writeTemp(name: string, text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gantry-monitoring-')), name);
  writeFileSync(file, text);
  return file;
}

describe('the chart’s monitoring parts, rendered', () => {
  it('renders the ServiceMonitor and PrometheusRule when the cluster serves the API, or when forced', () => {
    const both = ['PrometheusRule', 'ServiceMonitor'];
    expect(monitoringKinds({ apiPresent: false })).toEqual([]);
    expect(monitoringKinds({ apiPresent: true })).toEqual(both);
    const forced = { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true } };
    expect(monitoringKinds({ apiPresent: false, metrics: forced })).toEqual(both);
    const off = { serviceMonitor: { enabled: false }, prometheusRule: { enabled: false } };
    expect(monitoringKinds({ apiPresent: true, metrics: off })).toEqual([]);
  });

  it('ships the dashboard file unchanged in a ConfigMap Grafana’s sidecar picks up, deterministically', () => {
    const first = render({ values: { ...readValues('full'), ...MONITORING_ON } });
    expect(render({ values: { ...readValues('full'), ...MONITORING_ON } })).toBe(first);
    const dashboard = objectsOfKind(manifests(first), 'ConfigMap').find(
      (o) => o.metadata.name === 'gantry-dashboard',
    );
    expect(dashboard?.metadata.labels?.grafana_dashboard).toBe('1');
    const data = (dashboard?.data ?? {}) as Record<string, string>;
    expect(data['gantry.json']).toBe(DASHBOARD);
    const { panels } = JSON.parse(DASHBOARD) as { panels: { id: number }[] };
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
  });

  it('takes alert thresholds from values and refuses an objective for an unknown class', () => {
    const groups = ruleGroupsOf(renderMonitoring());
    const queue = groups[0]?.rules.find((r) => r.alert === 'GantryQueueTimeObjectiveMissed');
    expect(queue?.expr).toContain('class="lint"}[30m]))) > 60');
    expect(queue?.expr).toContain('class="release"}[30m]))) > 900');
    expect(queue?.expr).toContain('class!~"lint|release"}[30m]))) > 120');
    expect(groups.map((g) => g.name)).toEqual(['gantry', 'gantry-github']);
    const bad = helm([
      'template',
      'gantry',
      CHART_DIR,
      '--kube-version',
      KUBE_VERSION,
      '--values',
      valuesFile('full'),
      '--set',
      'metrics.prometheusRule.enabled=true,metrics.prometheusRule.alerts.queueTime.classes.nope=5',
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('metrics.prometheusRule.alerts.queueTime.classes.nope: no such class');
  });

  it('passes promtool check rules, the dashboard’s queries too', (ctx) => {
    if (!existsSync(PROMTOOL)) return ctx.skip(NO_PROMTOOL);
    const groups = ruleGroupsOf(renderMonitoring());
    const alerts = groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(alerts).toEqual([
      'GantryQueueTimeObjectiveMissed',
      'GantryRunnersStuckStarting',
      'GantryRunnerStartFailures',
      'GantryRunnersLostMidJob',
      'GantryClassQuotaLimited',
      'GantryGithubRateLimitNearlySpent',
      'GantryGithubRateLimited',
      'GantryTrustViolation',
      'GantryTrustPlacementUnsafe',
      'GantryWebhookSignatureFailures',
    ]);
    const rules = promtool(['check', 'rules', writeTemp('rules.yaml', stringifyYaml({ groups }))]);
    expect(rules.output).toContain(`SUCCESS: ${alerts.length} rules found`);
    expect(rules.output).not.toMatch(/FAILED|lint|error/i);
    expect(rules.code).toBe(0);
    // The dashboard's queries as recording rules, so promtool parses each one.
    const panels = dashboardQueries().map((expr, i) => ({ record: `gantry:dashboard_query_${i}`, expr }));
    const queries = promtool([
      'check',
      'rules',
      writeTemp('dashboard.yaml', stringifyYaml({ groups: [{ name: 'dashboard', rules: panels }] })),
    ]);
    expect(queries.output).toContain(`SUCCESS: ${panels.length} rules found`);
    expect(queries.code).toBe(0);
  });
});

/** promtool compares annotations too: the rule's own, with the alert's labels filled in. */
function annotationsOf(groups: RuleGroup[], alert: string, labels: Record<string, string>) {
  const rule = groups.flatMap((g) => g.rules).find((r) => r.alert === alert);
  return Object.fromEntries(
    Object.entries(rule?.annotations ?? {}).map(([key, text]) => [
      key,
      text.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_m, name: string) => labels[name] ?? ''),
    ]),
  );
}

describe('the trust alerts, in promtool’s rule tests', () => {
  it('fires on a stopped trust violation at once, and not on a trusted job on a sandbox runner', (ctx) => {
    if (!existsSync(PROMTOOL)) return ctx.skip(NO_PROMTOOL);
    const groups = ruleGroupsOf(renderMonitoring());
    const rulesFile = writeTemp('rules.yaml', stringifyYaml({ groups }));
    const annotations = (alert: string, labels: Record<string, string>) =>
      annotationsOf(groups, alert, labels);
    // The series as the ServiceMonitor's scrape labels them (job and namespace select this install).
    const series = (labels: string) =>
      `gantry_trust_violations_total{job="gantry",namespace="gantry-system",${labels}}`;
    const tests = {
      rule_files: [rulesFile],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            { series: series('class="lint",kind="untrusted-job"'), values: '0 0 1 1 1' },
            { series: series('class="sandbox",kind="trusted-job"'), values: '0 1 2 3 4' },
            {
              series: 'gantry_trust_placement_unsafe{job="gantry",namespace="gantry-system",class="lint"}',
              values: '0 0 0 1 1',
            },
          ],
          alert_rule_test: [
            { eval_time: '1m', alertname: 'GantryTrustViolation', exp_alerts: [] },
            {
              eval_time: '3m',
              alertname: 'GantryTrustViolation',
              exp_alerts: [
                {
                  exp_labels: {
                    severity: 'critical',
                    team: 'ci',
                    namespace: 'gantry-system',
                    class: 'lint',
                    kind: 'untrusted-job',
                  },
                  exp_annotations: annotations('GantryTrustViolation', {
                    class: 'lint',
                    kind: 'untrusted-job',
                  }),
                },
              ],
            },
            { eval_time: '2m', alertname: 'GantryTrustPlacementUnsafe', exp_alerts: [] },
            {
              eval_time: '4m',
              alertname: 'GantryTrustPlacementUnsafe',
              exp_alerts: [
                {
                  exp_labels: { severity: 'critical', team: 'ci', namespace: 'gantry-system', class: 'lint' },
                  exp_annotations: annotations('GantryTrustPlacementUnsafe', { class: 'lint' }),
                },
              ],
            },
          ],
        },
      ],
    };
    const result = promtool(['test', 'rules', writeTemp('trust.test.yaml', stringifyYaml(tests))]);
    expect(result.output).toContain('SUCCESS');
    expect(result.code).toBe(0);
  });
});

describe('the runner failure alerts, in promtool’s rule tests', () => {
  it('fire on runners that keep failing to start or that are lost mid-job, not on one failed pull', (ctx) => {
    if (!existsSync(PROMTOOL)) return ctx.skip(NO_PROMTOOL);
    const groups = ruleGroupsOf(renderMonitoring());
    const series = (name: string, labels: string) =>
      `${name}{job="gantry",namespace="gantry-system",${labels}}`;
    const alert = (name: string, labels: Record<string, string>) => ({
      exp_labels: { severity: 'warning', team: 'ci', namespace: 'gantry-system', ...labels },
      exp_annotations: annotationsOf(groups, name, labels),
    });
    const tests = {
      rule_files: [writeTemp('rules.yaml', stringifyYaml({ groups }))],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            // A broken image: Gantry's held retries fail about once a minute.
            {
              series: series('gantry_runner_start_failures_total', 'class="lint",reason="image-pull"'),
              values: '0+1x20',
            },
            // One registry hiccup: a single failure, below the threshold of 2.
            {
              series: series('gantry_runner_start_failures_total', 'class="build",reason="image-pull"'),
              values: '0 1x20',
            },
            {
              series: series('gantry_runners_lost_total', 'class="build",reason="node-lost"'),
              values: '0 0 0 2 2 2',
            },
            {
              series: series('gantry_runners_lost_total', 'class="lint",reason="oom-killed"'),
              values: '0x5',
            },
          ],
          alert_rule_test: [
            { eval_time: '4m', alertname: 'GantryRunnerStartFailures', exp_alerts: [] },
            {
              eval_time: '12m',
              alertname: 'GantryRunnerStartFailures',
              exp_alerts: [alert('GantryRunnerStartFailures', { class: 'lint', reason: 'image-pull' })],
            },
            { eval_time: '2m', alertname: 'GantryRunnersLostMidJob', exp_alerts: [] },
            {
              eval_time: '4m',
              alertname: 'GantryRunnersLostMidJob',
              exp_alerts: [alert('GantryRunnersLostMidJob', { class: 'build', reason: 'node-lost' })],
            },
          ],
        },
      ],
    };
    const result = promtool(['test', 'rules', writeTemp('runners.test.yaml', stringifyYaml(tests))]);
    expect(result.output).toContain('SUCCESS');
    expect(result.code).toBe(0);
  });
});

describe('the chart’s monitoring against a running Gantry', () => {
  let app: App;
  let fake: FakeGithub;
  let namespace: string;
  let scrape: string;

  beforeAll(async () => {
    namespace = await createTestNamespace(kc, 'monitoring', {
      'pod-security.kubernetes.io/enforce': 'restricted',
    });
    fake = new FakeGithub({ repos: ['acme/app'], app: { appId: APP_ID, publicKey: appKeys().publicKey } });
    await fake.start();
    const config = parseConfig({
      log: { level: 'silent' },
      http: { address: '127.0.0.1', port: 0 },
      github: fakeGithubConfig(fake, APP_ID, SECRET),
      classes: {
        lint: { namespace, match: { github: { labels: ['self-hosted', 'lint'] } }, maxRunners: 2 },
      },
    });
    app = createApp(config, { kubeConfig: kc, logger: pino({ level: 'silent' }) });
    const { url, webhookUrl } = await app.start();
    // An unsigned delivery, so the series the signature alert reads has a sample.
    const refused = await fetch(`${webhookUrl}/webhooks/github`, {
      method: 'POST',
      headers: { 'x-github-event': 'workflow_job', 'x-github-delivery': 'monitoring-1' },
      body: '{}',
    });
    expect(refused.status).toBe(401);
    await until(
      'Gantry has talked to the apiserver',
      async () => {
        scrape = await (await fetch(`${url}/metrics`)).text();
        return /^gantry_kube_requests_total\{/m.test(scrape);
      },
      30_000,
    );
  }, 60_000);

  afterAll(async () => {
    await app?.stop();
    await fake?.stop();
    if (namespace) await deleteNamespace(kc, namespace);
  });

  it('reads only metrics Gantry exports, in the rules and in the dashboard', () => {
    const exported = new Set<string>();
    for (const [, name, type] of scrape.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      if (!name) continue;
      exported.add(name);
      if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(name + s);
    }
    const exprs = [...ruleGroupsOf(renderMonitoring()).flatMap((g) => g.rules.map((r) => r.expr))];
    exprs.push(...dashboardQueries());
    for (const expr of exprs) {
      const names = metricNames(expr);
      expect(names.length, expr).toBeGreaterThan(0);
      for (const name of names) expect(exported, `${name} in ${expr}`).toContain(name);
    }
    expect(scrape).toMatch(/^gantry_github_webhook_deliveries_total\{result="unauthorized"\} 1$/m);
  });

  it('passes promtool check metrics on the scrape', (ctx) => {
    if (!existsSync(PROMTOOL)) return ctx.skip(NO_PROMTOOL);
    // The exposition itself: promtool parses every family and sample (and lists their series).
    const parsed = promtool(['check', 'metrics', '--extended', '--lint=none'], scrape);
    expect(parsed.output).not.toMatch(/error/i);
    expect(parsed.output).toMatch(/^gantry_runners\s/m);
    expect(parsed.code).toBe(0);
    // Naming lint: Gantry's own metrics pass it. prom-client's default Node.js gauges
    // gantry_process_nodejs_active_*_total (src/metrics/registry.ts) are the only findings today.
    const linted = promtool(['check', 'metrics'], scrape);
    const findings = linted.output.split('\n').filter((line) => line !== '');
    const ours = findings.filter((line) => !line.startsWith('gantry_process_nodejs_'));
    expect(ours).toEqual([]);
    // promtool exits 3 for lint findings, 0 without.
    expect(linted.code).toBe(findings.length === 0 ? 0 : 3);
  });
});

describe('the chart’s monitoring objects in a real cluster', () => {
  const namespaces: string[] = [];
  afterAll(async () => {
    await Promise.all(namespaces.map((ns) => deleteNamespace(kc, ns)));
  });

  function kubectl(args: string[], input?: string) {
    const result = spawnSync(join(binDir, 'kubectl'), ['--kubeconfig', kubeconfig, ...args], {
      input,
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (result.error) throw result.error;
    return { code: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
  }

  it('creates the ServiceMonitor, PrometheusRule and dashboard under the operator’s CRDs', async (ctx) => {
    const crds = ['servicemonitors', 'prometheusrules'];
    const missing = crds.filter((c) => kubectl(['get', 'crd', `${c}.monitoring.coreos.com`]).code !== 0);
    if (missing.length > 0) {
      // Installed only where absent: a cluster with the operator keeps its own.
      if (!existsSync(CRD_DIR)) return ctx.skip(`no prometheus-operator CRDs in ${CRD_DIR}`);
      for (const c of missing) {
        const file = join(CRD_DIR, `monitoring.coreos.com_${c}.yaml`);
        const applied = kubectl(['apply', '--server-side', `--field-manager=${FIELD_MANAGER}`, '-f', file]);
        expect(applied.output, applied.output).not.toMatch(/error/i);
      }
      const waited = kubectl([
        'wait',
        '--for=condition=Established',
        '--timeout=30s',
        ...crds.map((c) => `crd/${c}.monitoring.coreos.com`),
      ]);
      expect(waited.code, waited.output).toBe(0);
    }
    const release = await createTestNamespace(kc, 'chart-monitoring');
    namespaces.push(release);
    const objects = renderMonitoring({}, release);
    const monitoring = objects.filter(
      (o) => o.apiVersion === MONITORING_API || o.metadata.name.endsWith('-dashboard'),
    );
    expect(monitoring.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'PrometheusRule', 'ServiceMonitor']);
    // Server-side apply decodes strictly: a field the CRD's schema lacks fails here.
    applyAll(kubeconfig, monitoring, FIELD_MANAGER);
    const live = kubectl(['get', 'prometheusrule', 'gantry', '-n', release, '-o', 'yaml']);
    expect(live.code, live.output).toBe(0);
    const spec = (parseYaml(live.output) as { spec: { groups: RuleGroup[] } }).spec;
    expect(spec.groups).toEqual(ruleGroupsOf(objects));
  });
});
