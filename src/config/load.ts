import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { ZodError } from 'zod';
import { ConfigError } from '../errors.ts';
import { type Config, configSchema } from './schema.ts';

export { ConfigError };

/** Turns raw configuration (already parsed) into a validated Config, or throws a ConfigError. */
export function parseConfig(raw: unknown, source = 'configuration'): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) throw new ConfigError(`${source}: ${describeIssues(result.error)}`);
  return result.data;
}

/** Reads a YAML (or JSON) config file; an unreadable or invalid file is a ConfigError. */
export async function loadConfigFile(path: string): Promise<Config> {
  return parseConfigText(await readConfigText(path), path);
}

/** The text of a config file; an unreadable file is a ConfigError. */
export async function readConfigText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(err);
    throw new ConfigError(`cannot read config file ${path}: ${reason}`);
  }
}

/** Validates the text of the config file at path (named in errors); invalid text is a ConfigError. */
export function parseConfigText(text: string, path: string): Config {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  return parseConfig(raw, `config file ${path}`);
}

function describeIssues(error: ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.length ? issue.path.join('.') : '(top level)';
      if (issue.code === 'unrecognized_keys') {
        const keys = issue.keys.map((k) => (issue.path.length ? `${path}.${k}` : k));
        return `unknown key ${keys.join(', ')}`;
      }
      return `${path}: ${issue.message}`;
    })
    .join('; ');
}
