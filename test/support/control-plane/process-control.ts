import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Component, startComponent } from './processes.ts';

/**
 * Process control of a running control plane's components, for fault injection: pause and resume
 * (SIGSTOP, SIGCONT), kill, and start again with the same binary, flags and ports. It works from any
 * process (a test worker, not only the one that started the run) through the run's record
 * (run.json), which it keeps current, so stopRun() and the stale-run sweep find a restarted
 * component by its new pid.
 */

interface RecordedRun {
  components: Component[];
  [key: string]: unknown;
}

async function readRecord(runDir: string): Promise<RecordedRun> {
  return JSON.parse(await readFile(join(runDir, 'run.json'), 'utf8')) as RecordedRun;
}

/** A component of the run by name (kube-apiserver, etcd, kube-controller-manager, kube-scheduler, kwok). */
export async function componentOf(runDir: string, name: string): Promise<Component> {
  const component = (await readRecord(runDir)).components.find((c) => c.name === name);
  if (!component) throw new Error(`the run in ${runDir} has no component ${name}`);
  return component;
}

/** True while the process exists and is not a zombie waiting for its parent. */
export function isRunning(pid: number): boolean {
  try {
    // /proc/PID/stat: "pid (comm) state ..."; comm may hold spaces, the state follows its last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Freezes the component (SIGSTOP): it holds its sockets open but answers nothing. */
export async function pauseComponent(runDir: string, name: string): Promise<Component> {
  const component = await componentOf(runDir, name);
  process.kill(component.pid, 'SIGSTOP');
  return component;
}

/** Lets a paused component run again (SIGCONT). */
export async function resumeComponent(runDir: string, name: string): Promise<Component> {
  const component = await componentOf(runDir, name);
  process.kill(component.pid, 'SIGCONT');
  return component;
}

/** Sends `signal` (SIGKILL by default) and waits until the process is gone; SIGKILL after 15 s. */
export async function killComponent(
  runDir: string,
  name: string,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<Component> {
  const component = await componentOf(runDir, name);
  const { pid } = component;
  try {
    process.kill(pid, signal);
    // A stopped process only acts on SIGTERM once it runs again.
    process.kill(pid, 'SIGCONT');
  } catch {
    return component;
  }
  const escalateAt = Date.now() + 15_000;
  while (isRunning(pid)) {
    if (Date.now() > escalateAt) process.kill(pid, 'SIGKILL');
    await sleep(25);
  }
  return component;
}

/**
 * Starts a stopped component again exactly as the run started it (same binary, flags, ports and
 * log), detached so it outlives the process that restarts it; the run's record gets the new pid.
 */
export async function startComponentAgain(runDir: string, name: string): Promise<Component> {
  const record = await readRecord(runDir);
  const index = record.components.findIndex((c) => c.name === name);
  const old = record.components[index];
  if (!old) throw new Error(`the run in ${runDir} has no component ${name}`);
  if (isRunning(old.pid)) throw new Error(`${name} (pid ${old.pid}) is still running`);
  if (!old.binary || !old.args) throw new Error(`the run's record does not say how ${name} was started`);
  const started = startComponent(name, old.binary, old.args, old.logPath, true, old.env);
  record.components[index] = started;
  await writeFile(join(runDir, 'run.json'), JSON.stringify(record, null, 2));
  return started;
}

/** Kills a component (SIGKILL by default), leaves it down for `downMs`, and starts it again. */
export async function restartComponent(
  runDir: string,
  name: string,
  { signal = 'SIGKILL', downMs = 0 }: { signal?: NodeJS.Signals; downMs?: number } = {},
): Promise<Component> {
  await killComponent(runDir, name, signal);
  if (downMs > 0) await sleep(downMs);
  return startComponentAgain(runDir, name);
}

/**
 * Starts again every component that is no longer running, as the kubelet restarts a static pod
 * (kube-scheduler, for one, exits on purpose when its cache disagrees with the apiserver after an
 * apiserver restart). Those in `except` are down on purpose. Returns the names of those it started.
 */
export async function reviveComponents(
  runDir: string,
  except: ReadonlySet<string> = new Set(),
): Promise<string[]> {
  const revived: string[] = [];
  for (const component of (await readRecord(runDir)).components) {
    if (except.has(component.name) || isRunning(component.pid)) continue;
    await startComponentAgain(runDir, component.name);
    revived.push(component.name);
  }
  return revived;
}
