import { describe, expect, it } from 'vitest';
import { scaleSetCapacity } from '../../../../src/sources/scaleset/capacity.ts';
import { classes, NOW, runner, snapshot } from '../../../support/builders.ts';

// X-ScaleSetMaxCapacity: the jobs a class's scale set can take now.

const config = classes({ lint: { maxRunners: 10, resources: { requests: { cpu: '1', memory: '1Gi' } } } });
const lint = config.lint;
if (!lint) throw new Error('no class');

describe('scale-set capacity', () => {
  it('is maxRunners while nothing limits the class', () => {
    expect(scaleSetCapacity(snapshot({}), 'lint', lint, NOW)).toBe(10);
  });

  it('is the runners serving jobs plus what the namespace quota still admits', () => {
    const runners = [
      runner('a', 'busy'),
      runner('b', 'idle'),
      runner('c', 'finished'),
      runner('d', 'starting'),
    ];
    const quotas = { 'gantry-runners': { remaining: { pods: 2, 'requests.cpu': 5000 } } };
    expect(scaleSetCapacity(snapshot({ lint: { runners } }, quotas), 'lint', lint, NOW)).toBe(5);
    const tight = { 'gantry-runners': { remaining: { pods: 4, 'requests.cpu': 500 } } };
    expect(scaleSetCapacity(snapshot({ lint: { runners } }, tight), 'lint', lint, NOW)).toBe(3);
  });

  it('takes no more jobs than it has runners for while the quota refused a create or the group is not known safe', () => {
    const runners = [runner('a', 'busy')];
    const backedOff = { 'gantry-runners': { remaining: {}, backoffUntil: NOW + 1_000 } };
    expect(scaleSetCapacity(snapshot({ lint: { runners } }, backedOff), 'lint', lint, NOW)).toBe(1);
    expect(scaleSetCapacity(snapshot({ lint: { runners, placement: 'unknown' } }), 'lint', lint, NOW)).toBe(
      1,
    );
  });
});
