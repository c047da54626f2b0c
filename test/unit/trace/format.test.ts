import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatTraceJob, parseTrace, readTraceFile } from '../../../src/trace/format.ts';

const line = (fields: Record<string, unknown>) =>
  JSON.stringify({
    job: 1,
    run: 10,
    repo: 'acme/app',
    labels: ['self-hosted', 'linux'],
    created: '2026-01-05T09:00:00Z',
    started: '2026-01-05T09:00:12Z',
    completed: '2026-01-05T09:02:12Z',
    ...fields,
  });

describe('the trace format', () => {
  it('reads jobs in order of creation, with a header, durations, cancellations and defaults', () => {
    const trace = parseTrace(
      [
        '{"format":"gantry-trace","version":1,"source":"github","repositories":["acme/app"]}',
        line({
          job: 2,
          created: '2026-01-05T09:05:00Z',
          started: undefined,
          completed: undefined,
          duration: 30.5,
          fork: true,
          visibility: 'public',
          event: 'pull_request',
        }),
        '',
        line({ job: 1 }),
        line({ job: 3, started: undefined, completed: '2026-01-05T09:01:00Z', conclusion: 'cancelled' }),
      ].join('\n'),
    );
    expect(trace.header).toMatchObject({ source: 'github', repositories: ['acme/app'] });
    expect(trace.jobs.map((j) => j.job)).toEqual(['1', '3', '2']);
    expect(trace.jobs[0]).toMatchObject({
      run: '10',
      attempt: 1,
      started: Date.parse('2026-01-05T09:00:12Z'),
      durationMs: 120_000,
      fork: false,
      visibility: 'private',
      event: 'push',
      branch: null,
    });
    expect(trace.jobs[1]).toMatchObject({ cancelledAt: Date.parse('2026-01-05T09:01:00Z') });
    expect(trace.jobs[1]?.durationMs).toBeUndefined();
    expect(trace.jobs[2]).toMatchObject({
      durationMs: 30_500,
      fork: true,
      visibility: 'public',
      event: 'pull_request',
    });
  });

  it('writes lines it reads back the same', () => {
    const trace = parseTrace(
      [
        line({ job: 7, attempt: 2, actor: 'dev', name: 'lint (1)' }),
        line({ job: 8, started: undefined, completed: undefined, duration: 4 }),
      ].join('\n'),
    );
    const again = parseTrace(trace.jobs.map(formatTraceJob).join('\n'));
    expect(again.jobs).toEqual(trace.jobs);
  });

  it('names the line and the field that is wrong', () => {
    const bad = (text: string) => () => parseTrace(text, 'week.jsonl');
    expect(bad(`${line({})}\n{"job": 2,`)).toThrow(/^week\.jsonl line 2: not JSON: /);
    expect(bad(line({ labels: [] }))).toThrow(
      'week.jsonl line 1: field labels: expected at least one label (runs-on)',
    );
    expect(bad(line({ created: 'yesterday' }))).toThrow(
      'week.jsonl line 1: field created: expected an RFC 3339 time such as 2026-01-05T09:00:00Z',
    );
    expect(bad(line({ colour: 'red' }))).toThrow('week.jsonl line 1: unknown field colour');
    expect(bad(line({ repo: 'app' }))).toThrow('week.jsonl line 1: field repo: expected owner/name');
    expect(bad(line({ started: '2026-01-05T08:00:00Z' }))).toThrow(
      'week.jsonl line 1: field started: is before created',
    );
    expect(bad(line({ started: undefined, completed: undefined }))).toThrow(
      'week.jsonl line 1: field duration: required',
    );
    expect(bad(line({ duration: 3 }))).toThrow(
      'week.jsonl line 1: field duration: give either duration or started and completed, not both',
    );
    expect(bad(`${line({})}\n${line({})}`)).toThrow('week.jsonl line 2: job 1 (attempt 1) appears twice');
    expect(bad(`${line({})}\n{"format":"gantry-trace","version":1}`)).toThrow(
      'week.jsonl line 2: a header is allowed on the first line only',
    );
    expect(bad('{"format":"gantry-trace","version":2}')).toThrow(
      'week.jsonl line 1: header: field version: expected version 1',
    );
    expect(bad('[1,2]')).toThrow('week.jsonl line 1: expected a JSON object (one job per line)');
    expect(bad('')).toThrow('week.jsonl: no jobs');
  });

  it('reads a file line by line and names it in errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gantry-trace-'));
    const path = join(dir, 't.jsonl');
    await writeFile(path, `${line({})}\n${line({ job: 2, labels: 'x' })}\n`);
    await expect(readTraceFile(path)).rejects.toThrow(`trace ${path} line 2: field labels:`);
    await expect(readTraceFile(join(dir, 'none.jsonl'))).rejects.toThrow(
      `cannot read trace ${join(dir, 'none.jsonl')}: no such file`,
    );
  });
});
