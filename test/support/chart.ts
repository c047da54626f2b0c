import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments, parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { controlPlaneBinDir } from './control-plane/binaries.ts';

/** Helpers for the Helm chart's tests: helm itself (the pinned build), rendering and applying. */

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CHART_DIR = join(repoRoot, 'chart');
/** The chart's test values files, by name (chart/ci/<name>-values.yaml). */
export const VALUES_FILES = [
  'minimal',
  'github',
  'full',
  'tekton-only',
  'tekton-cert-manager',
  'scalesets',
] as const;
export type ValuesName = (typeof VALUES_FILES)[number];
/** The Kubernetes version the chart is rendered for: the test control plane's. */
export const KUBE_VERSION = '1.36.3';

export function valuesFile(name: ValuesName): string {
  return join(CHART_DIR, 'ci', `${name}-values.yaml`);
}

let helmPath: string | undefined;
function helmBinary(): string {
  helmPath ??= join(controlPlaneBinDir(), 'helm');
  return helmPath;
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs helm with no cluster and no repositories configured. */
export function helm(args: string[]): HelmResult {
  const home = mkdtempSync(join(tmpdir(), 'gantry-helm-'));
  const result = spawnSync(helmBinary(), args, {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH ?? '',
      HOME: home,
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_DATA_HOME: join(home, 'data'),
      KUBECONFIG: join(home, 'no-kubeconfig'),
    },
  });
  if (result.error) throw result.error;
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

export interface RenderOptions {
  release?: string;
  namespace?: string;
  /** Values files, in order (later wins). */
  files?: string[];
  /** Values given inline, written to a file after `files`. */
  values?: unknown;
}

function renderArgs(options: RenderOptions): string[] {
  const args = [
    'template',
    options.release ?? 'gantry',
    CHART_DIR,
    '--namespace',
    options.namespace ?? 'gantry-system',
    '--kube-version',
    KUBE_VERSION,
  ];
  for (const file of options.files ?? []) args.push('--values', file);
  if (options.values !== undefined) args.push('--values', writeValues(options.values));
  return args;
}

/** `helm template`, whatever its outcome. */
export function tryRender(options: RenderOptions = {}): HelmResult {
  return helm(renderArgs(options));
}

/** `helm template`'s manifests; throws with helm's message when it fails. */
export function render(options: RenderOptions = {}): string {
  const result = tryRender(options);
  if (result.code !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return result.stdout;
}

export function writeValues(values: unknown): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gantry-values-')), 'values.yaml');
  writeFileSync(file, stringifyYaml(values));
  return file;
}

export function readValues(name: ValuesName): Record<string, unknown> {
  return (parseYaml(readFileSync(valuesFile(name), 'utf8')) ?? {}) as Record<string, unknown>;
}

/** A rendered object with the fields the tests look at. */
export interface ChartObject extends KubernetesObject {
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

export function manifests(text: string): ChartObject[] {
  return parseAllDocuments(text)
    .map((document) => document.toJS() as ChartObject | null)
    .filter((object): object is ChartObject => object !== null);
}

export function objectsOfKind(objects: ChartObject[], kind: string): ChartObject[] {
  return objects.filter((object) => object.kind === kind);
}

/**
 * The values of a values file with every runner namespace and Tekton namespace (the queue's and the
 * classes' bindings) renamed `<name>-<suffix>`, so tests that create them for real do not collide in
 * the shared cluster.
 */
export function withNamespaceSuffix(
  values: Record<string, unknown>,
  suffix: string,
): Record<string, unknown> {
  const copy = structuredClone(values) as {
    config?: {
      classes?: Record<string, { namespace?: string; match?: { tekton?: { namespaces?: string[] } } }>;
      tekton?: { namespaces?: string[] };
    };
    runnerNamespaces?: { overrides?: Record<string, unknown> };
  };
  for (const runnerClass of Object.values(copy.config?.classes ?? {})) {
    runnerClass.namespace = `${runnerClass.namespace ?? 'gantry-runners'}-${suffix}`;
    const selector = runnerClass.match?.tekton;
    if (selector?.namespaces) selector.namespaces = selector.namespaces.map((name) => `${name}-${suffix}`);
  }
  const tekton = copy.config?.tekton;
  if (tekton?.namespaces) tekton.namespaces = tekton.namespaces.map((name) => `${name}-${suffix}`);
  const overrides = copy.runnerNamespaces?.overrides;
  if (overrides && copy.runnerNamespaces) {
    copy.runnerNamespaces.overrides = Object.fromEntries(
      Object.entries(overrides).map(([name, settings]) => [`${name}-${suffix}`, settings]),
    );
  }
  return copy as Record<string, unknown>;
}

/**
 * Creates the objects for real with kubectl's server-side apply, in helm's order (namespaces
 * first). The objects go to the apiserver as written, and apply decodes strictly: an unknown or
 * misplaced field is an error, not a warning. (client-node's typed serializer would silently drop
 * unknown fields before they reached the server.)
 */
export function applyAll(kubeconfig: string, objects: ChartObject[], fieldManager: string): void {
  const input = objects.map((object) => stringifyYaml(object)).join('---\n');
  const result = spawnSync(
    join(controlPlaneBinDir(), 'kubectl'),
    ['apply', '--server-side', `--field-manager=${fieldManager}`, '--kubeconfig', kubeconfig, '-f', '-'],
    { input, encoding: 'utf8' },
  );
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`kubectl apply failed: ${result.stderr.trim()}`);
}

/** config.tekton.namespaces of some values: the namespaces the chart expects to exist (it creates none). */
export function tektonNamespaces(values: Record<string, unknown>): string[] {
  return (values as { config?: { tekton?: { namespaces?: string[] } } }).config?.tekton?.namespaces ?? [];
}

/** Objects without a namespace (ClusterRoles, the MutatingWebhookConfiguration, …), not Namespaces. */
export function clusterScoped(objects: ChartObject[]): ChartObject[] {
  return objects.filter((object) => object.metadata.namespace === undefined && object.kind !== 'Namespace');
}

/** Deletes objects (not waiting for them to go); those already gone are fine. */
export function deleteAll(kubeconfig: string, objects: ChartObject[]): void {
  if (objects.length === 0) return;
  const input = objects.map((object) => stringifyYaml(object)).join('---\n');
  const result = spawnSync(
    join(controlPlaneBinDir(), 'kubectl'),
    ['delete', '--ignore-not-found', '--wait=false', '--kubeconfig', kubeconfig, '-f', '-'],
    { input, encoding: 'utf8' },
  );
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`kubectl delete failed: ${result.stderr.trim()}`);
}

