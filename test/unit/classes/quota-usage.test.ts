import { describe, expect, it } from 'vitest';
import { runnerQuotaUsage } from '../../../src/classes/quota-usage.ts';
import { classes } from '../../support/builders.ts';

const GI = 2 ** 30;
const MI = 2 ** 20;

describe('what one runner pod counts against its namespace quota', () => {
  it('counts the runner with Gantry’s local-disk defaults', () => {
    const { lint } = classes({
      lint: { resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '1Gi' } } },
    });
    expect(lint && runnerQuotaUsage(lint)).toEqual({
      pods: 1,
      'requests.cpu': 500,
      'requests.memory': GI,
      'limits.memory': GI,
      'requests.ephemeral-storage': GI,
      'limits.ephemeral-storage': 30 * GI,
    });
  });

  it('adds the sidecars, and takes the larger of that and any init container, as Kubernetes does', () => {
    const { lint } = classes({
      lint: {
        resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } },
        sidecars: [
          {
            name: 'proxy',
            image: 'proxy:1',
            resources: { requests: { cpu: '250m' }, limits: { cpu: '250m', memory: '128Mi' } },
          },
        ],
        initContainers: [
          { name: 'warm', image: 'busybox', resources: { limits: { cpu: '2', memory: '256Mi' } } },
        ],
      },
    });
    expect(lint && runnerQuotaUsage(lint)).toMatchObject({
      // cpu: the init container's 2 (its request is its limit) beats runner + sidecar (1.25).
      'requests.cpu': 2000,
      'limits.cpu': 2000,
      // memory: runner + sidecar (1Gi + 128Mi, the sidecar's request taken from its limit) beat 256Mi.
      'requests.memory': GI + 128 * MI,
      'limits.memory': GI + 128 * MI,
    });
  });

  it('works a class’s usage out once, and hands out a copy no caller can change', () => {
    const { lint } = classes({ lint: { resources: { requests: { cpu: '1' } } } });
    if (!lint) throw new Error('no class');
    const first = runnerQuotaUsage(lint);
    expect(runnerQuotaUsage(lint)).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    // Another class object (a reloaded configuration) gets its own figures.
    const { lint: other } = classes({ lint: { resources: { requests: { cpu: '2' } } } });
    expect(other && runnerQuotaUsage(other)['requests.cpu']).toBe(2000);
  });
});
