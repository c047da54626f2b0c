import { describe, expect, it } from 'vitest';
import { fitStartupHistogram } from '../../../src/simulate/startup-fit.ts';
import { median, sample, seededRandom } from '../../../src/util/distribution.ts';

const METRICS = `# HELP gantry_runner_startup_seconds Time runner pods took from creation to a running container.
# TYPE gantry_runner_startup_seconds histogram
gantry_runner_startup_seconds_bucket{le="1",class="lint"} 0
gantry_runner_startup_seconds_bucket{le="2",class="lint"} 0
gantry_runner_startup_seconds_bucket{le="5",class="lint"} 10
gantry_runner_startup_seconds_bucket{le="10",class="lint"} 90
gantry_runner_startup_seconds_bucket{le="20",class="lint"} 100
gantry_runner_startup_seconds_bucket{le="+Inf",class="lint"} 100
gantry_runner_startup_seconds_sum{class="lint"} 720
gantry_runner_startup_seconds_count{class="lint"} 100
gantry_runner_startup_seconds_bucket{le="1",class="idle"} 0
gantry_runner_startup_seconds_bucket{le="+Inf",class="idle"} 0
gantry_job_queue_seconds_bucket{le="5",source="github",class="lint"} 3
`;

describe('start-up fitted from gantry_runner_startup_seconds', () => {
  it('follows the histogram’s buckets, per class with samples', () => {
    const fitted = fitStartupHistogram(METRICS, 'metrics');
    expect([...fitted.keys()]).toEqual(['lint']);
    const lint = fitted.get('lint');
    if (!lint) throw new Error('no fit');
    expect(lint).toEqual({
      kind: 'empirical',
      points: [
        [5, 0.1],
        [10, 0.9],
        [20, 1],
      ],
    });
    // Half the starts took 5 to 10 s, evenly spread: the median is at 10% + 40% of that bucket.
    expect(median(lint)).toBeCloseTo(7.5, 5);
    const random = seededRandom(3);
    const draws = Array.from({ length: 2_000 }, () => sample(lint, random));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThanOrEqual(20);
    expect(draws.filter((d) => d > 5 && d <= 10).length / draws.length).toBeCloseTo(0.8, 1);
  });

  it('refuses text without the histogram, naming where it came from', () => {
    expect(() => fitStartupHistogram('up 1\n', 'http://gantry:8080/metrics')).toThrow(
      'http://gantry:8080/metrics: no gantry_runner_startup_seconds_bucket series',
    );
  });
});
