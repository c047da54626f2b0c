import { parseArgs } from 'node:util';
import type { SimulateOptions } from './simulate/command.ts';
import type { ExportOptions, SyntheticTraceOptions } from './trace/command.ts';

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'run'; configPath: string | undefined }
  | { kind: 'status'; url: string }
  | { kind: 'simulate'; options: SimulateOptions }
  | { kind: 'trace-export'; options: ExportOptions }
  | { kind: 'trace-synthetic'; options: SyntheticTraceOptions }
  | { kind: 'usage-error'; message: string };

export const DEFAULT_STATUS_URL = 'http://127.0.0.1:8080';

export const usage = `Usage: gantry [--config FILE]
       gantry status [--url URL]
       gantry simulate --config FILE --trace FILE [--compare FILE] [--model FILE]
                       [--startup SPEC] [--html FILE] [--json FILE]
       gantry trace export --repo OWNER/NAME... --since TIME [--until TIME]
                       [--config FILE | --token-file FILE [--api-url URL]] [--cache FILE] [--out FILE]
       gantry trace export --gantry URL [--since TIME] [--out FILE]
       gantry trace synthetic --jobs-per-hour N --days N [--seed N] [--start TIME] [--out FILE]

Ephemeral CI-runner autoscaler for Kubernetes.

Options:
  -c, --config FILE   configuration file (YAML or JSON); defaults apply to what it leaves out
  -h, --help          show this help and exit
  -v, --version       print the version and exit

gantry status prints a running Gantry's classes (queued, starting, idle and busy
runners, queue time p95, cost today) and recent events, from URL/api/status.
  -u, --url URL       the Gantry HTTP address (default ${DEFAULT_STATUS_URL})

gantry simulate replays a trace (docs/trace-format.md) through Gantry's classifier, planner
and ledger under a virtual clock and prints, per class, queue time p50/p95/p99, peak runners,
busy and idle cost and the jobs that waited on maxRunners or quota.
  --config FILE       the Gantry config, or Helm values with it under config:
  --trace FILE        the trace (JSON Lines)
  --compare FILE      a second config or values file, shown side by side
  --model FILE        the world around Gantry: start-up, registration, hand-off, runner
                      groups, quotas (YAML; every key has a default)
  --startup SPEC      runner start-up: 40s, lognormal:MEDIAN,P95, uniform:MIN,MAX, or
                      metrics:FILE|URL to fit it per class from gantry_runner_startup_seconds
  --html FILE         write a self-contained HTML report with charts
  --json FILE         write every figure as JSON

gantry trace export writes a trace of the jobs of GitHub repositories created in a window
(runs and jobs from GitHub's REST API), or of the jobs a running Gantry recorded.
  --repo OWNER/NAME   a repository (repeat it); default: the config's github.repositories
  --since TIME        start of the window: RFC 3339 (2026-01-05T00:00:00Z) or an age (7d, 12h)
  --until TIME        end of the window (default: now)
  --config FILE       take github.apiUrl and github.auth from this Gantry config
  --token-file FILE   a token to read GitHub with (instead of --config)
  --api-url URL       GitHub's REST API (default https://api.github.com)
  --cache FILE        keep ETags here: exporting again asks only for what changed
  --gantry URL        export what a running Gantry recorded, from URL/api/trace
  --out FILE          write there (default: standard output)

gantry trace synthetic writes a synthetic trace with a working-day rhythm.

Exit codes: 0 success (or clean shutdown), 1 runtime failure, 2 bad usage, input or configuration.`;

