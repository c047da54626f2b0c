import { describe, expect, it } from 'vitest';
import { renderStatusPage } from '../../../src/http/status-page.ts';
import { renderStatusTable } from '../../../src/http/status-table.ts';
import type { StatusReport } from '../../../src/metrics/status.ts';

// The status page and `gantry status` in scale-set mode: a row per scale set.

const report: StatusReport = {
  generatedAt: '2026-01-15T12:00:00.000Z',
  classes: [],
  events: [],
  scaleSets: [
    {
      className: 'lint',
      scaleSet: 'gantry-<lint>',
      scaleSetId: 7,
      session: true,
      capacity: 12,
      statistics: { assignedJobs: 5, runningJobs: 3, registeredRunners: 4, busyRunners: 3, idleRunners: 1 },
      retained: 2,
    },
    {
      className: 'docs',
      scaleSet: 'gantry-docs',
      scaleSetId: null,
      session: false,
      capacity: 4,
      statistics: null,
      retained: 0,
    },
  ],
};

describe('status in scale-set mode', () => {
  it('shows each scale set, its session, the capacity sent and the service’s counts, escaped', () => {
    const page = renderStatusPage(report);
    expect(page).toContain('<h2>Scale sets</h2>');
    expect(page).toContain(
      '<td class="num">gantry-&lt;lint&gt; (7)</td><td class="num">held</td><td class="num">12</td><td class="num">2</td><td class="num">3</td><td class="num">4 / 3 / 1</td><td class="num">2</td>',
    );
    expect(page).not.toContain('<lint>');
    const table = renderStatusTable(report);
    expect(table).toContain('lint: gantry-<lint>  session held  capacity 12  assigned 5  running 3');
    expect(table).toContain('docs: gantry-docs  session not held  capacity 4  no statistics yet');
  });

  it('shows no scale-set section in webhook mode', () => {
    expect(renderStatusPage({ ...report, scaleSets: undefined } as StatusReport)).not.toContain('Scale sets');
  });
});
