import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { loadConfigFile } from '../config/load.ts';
import type { EpochMillis } from '../model/job.ts';
import { createGithubApi } from '../sources/github/api.ts';
import {
  createAppAuth,
  createTokenAuth,
  type GithubAuth,
  parseAppPrivateKey,
} from '../sources/github/auth.ts';
import { type CachedBody, createGithubClient } from '../sources/github/client.ts';
import { type Clock, systemClock } from '../sources/github/clock.ts';
import { createGithubMetrics } from '../sources/github/metrics.ts';
import { InputError } from '../util/input-error.ts';
import { withRetry } from '../util/retry.ts';
import { CALL_RETRIES } from '../util/schedules.ts';
import { formatTraceHeader, formatTraceJob, parseTraceLine, type TraceJob } from './format.ts';
import { exportFromGithub, type GithubExportReport, reducedEtagStore } from './github-export.ts';
import { progressWriter } from './progress.ts';
import { syntheticTrace } from './synthetic.ts';

export interface ExportOptions {
  repos: string[];
  /** RFC 3339, or an age such as 7d, 12h, 30m. */
  since?: string;
  until?: string;
  configPath?: string;
  tokenFile?: string;
  apiUrl?: string;
  cachePath?: string;
  gantryUrl?: string;
  outPath?: string;
}

export interface SyntheticTraceOptions {
  jobsPerHour: number;
  days: number;
  seed?: number;
  start?: EpochMillis;
  outPath?: string;
}

export interface TraceCommandIo {
  /** Where the trace goes without --out. */
  stdout: { write(text: string): unknown };
  /** Progress and the closing summary. */
  stderr: { write(text: string): unknown; isTTY?: boolean };
  clock?: Clock;
  /** GitHub's page size (100 in use; smaller to exercise pagination). */
  perPage?: number;
  keepQuota?: number;
}

const GANTRY_TIMEOUT_MS = 30_000;
const DEFAULT_KEEP_QUOTA = 500;

/** A time flag: RFC 3339, or an age before `now` (7d, 12h, 30m, 90s). */
export function parseTimeFlag(flag: string, text: string, now: EpochMillis): EpochMillis {
  const age = /^(\d+)([dhms])$/.exec(text.trim());
  if (age) {
    const unit = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 }[age[2] as 'd' | 'h' | 'm' | 's'];
    return now - Number(age[1]) * unit;
  }
  if (
    !/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(text.trim()) ||
    Number.isNaN(Date.parse(text))
  ) {
    throw new InputError(
      `option --${flag}: expected an RFC 3339 time (2026-01-05T00:00:00Z) or an age (7d, 12h), got ${JSON.stringify(text)}`,
    );
  }
  return Date.parse(text);
}

/** Lines go to the file (written whole, then moved into place) or to standard output. */
async function openSink(outPath: string | undefined, io: TraceCommandIo) {
  if (!outPath) return { write: (line: string) => void io.stdout.write(`${line}\n`), close: async () => {} };
  const partial = `${outPath}.partial`;
  let stream: WriteStream;
  try {
    await mkdir(dirname(outPath), { recursive: true });
    stream = createWriteStream(partial);
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
  } catch (err) {
    throw new InputError(`cannot write ${outPath}: ${(err as Error).message}`);
  }
  return {
    write: (line: string) => void stream.write(`${line}\n`),
    close: async () => {
      await new Promise<void>((resolve, reject) =>
        stream.end((err?: Error | null) => (err ? reject(err) : resolve())),
      );
      await rename(partial, outPath);
    },
  };
}

async function readSecretFile(path: string, what: string): Promise<string> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    if (!text) throw new InputError(`${what} ${path} is empty`);
    return text;
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(
      `cannot read ${what} ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
}

async function loadEtags(path: string | undefined): Promise<Map<string, CachedBody>> {
  if (!path) return new Map();
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new InputError(`cannot read cache ${path}: ${(err as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text) as { version?: number; entries?: [string, CachedBody][] };
    if (parsed.version !== 1 || !Array.isArray(parsed.entries)) throw new Error('not an export cache');
    return new Map(parsed.entries);
  } catch (err) {
    throw new InputError(
      `cache ${path} is not an export cache (${(err as Error).message}); remove it to start afresh`,
    );
  }
}

