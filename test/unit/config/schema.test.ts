import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, parseConfig } from '../../../src/config/load.ts';

describe('configuration', () => {
  it('fills every default from an empty document', () => {
    const config = parseConfig(null);
    expect(config.github).toMatchObject({ enabled: false, apiUrl: 'https://api.github.com' });
    expect(config.github.runners.concurrency).toBe(16);
    expect({ ...config, github: undefined }).toEqual({
      github: undefined,
      tekton: {
        enabled: false,
        namespaces: [],
        webhook: {
          address: '0.0.0.0',
          port: 8443,
          tls: {
            secretName: 'gantry-webhook-tls',
            serviceName: 'gantry',
            extraHosts: [],
            webhookConfigurationName: 'gantry',
            validityDays: 365,
          },
        },
      },
      classes: {},
      controller: {
        startTimeoutSeconds: 600,
        capacityTimeoutSeconds: 1800,
        deadlineGraceSeconds: 60,
        reconcilePeriodSeconds: 1,
        concurrency: 64,
      },
      warmPools: { configMap: { name: 'gantry-warm-pools' }, saveIntervalSeconds: 300 },
      trace: { recentJobs: 10_000 },
      kubernetes: { requestTimeoutSeconds: 15 },
      election: {
        enabled: false,
        leaseName: 'gantry-leader',
        leaseDurationSeconds: 15,
        renewDeadlineSeconds: 10,
        retryPeriodSeconds: 2,
      },
      shutdownTimeoutSeconds: 20,
      http: { address: '0.0.0.0', port: 8080 },
      log: { level: 'info' },
    });
  });

  it('wants both or neither of the webhook certificate files', () => {
    expect(() => parseConfig({ tekton: { webhook: { tls: { certFile: '/tls/tls.crt' } } } })).toThrow(
      /tekton\.webhook\.tls\.keyFile: set both certFile and keyFile, or neither/,
    );
  });

  it('refuses a Tekton class bound to a namespace the queue does not watch', () => {
    const config = (namespaces: string[]) => ({
      tekton: { enabled: true, namespaces: ['team-a', 'team-b'] },
      classes: { p: { match: { tekton: { namespaces } } } },
    });
    expect(parseConfig(config(['team-b'])).classes.p?.match.tekton?.namespaces).toEqual(['team-b']);
    expect(() => parseConfig(config(['team-b', 'team-c']))).toThrow(
      /classes\.p\.match\.tekton\.namespaces\.1: team-c is not among tekton\.namespaces \(team-a, team-b\): its runs never reach Gantry/,
    );
    // With every namespace queued, any binding is reachable.
    expect(() => parseConfig({ ...config(['team-c']), tekton: { enabled: true } })).not.toThrow();
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

describe('class configuration errors at start', () => {
  async function load(yaml: string) {
    const dir = await mkdtemp(join(tmpdir(), 'gantry-classes-'));
    const path = join(dir, 'gantry.yaml');
    await writeFile(path, yaml);
    return loadConfigFile(path);
  }
  const lint = 'classes:\n  lint:\n    match: { github: { labels: [self-hosted, lint] } }\n';

  it('accepts a valid class', async () => {
    await expect(load(lint)).resolves.toMatchObject({ classes: { lint: { maxRunners: 10 } } });
  });

  it('names an unknown key inside a class', async () => {
    await expect(load(`${lint}    maxRunner: 3\n`)).rejects.toThrow(/unknown key classes\.lint\.maxRunner/);
  });

  it('names a negative maxRunners', async () => {
    await expect(load(`${lint}    maxRunners: -1\n`)).rejects.toThrow(
      /classes\.lint\.maxRunners: expected a number >= 0/,
    );
  });

  it('keeps the wait for capacity at least as long as the start timeout, naming the key', () => {
    expect(() =>
      parseConfig({ controller: { startTimeoutSeconds: 600, capacityTimeoutSeconds: 300 } }),
    ).toThrow('controller.capacityTimeoutSeconds: expected at least controller.startTimeoutSeconds (600)');
    expect(parseConfig({ controller: { startTimeoutSeconds: 60 } }).controller.capacityTimeoutSeconds).toBe(
      1800,
    );
  });

  it('refuses a class name given twice', async () => {
    await expect(load(`${lint}  lint:\n    maxRunners: 3\n`)).rejects.toThrow(
      /not valid YAML: Map keys must be unique/,
    );
  });

  it('refuses a class that matches no jobs, and two classes with the same label set', async () => {
    await expect(load('classes:\n  lint:\n    match: {}\n')).rejects.toThrow(/classes\.lint\.match/);
    await expect(
      load(`${lint}  twin:\n    match: { github: { labels: [lint, self-hosted] } }\n`),
    ).rejects.toThrow(/classes\.twin\.match\.github\.labels: same label set as class lint/);
  });
});
