import { describe, expect, it } from 'vitest';
import { ArrivalHistory, historyStateSchema } from '../../../src/warm-pool/history.ts';
import { hourOfWeek } from '../../../src/warm-pool/schedule.ts';

const HOUR = 3_600_000;
const WEEK = 168 * HOUR;
/** Monday 2026-01-05 00:00 UTC: hour 0 of the week. */
const MONDAY = Date.UTC(2026, 0, 5);

function jobs(
  history: ArrivalHistory,
  className: string,
  from: number,
  count: number,
  spacingMs: number,
  runs = count,
) {
  for (let i = 0; i < count; i++) history.noteJob(className, from + i * spacingMs, `run-${from}-${i % runs}`);
}

describe('arrivals learned by hour of the week', () => {
  it('counts an hour the week it is seen, and quiet hours as quiet', () => {
    expect(hourOfWeek(MONDAY + 9 * HOUR + 5)).toBe(9);
    expect(hourOfWeek(MONDAY + 6 * 24 * HOUR + 23 * HOUR)).toBe(167);
    const history = new ArrivalHistory();
    history.observeFrom(MONDAY);
    jobs(history, 'lint', MONDAY + 9 * HOUR, 40, 60_000);
    history.roll(MONDAY + 12 * HOUR);
    expect(history.jobsPerHour('lint', 9)).toBe(40);
    expect(history.jobsPerHour('lint', 10)).toBe(0);
    // An hour not seen yet: the same hour of the days seen.
    expect(history.jobsPerHour('lint', 24 + 9)).toBe(40);
    expect(history.jobsPerHour('other', 9)).toBe(0);
  });

  it('averages the same hour over the weeks, the latest weighing at least a quarter', () => {
    const history = new ArrivalHistory();
    history.observeFrom(MONDAY);
    for (let week = 0; week < 6; week++) {
      jobs(history, 'lint', MONDAY + week * WEEK + 9 * HOUR, week < 4 ? 40 : 80, 30_000);
      history.roll(MONDAY + week * WEEK + 10 * HOUR);
      history.roll(MONDAY + (week + 1) * WEEK);
    }
    // Four weeks of 40 (the average), then two of 80, each moving it a quarter of the way.
    expect(history.jobsPerHour('lint', 9)).toBeCloseTo(40 + 40 / 4 + (80 - 50) / 4, 1);
  });

  it('scales an hour watched in part, skips one barely watched, and learns nothing while down', () => {
    const history = new ArrivalHistory();
    // Gantry starts at 09:30: half of hour 9 watched, 20 jobs in it.
    history.observeFrom(MONDAY + 9.5 * HOUR);
    jobs(history, 'lint', MONDAY + 9.5 * HOUR, 20, 60_000);
    history.roll(MONDAY + 10.5 * HOUR);
    expect(history.jobsPerHour('lint', 9)).toBeCloseTo(40, 5);
    // Down from 10:30 to 15:55: hours 11 to 14 are not learned, 15 is barely watched.
    history.observeFrom(MONDAY + 15 * HOUR + 55 * 60_000);
    history.roll(MONDAY + 17 * HOUR);
    const state = history.toJSON();
    const seen = state.classes.lint?.hoursSeen ?? [];
    expect(seen.slice(9, 17)).toEqual([1, 1, 0, 0, 0, 0, 0, 1]);
  });

  it('learns how many jobs a run brings, and keeps the latest waits', () => {
    const history = new ArrivalHistory();
    history.observeFrom(MONDAY);
    // Ten runs of 4 jobs, arriving together.
    for (let run = 0; run < 10; run++) {
      for (let j = 0; j < 4; j++) history.noteJob('lint', MONDAY + run * 120_000, `run-${run}`);
    }
    history.roll(MONDAY + 2 * HOUR);
    expect(history.batchSizes('lint')).toEqual([{ size: 4, weight: 10 }]);
    for (let i = 0; i < 250; i++) history.noteLatency('lint', 'cold', i);
    history.noteLatency('lint', 'cold', Number.NaN);
    const cold = history.latencies('lint', 'cold');
    expect(cold).toHaveLength(200);
    expect(cold[0]).toBe(50);
  });

  it('round-trips through its JSON (what the ConfigMap holds)', () => {
    const history = new ArrivalHistory();
    history.observeFrom(MONDAY);
    jobs(history, 'lint', MONDAY + HOUR, 12, 60_000, 3);
    history.noteLatency('lint', 'warm', 1.25);
    history.roll(MONDAY + 3 * HOUR);
    jobs(history, 'lint', MONDAY + 3 * HOUR, 5, 60_000);
    const state = historyStateSchema.parse(JSON.parse(JSON.stringify(history.toJSON())));
    const again = new ArrivalHistory(state);
    expect(again.toJSON()).toEqual(history.toJSON());
    // The hour in progress goes on counting after a restart within it.
    again.roll(MONDAY + 4 * HOUR);
    expect(again.jobsPerHour('lint', 3)).toBe(5);
  });
});
