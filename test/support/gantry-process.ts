import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;

/** Where a started Gantry listens, from its `gantry started` log line. */
export interface GantryListeners {
  /** Health, metrics and status. */
  url: string;
  /** GitHub's webhook listener, when it has one. */
  webhookUrl?: string;
}

export interface GantryChild {
  child: ChildProcess;
  pid: number;
  /** Exit code; null when ended by a signal. */
  exited: Promise<number | null>;
  /** Resolves once it logged `gantry started`; rejects if it exits first. */
  started: Promise<GantryListeners>;
}

export interface SpawnOptions {
  configPath: string;
  /** Set over this process's environment (KUBECONFIG, HOSTNAME, NODE_OPTIONS, …). */
  env?: Record<string, string>;
  /** Every line Gantry writes to stdout, with its parsed JSON when it is a log line. */
  onLine?: (line: string, entry: Record<string, unknown> | undefined) => void;
  /** What becomes of Gantry's stderr (default: inherited; with `logPath`, the file). */
  stderr?: 'inherit' | 'pipe' | 'ignore';
  /** Gantry's stdout and stderr are also appended to this file. */
  logPath?: string;
  /** In a process group of its own: a terminal's Ctrl-C reaches the caller, not Gantry. */
  detached?: boolean;
}

/** `gantry --config FILE` from source, as a user runs it. */
export function spawnGantry(options: SpawnOptions): GantryChild {
  const child = spawn(process.execPath, [MAIN, '--config', options.configPath], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', options.logPath ? 'pipe' : (options.stderr ?? 'inherit')],
    detached: options.detached ?? false,
  });
  if (options.logPath) {
    const log = createWriteStream(options.logPath, { flags: 'a' });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    child.once('close', () => log.end());
  }
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const started = new Promise<GantryListeners>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      let entry: Record<string, unknown> | undefined;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {}
      options.onLine?.(line, entry);
      if (entry?.msg === 'gantry started' && typeof entry.url === 'string') {
        resolve({
          url: entry.url,
          ...(typeof entry.webhookUrl === 'string' ? { webhookUrl: entry.webhookUrl } : {}),
        });
      }
    });
    void exited.then((code) => reject(new Error(`gantry exited with ${code} before it started`)));
  });
  // A rejection nobody waits for (the process outlived its start) is not an error of the caller's.
  started.catch(() => {});
  return { child, pid: child.pid ?? 0, exited, started };
}

/** Every sample of metric `name` in a Prometheus text scrape of `url`, by its label text ('{a="b"}'). */
export async function metricSamples(url: string, name: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
  const found = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const match = line.match(/^(\w+)(\{[^}]*\})? (\S+)$/);
    if (match?.[1] === name) found.set(match[2] ?? '', Number(match[3]));
  }
  return found;
}

/** The sum of the samples of metric `name` whose label text contains every one of `labels`. */
export async function metricSum(url: string, name: string, labels: readonly string[] = []): Promise<number> {
  let sum = 0;
  for (const [labelText, value] of await metricSamples(url, name)) {
    if (labels.every((label) => labelText.includes(label))) sum += value;
  }
  return sum;
}
