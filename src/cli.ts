import { parseArgs } from 'node:util';

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'run'; configPath: string | undefined }
  | { kind: 'status'; url: string }
  | { kind: 'usage-error'; message: string };

export const DEFAULT_STATUS_URL = 'http://127.0.0.1:8080';

export const usage = `Usage: gantry [--config FILE]
       gantry status [--url URL]

Ephemeral CI-runner autoscaler for Kubernetes.

Options:
  -c, --config FILE   configuration file (YAML or JSON); defaults apply to what it leaves out
  -h, --help          show this help and exit
  -v, --version       print the version and exit

gantry status prints a running Gantry's classes (queued, starting, idle and busy
runners, queue time p95, cost today) and recent events, from URL/api/status.
  -u, --url URL       the Gantry HTTP address (default ${DEFAULT_STATUS_URL})

Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad usage or configuration.`;

/** Parses the command line; never throws and never exits, so it is testable as a pure function. */
export function parseCommandLine(argv: readonly string[]): Command {
  if (argv[0] === 'status') return parseStatus(argv.slice(1));
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
