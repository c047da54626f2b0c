import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/config/load.ts';

describe('election configuration', () => {
  it('defaults to off with client-go’s timings', () => {
    const { election, shutdownTimeoutSeconds } = parseConfig({});
    expect(election).toEqual({
      enabled: false,
      leaseName: 'gantry-leader',
      leaseDurationSeconds: 15,
      renewDeadlineSeconds: 10,
      retryPeriodSeconds: 2,
    });
    expect(shutdownTimeoutSeconds).toBe(20);
  });

  it('refuses timings that would let two leaders overlap, naming the key', () => {
    expect(() => parseConfig({ election: { leaseDurationSeconds: 5, renewDeadlineSeconds: 5 } })).toThrow(
      /election\.renewDeadlineSeconds: must be less than election\.leaseDurationSeconds \(5\)/,
    );
    expect(() => parseConfig({ election: { renewDeadlineSeconds: 2, retryPeriodSeconds: 3 } })).toThrow(
      /election\.retryPeriodSeconds: must be less than election\.renewDeadlineSeconds \(2\)/,
    );
    expect(() => parseConfig({ election: { leaseName: '' } })).toThrow(ConfigError);
  });
});
