import { parseArgs } from 'node:util';

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'run'; configPath: string | undefined }
  | { kind: 'usage-error'; message: string };

export const usage = `Usage: gantry [--config FILE]

Ephemeral CI-runner autoscaler for Kubernetes.

Options:
  -c, --config FILE   configuration file (YAML or JSON); defaults apply to what it leaves out
  -h, --help          show this help and exit
  -v, --version       print the version and exit

Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad usage or configuration.`;

/** Parses the command line; never throws and never exits, so it is testable as a pure function. */
export function parseCommandLine(argv: readonly string[]): Command {
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
