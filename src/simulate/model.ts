import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { dnsLabel } from '../classes/fields.ts';
import { type Distribution, distributionSchema } from '../util/distribution.ts';
import { InputError } from '../util/input-error.ts';

/**
 * What the simulator assumes about the world outside Gantry: how long a runner pod takes to start,
 * how long its runner takes to come online on GitHub, how quickly GitHub hands a job to an idle runner
 * and tells Gantry about it, which repositories each runner group admits, and the namespaces'
 * ResourceQuotas. Every key has a default, so an empty model is a valid one.
 */

const runnerGroup = z.strictObject({
  visibility: z
    .enum(['all', 'private', 'selected'])
    .default('all')
    .describe('Which repositories may use the group: all, every private one, or the selected ones.'),
  repositories: z.array(z.string()).default([]).describe('With visibility selected: owner/name of each.'),
  allowsPublicRepositories: z.boolean().default(false).describe('Whether public repositories may use it.'),
});
export type RunnerGroupModel = z.output<typeof runnerGroup>;

export const modelSchema = z
  .strictObject({
    seed: z.int().default(1).describe('Seed of every random draw: the same inputs give the same result.'),
    startup: distributionSchema
      .prefault(20)
      .describe('Runner pod created → its container running (scheduling, image pull, start).'),
    startupByClass: z
      .record(dnsLabel, distributionSchema)
      .default({})
      .describe('Start-up per class, where it differs (another image, another node pool).'),
    registration: distributionSchema
      .prefault(3)
      .describe('Container running → the runner online on GitHub (it connects with its JIT config).'),
    assignment: distributionSchema
      .prefault(1)
      .describe('GitHub handing a queued job to an idle runner whose labels and group fit (its long poll).'),
    webhook: distributionSchema
      .prefault(1)
      .describe('A job’s change on GitHub → Gantry knowing it (delivery, the run’s origin look-up).'),
    apiLatency: distributionSchema.prefault(0.1).describe('A create or delete reaching the apiserver.'),
    exit: distributionSchema.prefault(1).describe('Job completed → the one-shot runner’s pod Succeeded.'),
    deletion: distributionSchema.prefault(1).describe('Pod deletion sent → the pod gone.'),
    runnerGroups: z
      .record(z.string().min(1), runnerGroup)
      .default({})
      .describe(
        'GitHub runner groups by name (case-insensitive). A group not listed admits every private ' +
          'repository, and public ones too when an untrusted or sandboxed class uses it (the placement ' +
          'Gantry requires).',
      ),
    quotas: z
      .record(dnsLabel, z.record(z.string(), z.union([z.string(), z.number()])))
      .default({})
      .describe('ResourceQuota `hard` per runner namespace, e.g. { ci: { pods: 40, requests.cpu: "32" } }.'),
  })
  .describe('The simulator’s model of the world around Gantry.');

export type SimulationModel = z.output<typeof modelSchema>;

export function defaultModel(): SimulationModel {
  return modelSchema.parse({});
}

/** Reads a model file (YAML or JSON); a bad one is an InputError naming the key. */
export async function loadModelFile(path: string): Promise<SimulationModel> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(
      `cannot read model file ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new InputError(`model file ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const result = modelSchema.safeParse(raw ?? {});
  if (!result.success) {
    const issue = result.error.issues[0];
    const key = issue?.path.join('.') || '(top level)';
    const message =
      issue?.code === 'unrecognized_keys'
        ? `unknown key ${issue.keys.join(', ')}`
        : `${key}: ${issue?.message}`;
    throw new InputError(`model file ${path}: ${message}`);
  }
  return result.data;
}

/** The start-up distribution of a class. */
export function startupOf(model: SimulationModel, className: string): Distribution {
  return model.startupByClass[className] ?? model.startup;
}
