import { describe, expect, it } from 'vitest';
import { cpuMillicores, parseQuantity } from '../../../src/model/quantity.ts';

describe('parseQuantity', () => {
  it.each([
    ['500m', 0.5],
    ['2', 2],
    ['1.5', 1.5],
    ['4Gi', 4 * 2 ** 30],
    ['128Mi', 128 * 2 ** 20],
    ['1k', 1_000],
    ['1e3', 1_000],
    ['1E', 1e18],
    ['2Ei', 2 * 2 ** 60],
  ])('reads %s as %d', (text, value) => {
    expect(parseQuantity(text)).toBe(value);
  });

  it.each(['', '-1', '1x', 'Gi', '1.2.3', '1e'])('refuses %j', (text) => {
    expect(parseQuantity(text)).toBeUndefined();
  });

  it('rounds CPU up to whole millicores', () => {
    expect(cpuMillicores(0.0001)).toBe(1);
    expect(cpuMillicores(0.25)).toBe(250);
  });
});