/** cert-manager's Certificate and Issuer CRDs, as hack/control-plane/build.sh fetches them. */
const CERT_MANAGER_CRDS = ['certificates', 'issuers'];

/**
 * Installs cert-manager's Certificate and Issuer CRDs where the cluster lacks them (a cluster with
 * cert-manager keeps its own) and waits until they are served. Returns why it could not, or
 * undefined: a GANTRY_BIN_DIR folder may come without them.
 */
export function ensureCertManagerCrds(kubeconfig: string): string | undefined {
  const binDir = controlPlaneBinDir();
  const kubectl = (args: string[]) => {
    const result = spawnSync(join(binDir, 'kubectl'), ['--kubeconfig', kubeconfig, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (result.error) throw result.error;
    return { code: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
  };
  const missing = CERT_MANAGER_CRDS.filter(
    (plural) => kubectl(['get', 'crd', `${plural}.cert-manager.io`]).code !== 0,
  );
  if (missing.length === 0) return undefined;
  const dir = join(binDir, 'cert-manager-crds');
  if (!existsSync(dir)) return `cert-manager's CRDs are not installed and ${dir} does not exist`;
  for (const plural of missing) {
    const file = join(dir, `cert-manager.io_${plural}.yaml`);
    const applied = kubectl(['apply', '--server-side', '--field-manager=gantry-chart-test', '-f', file]);
    if (applied.code !== 0) throw new Error(`installing ${file} failed: ${applied.output}`);
  }
  const waited = kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=30s',
    ...missing.map((plural) => `crd/${plural}.cert-manager.io`),
  ]);
  if (waited.code !== 0) throw new Error(`cert-manager's CRDs not established: ${waited.output}`);
  return undefined;
}