async function saveEtags(path: string | undefined, entries: Map<string, CachedBody>): Promise<void> {
  if (!path) return;
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.partial`, JSON.stringify({ version: 1, entries: [...entries] }));
  await rename(`${path}.partial`, path);
}

/** `gantry trace export`: from GitHub, or from a running Gantry. */
export async function runTraceExport(options: ExportOptions, io: TraceCommandIo): Promise<void> {
  if (options.gantryUrl) {
    await exportFromGantry(options, io);
    return;
  }
  const clock = io.clock ?? systemClock;
  const now = clock.now();
  const since = parseTimeFlag('since', options.since ?? '', now);
  const until = options.until !== undefined ? parseTimeFlag('until', options.until, now) : now;
  if (until <= since) throw new InputError('option --until: expected a time after --since');

  let apiUrl = options.apiUrl ?? 'https://api.github.com';
  let repos = options.repos;
  let timeoutMs = 10_000;
  let maxRetries = 3;
  let auth: GithubAuth | undefined;
  let appAuth: { appId: string | number; installationId: number; pem: string } | undefined;
  if (options.configPath) {
    const config = await loadConfigFile(options.configPath);
    const github = config.github;
    if (!github.auth)
      throw new InputError(`config file ${options.configPath}: github.auth is needed to read GitHub`);
    apiUrl = github.apiUrl;
    timeoutMs = github.requestTimeoutSeconds * 1000;
    maxRetries = github.maxRetries;
    if (repos.length === 0) repos = github.repositories;
    if (github.auth.kind === 'token') {
      auth = createTokenAuth(
        github.auth.token ?? (await readSecretFile(github.auth.tokenPath ?? '', 'github.auth.tokenPath')),
      );
    } else {
      const pem =
        github.auth.privateKey ??
        (await readSecretFile(github.auth.privateKeyPath ?? '', 'github.auth.privateKeyPath'));
      appAuth = { appId: github.auth.appId, installationId: github.auth.installationId, pem };
    }
  } else if (options.tokenFile) {
    auth = createTokenAuth(await readSecretFile(options.tokenFile, 'token file'));
  }
  if (repos.length === 0) {
    throw new InputError(
      'no repository to export: give --repo OWNER/NAME (or github.repositories in the config)',
    );
  }

  const etags = await loadEtags(options.cachePath);
  let current: GithubAuth | undefined = auth;
  const client = createGithubClient({
    baseUrl: apiUrl,
    authorize: () => (current as GithubAuth).authorization(),
    onUnauthorized: () => {
      current?.invalidate();
      return current?.kind === 'app';
    },
    clock,
    logger: pino({ level: 'silent' }),
    metrics: createGithubMetrics(new Registry()),
    timeoutMs,
    maxRetries,
    etagStore: reducedEtagStore(etags),
    userAgent: 'gantry-trace-export',
  });
  if (appAuth) {
    const api = createGithubApi(client, 100);
    let key: ReturnType<typeof parseAppPrivateKey>;
    try {
      key = parseAppPrivateKey(appAuth.pem);
    } catch (err) {
      throw new InputError(`github.auth: ${(err as Error).message}`);
    }
    current = createAppAuth({
      appId: appAuth.appId,
      installationId: appAuth.installationId,
      privateKey: () => key,
      // Reading runs and jobs is all the export needs.
      exchange: (jwt, installationId) =>
        api.createInstallationToken(jwt, installationId, {
          permissions: { actions: 'read', metadata: 'read' },
        }),
      clock,
      refreshMarginMs: 300_000,
    });
  }

  const sink = await openSink(options.outPath, io);
  const progress = progressWriter(io.stderr, () => clock.now());
  sink.write(
    formatTraceHeader({
      source: 'github',
      repositories: repos,
      from: new Date(since).toISOString(),
      to: new Date(until).toISOString(),
      exportedAt: new Date(now).toISOString(),
    }),
  );
  let report: GithubExportReport;
  let last: Parameters<typeof progress.done>[0] | undefined;
  try {
    report = await exportFromGithub({
      client,
      clock,
      repos,
      since,
      until,
      perPage: io.perPage ?? 100,
      keepQuota: io.keepQuota ?? DEFAULT_KEEP_QUOTA,
      onProgress: (p) => {
        last = p;
        progress.update(p);
      },
      onJob: (job) => sink.write(formatTraceJob(job)),
    });
  } finally {
    // What was fetched is kept even when the export stops half way: the next one asks for less.
    await saveEtags(options.cachePath, etags);
  }
  await sink.close();
  if (last) progress.done(last);
  io.stderr.write(
    `exported ${report.jobs.toLocaleString('en-US')} jobs of ${report.runs.toLocaleString('en-US')} runs` +
      ` (${report.notModified.toLocaleString('en-US')} pages unchanged since the cache)` +
      (report.unfinished > 0 ? `; left out ${report.unfinished} unfinished jobs` : '') +
      (report.skipped > 0 ? `; left out ${report.skipped} skipped jobs` : '') +
      (report.truncatedWindows > 0
        ? `; ${report.truncatedWindows} one-second windows had more runs than GitHub lists`
        : '') +
      `${options.outPath ? ` to ${options.outPath}` : ''}\n`,
  );
}

class RetryableFetch extends Error {}

/** The jobs a running Gantry recorded, from its /api/trace. */
async function exportFromGantry(options: ExportOptions, io: TraceCommandIo): Promise<void> {
  const clock = io.clock ?? systemClock;
  const url = new URL('/api/trace', options.gantryUrl);
  if (options.since !== undefined)
    url.searchParams.set('since', new Date(parseTimeFlag('since', options.since, clock.now())).toISOString());
  const text = await withRetry(
    async () => {
      let res: Response;
      try {
        res = await fetch(url, { signal: AbortSignal.timeout(GANTRY_TIMEOUT_MS) });
      } catch (err) {
        throw new RetryableFetch(`${url}: ${(err as Error).message}`);
      }
      if (res.status >= 500) throw new RetryableFetch(`${url}: HTTP ${res.status}`);
      if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
      return res.text();
    },
    { ...CALL_RETRIES.commandFetch, isRetryable: (err) => err instanceof RetryableFetch },
  );
  // Checked line by line: a Gantry of another version (or another server) must not pass for a trace.
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  let jobs = 0;
  lines.forEach((line, index) => {
    const parsed = parseTraceLine(line, `${url} line ${index + 1}`, index === 0);
    if (parsed && !('format' in parsed)) jobs++;
  });
  if (lines.length === 0 || !lines[0]?.includes('"format"')) throw new Error(`${url}: not a Gantry trace`);
  const sink = await openSink(options.outPath, io);
  for (const line of lines) sink.write(line);
  await sink.close();
  io.stderr.write(
    `exported ${jobs.toLocaleString('en-US')} jobs from ${options.gantryUrl}${options.outPath ? ` to ${options.outPath}` : ''}\n`,
  );
}

/** `gantry trace synthetic`. */
export async function runTraceSynthetic(options: SyntheticTraceOptions, io: TraceCommandIo): Promise<void> {
  const jobs: TraceJob[] = syntheticTrace(options);
  const sink = await openSink(options.outPath, io);
  const start = options.start ?? Date.UTC(2026, 0, 5);
  sink.write(
    formatTraceHeader({
      source: 'synthetic',
      from: new Date(start).toISOString(),
      to: new Date(start + options.days * 86_400_000).toISOString(),
      note: `${options.jobsPerHour} jobs per hour on average over ${options.days} days, seed ${options.seed ?? 7}`,
    }),
  );
  for (const job of jobs) sink.write(formatTraceJob(job));
  await sink.close();
  io.stderr.write(
    `wrote ${jobs.length.toLocaleString('en-US')} jobs${options.outPath ? ` to ${options.outPath}` : ''}\n`,
  );
}
