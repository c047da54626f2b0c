import { mkdtemp, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.ts';
import { simulate } from '../../../src/simulate/engine.ts';
import { modelSchema } from '../../../src/simulate/model.ts';
import { recommendWarmPools } from '../../../src/simulate/recommend.ts';
import { renderHtmlReport } from '../../../src/simulate/report-html.ts';
import type { NamedRun } from '../../../src/simulate/report-text.ts';
import { syntheticTrace } from '../../../src/trace/synthetic.ts';
import { launchChromium } from '../../support/browser.ts';

function runs(): NamedRun[] {
  const jobs = syntheticTrace({ jobsPerHour: 120, days: 1 });
  const model = modelSchema.parse({ startup: { lognormal: { median: '40s', p95: '75s' } } });
  const cls = (labels: string[], extra: Record<string, unknown> = {}) => ({
    namespace: 'ci',
    match: { github: { labels: ['self-hosted', 'linux', ...labels] } },
    cost: { perVcpuHour: 0.04, perGibHour: 0.005 },
    ...extra,
  });
  const configs = [
    { lint: cls(['lint'], { minIdle: 3 }), build: cls(['build']), e2e: cls(['e2e'], { maxRunners: 4 }) },
    {
      lint: cls(['lint'], { warmPool: { queueTimeObjective: { p95: '30s' } } }),
      build: cls(['build']),
      e2e: cls(['e2e'], { maxRunners: 12 }),
    },
  ];
  return configs.map((classes, i) => {
    const config = parseConfig({ classes });
    const recommendations = recommendWarmPools(config, { jobs }, model);
    const result = simulate({
      config,
      trace: { jobs },
      model,
      warmPools: new Map(recommendations.map((r) => [r.className, r.plan])),
    });
    return { label: i === 0 ? 'fixed.yaml' : 'objective.yaml', result, recommendations };
  });
}

describe('the HTML report in a real browser', () => {
  it('draws every chart, from the file alone', async (ctx) => {
    const browser = await launchChromium(ctx);
    if (!browser) return;
    try {
      const dir = await mkdtemp(join(tmpdir(), 'gantry-report-'));
      const path = join(dir, 'report.html');
      await writeFile(
        path,
        renderHtmlReport({
          runs: runs(),
          traceLabel: 'synthetic',
          modelDescription: 'test',
          generatedAt: new Date(),
        }),
      );

      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      const requests: string[] = [];
      page.on('request', (request) => requests.push(request.url()));
      await page.goto(`file://${path}`, { timeout: 20_000 });
      expect(await page.title()).toBe('Gantry simulation: fixed.yaml vs objective.yaml');
      // Self-contained: the page asked for nothing but itself.
      expect(requests).toEqual([`file://${path}`]);
      // Two charts per class, each with lines the browser laid out at a real size.
      const charts = await page.$$eval('svg.chart', (svgs) =>
        svgs.map((svg) => {
          const box = svg.getBoundingClientRect();
          const lines = [...svg.querySelectorAll('path.series')].map((p) =>
            (p as unknown as { getTotalLength(): number }).getTotalLength(),
          );
          return { width: box.width, height: box.height, lines };
        }),
      );
      expect(charts).toHaveLength(6);
      for (const chart of charts) {
        expect(chart.width).toBeGreaterThan(500);
        expect(chart.height).toBeGreaterThan(100);
        expect(chart.lines.length).toBeGreaterThanOrEqual(2);
        expect(Math.max(...chart.lines)).toBeGreaterThan(100);
      }
      const classes = await page.$$eval('section.class h2', (hs) => hs.map((h) => h.textContent));
      expect(classes).toEqual(['build', 'e2e', 'lint']);
      expect(await page.$$eval('table.warm td', (cells) => cells.length)).toBe(168);
      const shot = join(dir, 'report.png');
      await page.screenshot({ path: shot, fullPage: true, timeout: 20_000 });
      expect((await stat(shot)).size).toBeGreaterThan(50_000);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
