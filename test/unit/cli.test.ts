import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/cli.ts';

describe('parseCommandLine', () => {
  it('recognises help and version in long and short form', () => {
    expect(parseCommandLine(['--help'])).toEqual({ kind: 'help' });
    expect(parseCommandLine(['-h'])).toEqual({ kind: 'help' });
    expect(parseCommandLine(['--version'])).toEqual({ kind: 'version' });
    expect(parseCommandLine(['-v'])).toEqual({ kind: 'version' });
  });

  it('takes a config path in either form', () => {
    expect(parseCommandLine(['--config', 'a.yaml'])).toEqual({ kind: 'run', configPath: 'a.yaml' });
    expect(parseCommandLine(['--config=b.yaml'])).toEqual({ kind: 'run', configPath: 'b.yaml' });
    expect(parseCommandLine(['-c', 'c.yaml'])).toEqual({ kind: 'run', configPath: 'c.yaml' });
    expect(parseCommandLine([])).toEqual({ kind: 'run', configPath: undefined });
  });

  it('names an unknown flag, a missing value and a stray argument', () => {
    expect(parseCommandLine(['--colour'])).toMatchObject({
      kind: 'usage-error',
      message: expect.stringContaining("'--colour'"),
    });
    expect(parseCommandLine(['--config'])).toMatchObject({
      kind: 'usage-error',
      message: expect.stringContaining('--config'),
    });
    expect(parseCommandLine(['--config='])).toMatchObject({
      kind: 'usage-error',
      message: expect.stringContaining('--config'),
    });
    expect(parseCommandLine(['run'])).toMatchObject({
      kind: 'usage-error',
      message: expect.stringContaining("'run'"),
    });
  });
});

describe('gantry status', () => {
  it('takes an optional URL and refuses anything else', () => {
    expect(parseCommandLine(['status'])).toEqual({ kind: 'status', url: 'http://127.0.0.1:8080' });
    expect(parseCommandLine(['status', '--url', 'http://gantry:9000'])).toEqual({
      kind: 'status',
      url: 'http://gantry:9000',
    });
    expect(parseCommandLine(['status', '--bogus'])).toMatchObject({ kind: 'usage-error' });
    expect(parseCommandLine(['status', '--url', 'ftp://x'])).toMatchObject({
      kind: 'usage-error',
      message: expect.stringContaining('--url'),
    });
    expect(parseCommandLine(['status', 'extra'])).toMatchObject({ kind: 'usage-error' });
  });
});
