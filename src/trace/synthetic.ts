import type { EpochMillis } from '../model/job.ts';
import { seededRandom } from '../util/distribution.ts';
import type { TraceJob } from './format.ts';

/**
 * A synthetic trace with a working-day rhythm: arrivals follow a daily curve peaking mid-afternoon
 * (UTC) on weekdays, quiet at night and at weekends, scaled so the week averages `jobsPerHour`. Runs
 * bring 1 to 8 jobs at once (a matrix). Three kinds of job, each with its own labels and durations:
 * lint (short, wide matrices), build (medium) and e2e (long, few). For planning and benchmarks, where a
 * real export is not at hand.
 */

export interface SyntheticOptions {
  /** Average over the whole span. */
  jobsPerHour: number;
  days: number;
  /** Default: Monday 2026-01-05 00:00 UTC. */
  start?: EpochMillis;
  seed?: number;
  repositories?: number;
}

const HOUR_MS = 3_600_000;

interface Kind {
  labels: string[];
  /** Share of runs. */
  weight: number;
  batch: readonly number[];
  /** Duration range, seconds. */
  seconds: readonly [number, number];
}

const KINDS: readonly Kind[] = [
  {
    labels: ['self-hosted', 'linux', 'lint'],
    weight: 0.45,
    batch: [1, 2, 2, 3, 4, 4, 6, 8],
    seconds: [40, 240],
  },
  { labels: ['self-hosted', 'linux', 'build'], weight: 0.4, batch: [1, 1, 2, 2, 3], seconds: [180, 900] },
  { labels: ['self-hosted', 'linux', 'e2e'], weight: 0.15, batch: [1, 1, 1, 2], seconds: [600, 2400] },
];

/** Relative busyness at `at` (before scaling): a daily curve on weekdays, a tenth of it at weekends. */
function profile(at: EpochMillis): number {
  const date = new Date(at);
  const hour = date.getUTCHours() + date.getUTCMinutes() / 60;
  const weekday = date.getUTCDay() >= 1 && date.getUTCDay() <= 5;
  // Working hours 08:00–19:00 around a 14:00 peak, a low floor at night.
  const day = Math.exp(-((hour - 14) ** 2) / (2 * 2.6 ** 2));
  const night = 0.04;
  return (weekday ? 1 : 0.12) * (night + day);
}

function pickKind(u: number): Kind {
  let left = u;
  for (const kind of KINDS) {
    left -= kind.weight;
    if (left <= 0) return kind;
  }
  return KINDS[0] as Kind;
}

export function syntheticTrace(options: SyntheticOptions): TraceJob[] {
  const random = seededRandom(options.seed ?? 7);
  const start = options.start ?? Date.UTC(2026, 0, 5);
  const end = start + options.days * 24 * HOUR_MS;
  const repos = Array.from({ length: options.repositories ?? 24 }, (_, i) => `acme/service-${i + 1}`);
  // Scale the curve so that the span averages jobsPerHour.
  const step = 60_000;
  let area = 0;
  let peak = 0;
  for (let t = start; t < end; t += step) {
    const p = profile(t);
    area += p * step;
    peak = Math.max(peak, p);
  }
  const meanBatch =
    KINDS.reduce((sum, k) => sum + k.weight * (k.batch.reduce((a, b) => a + b, 0) / k.batch.length), 0) /
    KINDS.reduce((sum, k) => sum + k.weight, 0);
  const totalJobs = options.jobsPerHour * (options.days * 24);
  const runsPerMsAtUnit = totalJobs / meanBatch / area;
  // Thinning: candidates at the peak rate, each kept with the curve's share of it.
  const maxRate = runsPerMsAtUnit * peak;
  const jobs: TraceJob[] = [];
  let runId = 9_000_000;
  let jobId = 50_000_000;
  for (let t = start; ; ) {
    t += -Math.log(Math.max(random(), Number.MIN_VALUE)) / maxRate;
    if (t >= end) break;
    if (random() * maxRate > runsPerMsAtUnit * profile(t)) continue;
    const created = Math.floor(t / 1000) * 1000;
    const kind = pickKind(random());
    const repo = repos[Math.floor(random() * repos.length)] as string;
    const size = kind.batch[Math.floor(random() * kind.batch.length)] as number;
    runId += 1;
    for (let i = 0; i < size; i++) {
      jobId += 1;
      const seconds = kind.seconds[0] + random() * (kind.seconds[1] - kind.seconds[0]);
      jobs.push({
        job: String(jobId),
        run: String(runId),
        attempt: 1,
        repo,
        labels: kind.labels,
        created,
        durationMs: Math.round(seconds) * 1000,
        fork: false,
        visibility: 'private',
        event: 'push',
        branch: 'main',
        name: `${kind.labels.at(-1)} (${i + 1})`,
      });
    }
  }
  return jobs;
}