/** Parses the command line; never throws and never exits, so it is testable as a pure function. */
export function parseCommandLine(argv: readonly string[]): Command {
  if (argv[0] === 'status') return parseStatus(argv.slice(1));
  if (argv[0] === 'simulate') return parseSimulate(argv.slice(1));
  if (argv[0] === 'trace') {
    if (argv[1] === 'export') return parseTraceExport(argv.slice(2));
    if (argv[1] === 'synthetic') return parseTraceSynthetic(argv.slice(2));
    if (argv[1] === '--help' || argv[1] === '-h') return { kind: 'help' };
    return {
      kind: 'usage-error',
      message: `gantry trace: expected export or synthetic${argv[1] !== undefined ? `, got ${JSON.stringify(argv[1])}` : ''}`,
    };
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    return { kind: 'usage-error', message: (err as Error).message.split('\n')[0] ?? String(err) };
  }
  const { values } = parsed;
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  if (values.config === '') return { kind: 'usage-error', message: 'option --config needs a file path' };
  return { kind: 'run', configPath: values.config };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
}

function parseStatus(argv: readonly string[]): Command {
  let values: { url?: string | undefined; help?: boolean | undefined };
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: { url: { type: 'string', short: 'u' }, help: { type: 'boolean', short: 'h' } },
    }).values;
  } catch (err) {
    return { kind: 'usage-error', message: (err as Error).message.split('\n')[0] ?? String(err) };
  }
  if (values.help) return { kind: 'help' };
  const url = values.url ?? DEFAULT_STATUS_URL;
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    return { kind: 'usage-error', message: `option --url needs an http(s) URL, got ${JSON.stringify(url)}` };
  }
  return { kind: 'status', url };
}

const firstLine = (err: unknown) => (err as Error).message.split('\n')[0] ?? String(err);

function parseSimulate(argv: readonly string[]): Command {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string', short: 'c' },
        trace: { type: 'string', short: 't' },
        compare: { type: 'string' },
        model: { type: 'string' },
        startup: { type: 'string' },
        html: { type: 'string' },
        json: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    return { kind: 'usage-error', message: `gantry simulate: ${firstLine(err)}` };
  }
  if (values.help) return { kind: 'help' };
  const missing = (['config', 'trace'] as const).find((key) => !values[key]);
  if (missing) return { kind: 'usage-error', message: `gantry simulate: option --${missing} is required` };
  for (const key of ['compare', 'model', 'startup', 'html', 'json'] as const) {
    if (values[key] === '')
      return { kind: 'usage-error', message: `gantry simulate: option --${key} needs a value` };
  }
  const optional = (key: string) => (typeof values[key] === 'string' ? { [key]: values[key] } : {});
  return {
    kind: 'simulate',
    options: {
      configPath: values.config as string,
      tracePath: values.trace as string,
      ...(typeof values.compare === 'string' ? { comparePath: values.compare } : {}),
      ...(typeof values.model === 'string' ? { modelPath: values.model } : {}),
      ...optional('startup'),
      ...(typeof values.html === 'string' ? { htmlPath: values.html } : {}),
      ...(typeof values.json === 'string' ? { jsonPath: values.json } : {}),
    },
  };
}

const REPO = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

