import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The architecture, as the imports must follow it. Data flows sources -> ledger -> planner ->
 * actuators (launcher, Tekton's run actuator) -> watches -> ledger; the imports point the same way,
 * down to the shared shapes, and the wiring at the top (app, config) is the only place that knows
 * every part. A unit is a folder of src/ (each source its own), or a file at its root.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  // Shared shapes and helpers: they know nothing of Gantry's parts.
  model: [],
  util: [],
  errors: [],
  log: [],
  version: [],
  // The runner class: its schema, which jobs it takes, what its runners cost in quota.
  classes: ['model', 'errors', 'util'],
  kube: ['util'],
  // What the reconcile loop asks of the parts that act, and the launcher of a CI system.
  ports: ['model', 'classes'],
  // The core: a picture with no I/O, and a pure policy over it.
  ledger: ['model', 'classes'],
  planner: ['model', 'classes'],
  // The actuators and the sources: each on its own, through the ports.
  launcher: ['model', 'classes', 'ports', 'kube', 'util'],
  'sources/github': ['model', 'classes', 'ports', 'errors', 'http', 'util'],
  'sources/tekton': ['model', 'classes', 'ports', 'errors', 'http', 'kube', 'util'],
  // GitHub's scale sets: GitHub's source lends its REST client and auth, its trust verdicts of runs
  // and its runner-group policy; the scale sets' sessions and runners are this unit's own.
  'sources/scaleset': ['model', 'classes', 'ports', 'errors', 'util', 'sources/github'],
  election: ['model', 'kube', 'util'],
  // Observers of the ledger, and what serves them.
  metrics: ['model', 'classes', 'ledger'],
  http: ['metrics'],
  // The loop: the ledger, the planner and the actuators, joined.
  controller: ['model', 'classes', 'ports', 'errors', 'kube', 'util', 'ledger', 'planner', 'launcher'],
  // Planning before deploying: traces (recorded from the ledger's changes, exported from GitHub),
  // warm pools learned from them, and the replay of a trace through the real classifier, ledger,
  // planner and cost meter. Commands of their own, so they read configurations.
  trace: ['model', 'util', 'errors', 'classes', 'config', 'ledger', 'sources/github'],
  'warm-pool': ['model', 'util', 'classes', 'kube', 'ledger'],
  simulate: [
    ...['model', 'util', 'errors', 'classes', 'config', 'ledger', 'planner', 'metrics'],
    ...['launcher', 'http', 'sources/github', 'trace', 'warm-pool'],
  ],
  // The top: the configuration composes every part's section; the app wires the parts.
  config: ['model', 'classes', 'errors', 'sources/github', 'sources/tekton'],
  app: ['*'],
  cli: ['*'],
  main: ['*'],
};

const SRC = join(import.meta.dirname, '../../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(dir, entry.name)]
        : [],
  );
}

function unitOf(file: string): string {
  const [first = '', second = ''] = relative(SRC, file).split('/');
  if (first === 'sources') return `sources/${second}`;
  return first.endsWith('.ts') ? first.slice(0, -3) : first;
}

/** Relative imports of every file under src/, as absolute paths. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const specifiers = [
      ...readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*['"](\.{1,2}\/[^'"]+)['"]/g),
    ];
    graph.set(
      file,
      specifiers.map(([, spec]) => normalize(join(dirname(file), spec as string))),
    );
  }
  return graph;
}

/** Groups of files that import each other in a circle (Tarjan's strongly connected components). */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (file: string) => {
    index.set(file, index.size);
    low.set(file, index.get(file) as number);
    stack.push(file);
    onStack.add(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      if (!index.has(next)) {
        visit(next);
        low.set(file, Math.min(low.get(file) as number, low.get(next) as number));
      } else if (onStack.has(next)) {
        low.set(file, Math.min(low.get(file) as number, index.get(next) as number));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string | undefined;
    do {
      member = stack.pop() as string;
      onStack.delete(member);
      component.push(relative(SRC, member));
    } while (member !== file);
    if (component.length > 1) found.push(component.sort());
  };
  for (const file of graph.keys()) if (!index.has(file)) visit(file);
  return found;
}

/** Imports that cross units against MAY_IMPORT, as 'from -> to'. */
function forbiddenImports(graph: Map<string, string[]>): string[] {
  const forbidden: string[] = [];
  for (const [file, targets] of graph) {
    const from = unitOf(file);
    const allowed = MAY_IMPORT[from];
    for (const target of targets) {
      const to = unitOf(target);
      if (to === from || allowed?.includes('*') || allowed?.includes(to)) continue;
      forbidden.push(
        `${relative(SRC, file)} -> ${relative(SRC, target)}${allowed ? '' : ` (${from}: no rule)`}`,
      );
    }
  }
  return forbidden;
}

describe('the architecture', () => {
  const graph = importGraph();

  it('has imports that point down the data flow only', () => {
    expect(forbiddenImports(graph)).toEqual([]);
  });

  it('has no files that import each other in a circle', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('catches a backward import', () => {
    const planted = new Map(graph);
    const ledger = join(SRC, 'ledger/ledger.ts');
    planted.set(ledger, [...(graph.get(ledger) ?? []), join(SRC, 'planner/plan.ts')]);
    expect(forbiddenImports(planted)).toEqual(['ledger/ledger.ts -> planner/plan.ts']);
    const plan = join(SRC, 'planner/plan.ts');
    planted.set(plan, [...(graph.get(plan) ?? []), ledger]);
    expect(cycles(planted)).toEqual([['ledger/ledger.ts', 'planner/plan.ts']]);
  });
});
