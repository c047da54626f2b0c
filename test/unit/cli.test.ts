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

describe('gantry simulate and gantry trace', () => {
  it('take their files and options', () => {
    expect(
      parseCommandLine([
        'simulate',
        '--config',
        'a.yaml',
        '--trace',
        't.jsonl',
        '--compare',
        'b.yaml',
        '--startup',
        '40s',
        '--html',
        'r.html',
        '--json',
        'r.json',
        '--model',
        'm.yaml',
      ]),
    ).toEqual({
      kind: 'simulate',
      options: {
        configPath: 'a.yaml',
        tracePath: 't.jsonl',
        comparePath: 'b.yaml',
        startup: '40s',
        htmlPath: 'r.html',
        jsonPath: 'r.json',
        modelPath: 'm.yaml',
      },
    });
    expect(
      parseCommandLine([
        'trace',
        'export',
        '--repo',
        'acme/a',
        '--repo',
        'acme/b',
        '--since',
        '7d',
        '--token-file',
        't',
      ]),
    ).toEqual({
      kind: 'trace-export',
      options: { repos: ['acme/a', 'acme/b'], since: '7d', tokenFile: 't' },
    });
    expect(
      parseCommandLine(['trace', 'export', '--gantry', 'http://gantry:8080', '--out', 'x.jsonl']),
    ).toEqual({
      kind: 'trace-export',
      options: { repos: [], gantryUrl: 'http://gantry:8080', outPath: 'x.jsonl' },
    });
    expect(
      parseCommandLine(['trace', 'synthetic', '--jobs-per-hour', '500', '--days', '7', '--seed', '3']),
    ).toEqual({
      kind: 'trace-synthetic',
      options: { jobsPerHour: 500, days: 7, seed: 3 },
    });
  });

  it('name what is missing or wrong', () => {
    const message = (argv: string[]) => {
      const command = parseCommandLine(argv);
      return command.kind === 'usage-error' ? command.message : `not an error: ${command.kind}`;
    };
    expect(message(['simulate', '--trace', 't'])).toBe('gantry simulate: option --config is required');
    expect(message(['simulate', '--config', 'c', '--trace', 't', '--html='])).toBe(
      'gantry simulate: option --html needs a value',
    );
    expect(message(['simulate', '--config', 'c', '--trace', 't', 'extra'])).toContain(
      "Unexpected argument 'extra'",
    );
    expect(message(['trace'])).toBe('gantry trace: expected export or synthetic');
    expect(message(['trace', 'import'])).toBe('gantry trace: expected export or synthetic, got "import"');
    expect(message(['trace', 'export', '--repo', 'acme', '--since', '1d', '--token-file', 't'])).toBe(
      'gantry trace export: option --repo: expected OWNER/NAME, got "acme"',
    );
    expect(message(['trace', 'export', '--repo', 'a/b', '--token-file', 't'])).toBe(
      'gantry trace export: option --since is required (the start of the window)',
    );
    expect(message(['trace', 'export', '--repo', 'a/b', '--since', '1d'])).toBe(
      'gantry trace export: option --config or --token-file is required (how to authenticate to GitHub)',
    );
    expect(message(['trace', 'export', '--gantry', 'http://g', '--repo', 'a/b'])).toBe(
      'gantry trace export: option --repo does not go with --gantry',
    );
    expect(message(['trace', 'export', '--gantry', 'ftp://g'])).toBe(
      'gantry trace export: option --gantry: expected an http(s) URL, got "ftp://g"',
    );
    expect(message(['trace', 'synthetic', '--jobs-per-hour', 'many', '--days', '1'])).toBe(
      'gantry trace synthetic: option --jobs-per-hour: expected a number of jobs > 0, got "many"',
    );
    expect(message(['trace', 'synthetic', '--jobs-per-hour', '5'])).toBe(
      'gantry trace synthetic: option --days is required',
    );
  });
});