function parseTraceExport(argv: readonly string[]): Command {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        repo: { type: 'string', multiple: true },
        since: { type: 'string' },
        until: { type: 'string' },
        config: { type: 'string', short: 'c' },
        'token-file': { type: 'string' },
        'api-url': { type: 'string' },
        cache: { type: 'string' },
        gantry: { type: 'string' },
        out: { type: 'string', short: 'o' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    return { kind: 'usage-error', message: `gantry trace export: ${firstLine(err)}` };
  }
  if (values.help) return { kind: 'help' };
  const error = (message: string): Command => ({
    kind: 'usage-error',
    message: `gantry trace export: ${message}`,
  });
  const text = (key: string) => (typeof values[key] === 'string' ? (values[key] as string) : undefined);
  for (const key of ['since', 'until', 'config', 'token-file', 'api-url', 'cache', 'gantry', 'out']) {
    if (text(key) === '') return error(`option --${key} needs a value`);
  }
  const repos = (values.repo as string[] | undefined) ?? [];
  const badRepo = repos.find((repo) => !REPO.test(repo));
  if (badRepo !== undefined)
    return error(`option --repo: expected OWNER/NAME, got ${JSON.stringify(badRepo)}`);
  for (const key of ['api-url', 'gantry']) {
    const url = text(key);
    if (url !== undefined && (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol))) {
      return error(`option --${key}: expected an http(s) URL, got ${JSON.stringify(url)}`);
    }
  }
  const gantry = text('gantry');
  if (gantry !== undefined) {
    const conflicting = ['repo', 'config', 'token-file', 'api-url', 'cache', 'until'].find(
      (key) => values[key] !== undefined,
    );
    if (conflicting) return error(`option --${conflicting} does not go with --gantry`);
  } else {
    if (text('since') === undefined) return error('option --since is required (the start of the window)');
    if (text('config') !== undefined && text('token-file') !== undefined) {
      return error('give either --config or --token-file, not both');
    }
    if (text('config') === undefined && text('token-file') === undefined) {
      return error('option --config or --token-file is required (how to authenticate to GitHub)');
    }
    if (text('api-url') !== undefined && text('config') !== undefined) {
      return error('option --api-url goes with --token-file (--config has github.apiUrl)');
    }
  }
  const options: ExportOptions = {
    repos,
    ...(text('since') !== undefined ? { since: text('since') as string } : {}),
    ...(text('until') !== undefined ? { until: text('until') as string } : {}),
    ...(text('config') !== undefined ? { configPath: text('config') as string } : {}),
    ...(text('token-file') !== undefined ? { tokenFile: text('token-file') as string } : {}),
    ...(text('api-url') !== undefined ? { apiUrl: text('api-url') as string } : {}),
    ...(text('cache') !== undefined ? { cachePath: text('cache') as string } : {}),
    ...(gantry !== undefined ? { gantryUrl: gantry } : {}),
    ...(text('out') !== undefined ? { outPath: text('out') as string } : {}),
  };
  return { kind: 'trace-export', options };
}

function parseTraceSynthetic(argv: readonly string[]): Command {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        'jobs-per-hour': { type: 'string' },
        days: { type: 'string' },
        seed: { type: 'string' },
        start: { type: 'string' },
        out: { type: 'string', short: 'o' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    return { kind: 'usage-error', message: `gantry trace synthetic: ${firstLine(err)}` };
  }
  if (values.help) return { kind: 'help' };
  const error = (message: string): Command => ({
    kind: 'usage-error',
    message: `gantry trace synthetic: ${message}`,
  });
  const number = (key: string, check: (n: number) => boolean, expected: string) => {
    const raw = values[key];
    if (raw === undefined) return undefined;
    const n = Number(raw);
    return typeof raw === 'string' && raw.trim() !== '' && check(n)
      ? n
      : (error(`option --${key}: expected ${expected}, got ${JSON.stringify(raw)}`) as Command);
  };
  const jobsPerHour = number(
    'jobs-per-hour',
    (n) => Number.isFinite(n) && n > 0 && n <= 100_000,
    'a number of jobs > 0',
  );
  const days = number(
    'days',
    (n) => Number.isFinite(n) && n > 0 && n <= 366,
    'a number of days between 0 and 366',
  );
  const seed = number('seed', Number.isInteger, 'a whole number');
  for (const value of [jobsPerHour, days, seed]) if (typeof value === 'object') return value;
  if (jobsPerHour === undefined) return error('option --jobs-per-hour is required');
  if (days === undefined) return error('option --days is required');
  const start = values.start;
  if (typeof start === 'string' && Number.isNaN(Date.parse(start))) {
    return error(`option --start: expected an RFC 3339 time, got ${JSON.stringify(start)}`);
  }
  return {
    kind: 'trace-synthetic',
    options: {
      jobsPerHour: jobsPerHour as number,
      days: days as number,
      ...(typeof seed === 'number' ? { seed } : {}),
      ...(typeof start === 'string' ? { start: Date.parse(start) } : {}),
      ...(typeof values.out === 'string' && values.out !== '' ? { outPath: values.out } : {}),
    },
  };
}
