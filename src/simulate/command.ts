import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError, parseConfig, readConfigText } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { readTraceFile } from '../trace/format.ts';
import { describeDistribution, parseDistributionFlag } from '../util/distribution.ts';
import { InputError } from '../util/input-error.ts';
import { simulate } from './engine.ts';
import { defaultModel, loadModelFile, type SimulationModel } from './model.ts';
import { recommendWarmPools } from './recommend.ts';
import { renderHtmlReport } from './report-html.ts';
import { formatComparison, formatRun, type NamedRun } from './report-text.ts';
import { loadStartupFit } from './startup-fit.ts';

export interface SimulateOptions {
  configPath: string;
  tracePath: string;
  comparePath?: string;
  modelPath?: string;
  /** A distribution (`40s`, `lognormal:30s,90s`, `uniform:20s,60s`) or `metrics:FILE|URL`. */
  startup?: string;
  htmlPath?: string;
  jsonPath?: string;
}

/**
 * Reads a Gantry config file or Helm values (Gantry's config under `config:`), so the file an operator
 * tunes, whichever it is, can be simulated as it is.
 */
export async function loadConfigOrValues(path: string): Promise<Config> {
  const text = await readConfigText(path);
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const isValues =
    typeof raw === 'object' && raw !== null && 'config' in raw && !('classes' in raw) && !('github' in raw);
  const config = parseConfig(
    isValues ? (raw as { config: unknown }).config : raw,
    isValues ? `values file ${path} (config)` : `config file ${path}`,
  );
  if (!Object.values(config.classes).some((c) => c.match.github)) {
    throw new InputError(`${path}: no class takes GitHub jobs (classes.*.match.github): nothing to simulate`);
  }
  return config;
}

/** The model, with the start-up flag applied over the model file. */
export async function resolveModel(
  options: Pick<SimulateOptions, 'modelPath' | 'startup'>,
): Promise<SimulationModel> {
  const model = options.modelPath ? await loadModelFile(options.modelPath) : defaultModel();
  if (options.startup === undefined) return model;
  if (options.startup.startsWith('metrics:')) {
    const fitted = await loadStartupFit(options.startup.slice('metrics:'.length));
    return { ...model, startupByClass: { ...model.startupByClass, ...Object.fromEntries(fitted) } };
  }
  const distribution = parseDistributionFlag(options.startup);
  if (!distribution) {
    throw new InputError(
      `option --startup: expected seconds (40s), lognormal:MEDIAN,P95, uniform:MIN,MAX or metrics:FILE|URL, got ${JSON.stringify(options.startup)}`,
    );
  }
  return { ...model, startup: distribution };
}

export function describeModel(model: SimulationModel): string {
  const perClass = Object.entries(model.startupByClass)
    .map(([name, d]) => `${name} ${describeDistribution(d)}`)
    .join(', ');
  return [
    `start-up ${describeDistribution(model.startup)}${perClass ? ` (${perClass})` : ''}`,
    `registration ${describeDistribution(model.registration)}`,
    `hand-off ${describeDistribution(model.assignment)}`,
    `webhook ${describeDistribution(model.webhook)}`,
    `API ${describeDistribution(model.apiLatency)}`,
    `exit ${describeDistribution(model.exit)}`,
    `deletion ${describeDistribution(model.deletion)}`,
    `seed ${model.seed}`,
  ].join('; ');
}

export interface SimulateOutput {
  runs: NamedRun[];
  text: string;
}

/** Runs `gantry simulate`: prints the report to `write`, and writes the HTML and JSON files asked for. */
export async function runSimulate(
  options: SimulateOptions,
  write: (text: string) => void,
): Promise<SimulateOutput> {
  const paths = [options.configPath, ...(options.comparePath ? [options.comparePath] : [])];
  const configs = await Promise.all(paths.map(loadConfigOrValues));
  const model = await resolveModel(options);
  const trace = await readTraceFile(options.tracePath);
  const labels = uniqueLabels(paths);
  const runs: NamedRun[] = configs.map((config, i) => {
    const recommendations = recommendWarmPools(config, trace, model);
    const result = simulate({
      config,
      trace,
      model,
      warmPools: new Map(recommendations.map((r) => [r.className, r.plan])),
    });
    return { label: labels[i] as string, result, recommendations };
  });
  const text =
    runs.length === 2
      ? formatComparison(runs[0] as NamedRun, runs[1] as NamedRun)
      : formatRun(runs[0] as NamedRun);
  write(`${text}\n`);
  if (options.htmlPath) {
    const html = renderHtmlReport({
      runs,
      traceLabel: options.tracePath,
      modelDescription: describeModel(model),
      generatedAt: new Date(),
    });
    await writeOutput(options.htmlPath, html);
    write(`HTML report: ${options.htmlPath}\n`);
  }
  if (options.jsonPath) {
    const json = {
      trace: options.tracePath,
      model,
      runs: runs.map((run, i) => ({
        label: run.label,
        config: paths[i],
        result: run.result,
        warmPools: run.recommendations.map((r) => ({
          class: r.className,
          leadSeconds: r.plan.leadMs / 1000,
          targets: r.plan.targets,
          predictedSeconds: r.estimates.map((e) => Number(e.predictedSeconds.toFixed(2))),
          met: r.estimates.map((e) => e.met),
        })),
      })),
    };
    await writeOutput(options.jsonPath, `${JSON.stringify(json, null, 2)}\n`);
    write(`JSON report: ${options.jsonPath}\n`);
  }
  return { runs, text };
}

/** File names, or paths where two files share a name. */
function uniqueLabels(paths: readonly string[]): string[] {
  const names = paths.map((p) => basename(p));
  return names.length === new Set(names).size ? names : [...paths];
}

async function writeOutput(path: string, content: string): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
  } catch (err) {
    throw new InputError(`cannot write ${path}: ${(err as Error).message}`);
  }
}
