import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/config/load.ts';
import { configUrlOf } from '../../../src/sources/scaleset/source.ts';

const github = (extra: Record<string, unknown> = {}) => ({
  enabled: true,
  mode: 'scaleSets',
  auth: { kind: 'token', token: 'ghp_x' },
  runners: { org: 'acme' },
  ...extra,
});

const lint = { match: { github: { labels: ['self-hosted', 'lint'] } } };

describe('configuration: github.mode scaleSets', () => {
  it('defaults to webhook mode, and takes scale sets with their defaults', () => {
    expect(parseConfig(null).github.mode).toBe('webhook');
    const config = parseConfig({ github: github(), classes: { lint } });
    expect(config.github.mode).toBe('scaleSets');
    expect(config.github.scaleSets).toEqual({
      names: {},
      pollTimeoutSeconds: 90,
      sessionConflictRetrySeconds: 30,
      adminTokenRefreshMarginSeconds: 300,
    });
  });

  it('needs no repository list for a personal access token: nothing is polled', () => {
    expect(() => parseConfig({ github: github(), classes: { lint } })).not.toThrow();
    expect(() => parseConfig({ github: github({ mode: 'webhook' }), classes: { lint } })).toThrow(
      /github\.repositories/,
    );
  });

  it('needs the organisation, org-scoped classes and a scale set name per class', () => {
    expect(() => parseConfig({ github: github({ runners: {} }), classes: { lint } })).toThrow(
      /github\.runners\.org: required with github\.mode scaleSets/,
    );
    expect(() => parseConfig({ github: github(), classes: { lint: { ...lint, scope: 'repo' } } })).toThrow(
      /classes\.lint\.scope: expected org with github\.mode scaleSets/,
    );
    const twice = {
      github: github({ scaleSets: { names: { lint: 'ci', docs: 'CI' } } }),
      classes: { lint, docs: { match: { github: { labels: ['self-hosted', 'docs'] } } } },
    };
    expect(() => parseConfig(twice)).toThrow(/scale set name ci is class .*'s too/);
    expect(() =>
      parseConfig({ github: github({ scaleSets: { names: { nope: 'x' } } }), classes: { lint } }),
    ).toThrow(ConfigError);
  });

  it('refuses a scale set name GitHub would not take, naming the key', () => {
    expect(() =>
      parseConfig({ github: github({ scaleSets: { names: { lint: 'has space' } } }), classes: { lint } }),
    ).toThrow(/github\.scaleSets\.names\.lint/);
  });
});

describe('the organisation URL registration names', () => {
  it('follows the REST URL: github.com, GHE.com and a server', () => {
    expect(configUrlOf('https://api.github.com', 'acme')).toBe('https://github.com/acme');
    expect(configUrlOf('https://api.octo.ghe.com', 'acme')).toBe('https://octo.ghe.com/acme');
    expect(configUrlOf('https://ghe.example.com/api/v3', 'acme')).toBe('https://ghe.example.com/acme');
    expect(configUrlOf('http://127.0.0.1:8080/api/v3', 'acme')).toBe('http://127.0.0.1:8080/acme');
  });
});
