/**
 * The export's progress on a terminal: one line redrawn in place (a bar, what is done, the quota, a
 * wait for the rate limit), or on anything else a plain line now and then, so a log stays readable.
 */

export interface ExportProgress {
  reposDone: number;
  repos: number;
  /** Runs listed so far, and how many the listings said there are (grows as windows are listed). */
  runsDone: number;
  runsKnown: number;
  jobs: number;
  /** Pages GitHub answered 304 (unchanged since the cached ETag): they cost no quota. */
  notModified: number;
  quota?: { remaining: number; limit: number } | undefined;
  /** Set while the export waits for the rate limit to reset. */
  waitingUntil?: number | undefined;
}

export function formatProgress(p: ExportProgress, width = 24): string {
  const fraction = p.runsKnown > 0 ? Math.min(1, p.runsDone / p.runsKnown) : 0;
  const filled = Math.round(fraction * width);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  const parts = [
    `${bar} ${(fraction * 100).toFixed(0).padStart(3)}%`,
    `repos ${p.reposDone}/${p.repos}`,
    `runs ${p.runsDone.toLocaleString('en-US')}/${p.runsKnown.toLocaleString('en-US')}`,
    `jobs ${p.jobs.toLocaleString('en-US')}`,
  ];
  if (p.notModified > 0) parts.push(`${p.notModified.toLocaleString('en-US')} unchanged`);
  if (p.quota)
    parts.push(`quota ${p.quota.remaining.toLocaleString('en-US')}/${p.quota.limit.toLocaleString('en-US')}`);
  if (p.waitingUntil !== undefined) {
    parts.push(
      `waiting for the rate limit until ${new Date(p.waitingUntil).toISOString().slice(11, 19)} UTC`,
    );
  }
  return parts.join(' · ');
}

export interface ProgressWriter {
  update(p: ExportProgress): void;
  done(p: ExportProgress): void;
}

/** Writes progress to `stream` (standard error): in place on a terminal, every `everyMs` otherwise. */
export function progressWriter(
  stream: { write(text: string): unknown; isTTY?: boolean },
  now: () => number = Date.now,
  everyMs = 5_000,
): ProgressWriter {
  let lastAt = Number.NEGATIVE_INFINITY;
  let lastLine = '';
  return {
    update(p) {
      const line = formatProgress(p);
      if (stream.isTTY) {
        if (line !== lastLine) stream.write(`\r\u001b[2K${line}`);
      } else if (
        now() - lastAt >= everyMs ||
        (p.waitingUntil !== undefined && !lastLine.includes('waiting'))
      ) {
        stream.write(`${line}\n`);
        lastAt = now();
      }
      lastLine = line;
    },
    done(p) {
      const line = formatProgress(p);
      stream.write(stream.isTTY ? `\r\u001b[2K${line}\n` : `${line}\n`);
    },
  };
}
