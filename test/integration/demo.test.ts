import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { statusOf, testKubeConfig, until } from '../support/kube.ts';

// `npm run demo` as a person runs it: `node hack/demo/main.ts` as a child process, its output read as
// text, and every process it starts (Gantry, the control plane's components) followed by pid, so
// that "stops everything" is checked against the process table rather than taken on trust.

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLASSES = ['lint', 'integration', 'untrusted', 'release'];

interface ProcessInfo {
  pid: number;
  /** Start time in clock ticks since boot: with the pid, it tells a process from a later one reusing its pid. */
  startTime: string;
  command: string;
}

/** A process's parent, start time and state from /proc, or undefined when it is gone. */
function procStat(pid: number): { ppid: number; startTime: string; state: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: the fields that follow come after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', ppid: Number(fields[1]), startTime: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

/** Alive and the same process (a zombie has stopped running; it only waits to be reaped). */
function running(proc: ProcessInfo): boolean {
  const stat = procStat(proc.pid);
  return stat !== undefined && stat.startTime === proc.startTime && stat.state !== 'Z';
}

/** Every process descending from `root`, now. */
function descendantsOf(root: number): ProcessInfo[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (stat) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), Number(entry)]);
  }
  const found: ProcessInfo[] = [];
  const pending = [...(children.get(root) ?? [])];
  for (let pid = pending.pop(); pid !== undefined; pid = pending.pop()) {
    const stat = procStat(pid);
    if (!stat) continue;
    let command = '';
    try {
      command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    } catch {}
    found.push({ pid, startTime: stat.startTime, command });
    pending.push(...(children.get(pid) ?? []));
  }
  return found;
}

interface DemoRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Every process seen descending from the demo while it ran. */
  seen: Map<number, ProcessInfo>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const runs: DemoRun[] = [];

