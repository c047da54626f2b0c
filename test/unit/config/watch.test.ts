import { mkdir, mkdtemp, rename, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/schema.ts';
import { watchConfigFile } from '../../../src/config/watch.ts';
import type { ConfigError } from '../../../src/errors.ts';

const DEBOUNCE_MS = 30;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('watchConfigFile', () => {
  let stop = () => {};
  afterEach(() => stop());

  async function start(initial: string, fileName = 'gantry.yaml') {
    const dir = await mkdtemp(join(tmpdir(), 'gantry-watch-'));
    const path = join(dir, fileName);
    await writeFile(path, initial);
    const valid: Config[] = [];
    const invalid: ConfigError[] = [];
    stop = watchConfigFile(path, {
      onValid: (config) => valid.push(config),
      onInvalid: (error) => invalid.push(error),
      debounceMs: DEBOUNCE_MS,
    });
    return { dir, path, valid, invalid };
  }

  it('reports an invalid edit with its message and does not apply it', async () => {
    const w = await start('http:\n  port: 8080\n');
    await writeFile(w.path, 'http:\n  port: 70000\n');
    await until(() => w.invalid.length > 0);
    await sleep(DEBOUNCE_MS * 4);
    expect(w.invalid).toHaveLength(1);
    expect(w.invalid[0]?.message).toContain('http.port');
    expect(w.valid).toHaveLength(0);
  });

  it('reports a valid edit once, however many events it makes', async () => {
    const w = await start('http:\n  port: 8080\n');
    await writeFile(w.path, 'http:\n  port: 8090\n');
    await writeFile(w.path, 'http:\n  port: 8090\n');
    await until(() => w.valid.length > 0);
    await sleep(DEBOUNCE_MS * 4);
    expect(w.valid).toHaveLength(1);
    expect(w.valid[0]?.http.port).toBe(8090);
    expect(w.invalid).toHaveLength(0);
  });

  it('ignores a write that leaves the contents as they were', async () => {
    const w = await start('http:\n  port: 8080\n');
    await writeFile(w.path, 'http:\n  port: 8080\n');
    await writeFile(join(w.dir, 'unrelated.txt'), 'x');
    await sleep(DEBOUNCE_MS * 6);
    expect(w.valid).toHaveLength(0);
    expect(w.invalid).toHaveLength(0);
  });

  it('sees a file replaced by renaming a new one over it', async () => {
    const w = await start('http:\n  port: 8080\n');
    const temp = join(w.dir, '.gantry.yaml.tmp');
    await writeFile(temp, 'http:\n  port: 9090\n');
    await rename(temp, w.path);
    await until(() => w.valid.length > 0);
    expect(w.valid[0]?.http.port).toBe(9090);
  });

  it('sees a ConfigMap-style swap of the ..data symlink', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gantry-watch-cm-'));
    await mkdir(join(dir, '..v1'));
    await writeFile(join(dir, '..v1', 'gantry.yaml'), 'http:\n  port: 8080\n');
    await symlink('..v1', join(dir, '..data'));
    await symlink(join('..data', 'gantry.yaml'), join(dir, 'gantry.yaml'));
    const valid: Config[] = [];
    stop = watchConfigFile(join(dir, 'gantry.yaml'), {
      onValid: (config) => valid.push(config),
      onInvalid: () => {},
      debounceMs: DEBOUNCE_MS,
    });
    await mkdir(join(dir, '..v2'));
    await writeFile(join(dir, '..v2', 'gantry.yaml'), 'http:\n  port: 7070\n');
    await symlink('..v2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await until(() => valid.length > 0);
    expect(valid[0]?.http.port).toBe(7070);
  });

  it('reports nothing once stopped', async () => {
    const w = await start('http:\n  port: 8080\n');
    stop();
    await writeFile(w.path, 'http:\n  port: 8090\n');
    await sleep(DEBOUNCE_MS * 6);
    expect(w.valid).toHaveLength(0);
    expect(w.invalid).toHaveLength(0);
  });
});
