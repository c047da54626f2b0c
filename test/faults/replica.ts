import { createWriteStream, readFileSync } from 'node:fs';
import { inject } from 'vitest';
import { metricSamples, metricSum, spawnGantry } from '../support/gantry-process.ts';

// Gantry as a real process, as the fault scenarios run it: its logs, memory and metrics.

/**
 * Old-space bound of each Gantry process. On a large machine V8 collects lazily: under a burst of
 * pod churn an unbounded Gantry reached 388 MiB resident, nearly all of it garbage. With the old
 * space bounded, what is resident is what Gantry keeps, and a leak ends the process (heap out of
 * memory) instead of hiding in slack.
 */
export const HEAP_MIB = 128;
/**
 * Bound of a Gantry process's resident set: an idle Gantry run from source holds about 160 MiB
 * (Node.js, its dependencies, the type-stripped sources), plus the bounded heap's working set.
 */
export const RSS_LIMIT_MIB = 300;

export interface LogEntry {
  at: number;
  level: number;
  msg: string;
}

export interface GantryProcess {
  name: string;
  url: string;
  /** GitHub's webhook listener. */
  webhookUrl: string;
  pid: number;
  /** Exit code; null when ended by a signal. */
  exited: Promise<number | null>;
  running(): boolean;
  logs: LogEntry[];
  /** Highest VmRSS seen, KiB (sampled from /proc every 250 ms while it runs). */
  peakRssKiB(): number;
  rssKiB(): number;
  /** The sum of the samples of metric `name` whose labels contain every one of `labels`. */
  metric(name: string, labels?: string[]): Promise<number>;
  /** Every sample of metric `name`, by its label text ('{a="b"}'). */
  samples(name: string): Promise<Map<string, number>>;
  isLeader(): Promise<boolean>;
  signal(signal: NodeJS.Signals): void;
}

function readRssKiB(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

export async function startGantryProcess(
  name: string,
  configPath: string,
  logPath: string,
): Promise<GantryProcess> {
  const file = createWriteStream(logPath, { flags: 'a' });
  const logs: LogEntry[] = [];
  const gantry = spawnGantry({
    configPath,
    env: {
      KUBECONFIG: inject('faultsKubeconfig'),
      HOSTNAME: name,
      // Replicas reach each other at the loopback address they listen on (see election/advertise.ts).
      POD_IP: '',
      // As the chart runs it, with less old space.
      NODE_OPTIONS: `--max-old-space-size=${HEAP_MIB} --max-semi-space-size=8`,
    },
    stderr: 'pipe',
    onLine: (line, entry) => {
      file.write(`${line}\n`);
      if (process.env.GANTRY_TEST_LOG) process.stderr.write(`[${name}] ${line}\n`);
      if (entry) logs.push({ at: Date.now(), level: Number(entry.level ?? 0), msg: String(entry.msg ?? '') });
    },
  });
  const { child, pid, exited } = gantry;
  let running = true;
  void exited.then(() => {
    running = false;
  });
  child.stderr?.pipe(file, { end: false });
  let peak = 0;
  let last = 0;
  const sampler = setInterval(() => {
    last = readRssKiB(pid);
    peak = Math.max(peak, last);
  }, 250);
  sampler.unref();
  void exited.then(() => clearInterval(sampler));
  // 'close' comes once its output has been read to the end: nothing is written to the file after it.
  child.on('close', () => file.end());
  const { url, webhookUrl } = await gantry.started.catch((err: Error) => {
    throw new Error(`${name}: ${err.message} (${logPath})`);
  });
  const samples = (metricName: string) => metricSamples(url, metricName);
  const metric = (metricName: string, labels: string[] = []) => metricSum(url, metricName, labels);
  return {
    name,
    url,
    webhookUrl: webhookUrl ?? '',
    pid,
    exited,
    running: () => running,
    logs,
    peakRssKiB: () => Math.max(peak, readRssKiB(pid)),
    rssKiB: () => readRssKiB(pid) || last,
    metric,
    samples,
    isLeader: async () => (await metric('gantry_leader')) === 1,
    signal: (sig) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    },
  };
}