function startDemo(args: string[], env: NodeJS.ProcessEnv): DemoRun {
  const child = spawn(process.execPath, ['hack/demo/main.ts', ...args], {
    cwd: repoRoot,
    env,
    // Its own process group, so that a failed test can stop all of it (see afterEach).
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const seen = new Map<number, ProcessInfo>();
  const pid = child.pid ?? 0;
  const watch = setInterval(() => {
    // The latest look (a process caught between fork and exec still shows its parent's command),
    // but not an exited one's, whose command line is empty.
    for (const proc of descendantsOf(pid)) if (proc.command || !seen.has(proc.pid)) seen.set(proc.pid, proc);
  }, 200);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('exit', (code, signal) => {
      clearInterval(watch);
      done({ code, signal });
    }),
  );
  const run = { child, stdout: () => stdout, stderr: () => stderr, seen, exited };
  runs.push(run);
  return run;
}

afterEach(async () => {
  // A failed test leaves nothing behind either.
  for (const run of runs.splice(0)) {
    if (run.child.exitCode === null && run.child.signalCode === null) {
      try {
        process.kill(-(run.child.pid ?? 0), 'SIGKILL');
      } catch {}
    }
    for (const proc of run.seen.values()) {
      try {
        if (running(proc)) process.kill(proc.pid, 'SIGKILL');
      } catch {}
    }
  }
});

/** Rows of the plain (not a terminal) view: `[demo M:SS] CLASS  queued N  starting N  idle N  busy N …`. */
function viewRows(stdout: string) {
  return [
    ...stdout.matchAll(
      /^\[demo \d+:\d\d\] (\S+)\s+queued (\d+) {2}starting (\d+) {2}idle (\d+) {2}busy (\d+) {2}max (\d+) .*cost so far \$([\d.]+)$/gm,
    ),
  ].map((m) => ({ name: m[1], busy: Number(m[5]), cost: Number(m[7]) }));
}

function completedJobs(stdout: string): number {
  const counts = [...stdout.matchAll(/jobs on the simulated GitHub: (\d+) completed/g)].map((m) =>
    Number(m[1]),
  );
  return counts.at(-1) ?? 0;
}

async function expectNothingLeft(run: DemoRun): Promise<void> {
  expect(run.seen.size).toBeGreaterThan(0);
  await until(
    'every process the demo started to be gone',
    async () => [...run.seen.values()].every((proc) => !running(proc)),
    10_000,
  ).catch(() => {});
  const left = [...run.seen.values()].filter(running).map((p) => `${p.pid} ${p.command}`);
  expect(left).toEqual([]);
}

async function waitForOutput(run: DemoRun, what: string, test: (stdout: string) => boolean, ms: number) {
  const deadline = Date.now() + ms;
  while (!test(run.stdout())) {
    if (run.child.exitCode !== null)
      throw new Error(`the demo exited while waiting for ${what}:\n${run.stderr()}`);
    if (Date.now() > deadline)
      throw new Error(`no ${what} within ${ms} ms:\n${run.stdout()}\n${run.stderr()}`);
    await sleep(200);
  }
}

describe('npm run demo', () => {
  it('runs for --duration with every class working, then stops everything and exits 0', async () => {
    // The run's shared cluster, as GANTRY_TEST_CLUSTER=existing: the demo starting its own control
    // plane is the next test's part.
    const kubeconfig = inject('kubeconfig');
    const run = startDemo(['--duration', '40'], {
      ...process.env,
      GANTRY_TEST_CLUSTER: 'existing',
      KUBECONFIG: kubeconfig,
    });
    const { code, signal } = await run.exited;
    const stdout = run.stdout();
    expect({ code, signal }, run.stderr()).toEqual({ code: 0, signal: null });

    expect(stdout).toMatch(/status page {2}http:\/\/127\.0\.0\.1:\d+\/\n/);
    expect(stdout).toMatch(/metrics {6}http:\/\/127\.0\.0\.1:\d+\/metrics\n/);
    const rows = viewRows(stdout);
    for (const name of CLASSES) expect(rows.some((row) => row.name === name)).toBe(true);
    // Lint and integration jobs arrive all the time: their runners are busy at some point.
    for (const name of ['lint', 'integration'])
      expect(Math.max(...rows.filter((row) => row.name === name).map((row) => row.busy))).toBeGreaterThan(0);
    expect(Math.max(...rows.map((row) => row.cost))).toBeGreaterThan(0);
    expect(completedJobs(stdout)).toBeGreaterThan(0);
    expect(run.stderr()).toContain('stopped everything it started');

    expect([...run.seen.values()].some((p) => p.command.includes('src/main.ts'))).toBe(true);
    await expectNothingLeft(run);
    // On a borrowed cluster the demo removes the namespace it worked in.
    const core = testKubeConfig().makeApiClient(CoreV1Api);
    const namespace = `gantry-demo-${run.child.pid}`;
    const gone = await core.readNamespace({ name: namespace }).then(
      (ns) => ns.metadata?.deletionTimestamp !== undefined,
      (err: unknown) => statusOf(err) === 404,
    );
    expect(gone).toBe(true);
  }, 180_000);

  it('stops everything on SIGINT, its own control plane included, and exits 0', async () => {
    const env = { ...process.env };
    delete env.GANTRY_TEST_CLUSTER;
    const run = startDemo([], env);
    await waitForOutput(
      run,
      'a busy runner in the view',
      (stdout) => viewRows(stdout).some((row) => row.busy > 0),
      150_000,
    );
    const runDir = dirname(/--kubeconfig (\S+)/.exec(run.stdout())?.[1] ?? '');
    expect(existsSync(join(runDir, 'run.json'))).toBe(true);
    const commands = [...run.seen.values()].map((p) => p.command);
    for (const component of ['etcd', 'kube-apiserver', 'kwok', 'src/main.ts'])
      expect(commands.some((c) => c.includes(component))).toBe(true);

    run.child.kill('SIGINT');
    const { code, signal } = await run.exited;
    expect({ code, signal }, run.stderr()).toEqual({ code: 0, signal: null });
    expect(run.stderr()).toContain('SIGINT: stopping everything the demo started');
    await expectNothingLeft(run);
    expect(existsSync(runDir)).toBe(false);
  }, 240_000);
});
