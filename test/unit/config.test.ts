import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/load.ts';

describe('configuration', () => {
  it('fills every default from an empty document', () => {
    expect(parseConfig(null)).toEqual({ http: { address: '0.0.0.0', port: 8080 }, log: { level: 'info' } });
  });

  it('names the path of an unknown key', () => {
    expect(() => parseConfig({ http: { prot: 80 } })).toThrow(/unknown key http\.prot/);
    expect(() => parseConfig({ metrix: {} })).toThrow(/unknown key metrix/);
  });

  it('names the key and the expectation for a bad value', () => {
    expect(() => parseConfig({ http: { port: -1 } })).toThrow(/http\.port: .*>=0/);
    expect(() => parseConfig({ log: { level: 'loud' } })).toThrow(/log\.level: .*"info"/);
  });

  it('reads YAML files and says why a file cannot be used', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gantry-config-'));
    const good = join(dir, 'good.yaml');
    await writeFile(good, 'http:\n  port: 9000\n');
    await expect(loadConfigFile(good)).resolves.toMatchObject({ http: { port: 9000 } });

    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, 'http: [unclosed\n');
    await expect(loadConfigFile(broken)).rejects.toThrow(/broken\.yaml is not valid YAML/);
    await expect(loadConfigFile(join(dir, 'missing.yaml'))).rejects.toThrow(ConfigError);
    await expect(loadConfigFile(join(dir, 'missing.yaml'))).rejects.toThrow(/missing\.yaml: no such file/);
  });
});
