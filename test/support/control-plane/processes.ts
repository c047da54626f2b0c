import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A component of the control plane running as a child process, its output in a log file. */
export interface Component {
  name: string;
  pid: number;
  logPath: string;
  /** How it was started, so it can be started again the same way (see process-control.ts). */
  binary?: string;
  args?: string[];
  /** Variables set on top of this process's environment. */
  env?: Record<string, string>;
}

/**
 * Starts a binary with its output in `logPath`. Detached components outlive this process (for
 * people's `cluster:up`); attached ones share its process group, so Ctrl-C stops them too.
 */
export function startComponent(
  name: string,
  binary: string,
  args: string[],
  logPath: string,
  detached: boolean,
  env?: Record<string, string>,
): Component {
  const log = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(binary, args, {
      stdio: ['ignore', log, log],
      detached,
      ...(env ? { env: { ...process.env, ...env } } : {}),
    });
  } finally {
    closeSync(log);
  }
  if (child.pid === undefined) throw new Error(`${name}: could not start ${binary}`);
  child.on('error', () => {}); // a failed start shows up as a dead pid with its log
  if (detached) child.unref();
  return { name, pid: child.pid, logPath, binary, args, ...(env ? { env } : {}) };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when `pid` is alive and its command line mentions `marker` (guards against reused pids). */
export function isOurs(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone (or is a zombie left to its parent). */
export async function stopProcess(pid: number, graceMs = 10_000): Promise<void> {
  if (!signal(pid, 'SIGTERM')) return;
  const killAt = Date.now() + graceMs;
  const giveUpAt = killAt + 5_000;
  while (isAlive(pid) && Date.now() < giveUpAt) {
    if (Date.now() > killAt) signal(pid, 'SIGKILL');
    await sleep(50);
  }
}

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Asks the kernel for a free loopback port. Another process could take it before use; the start then fails loudly. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export async function logTail(component: Component, lines = 25): Promise<string> {
  try {
    const text = await readFile(component.logPath, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Polls `check` until it returns true. Fails early, with the log's tail, if the component dies;
 * fails with `what` and the last error seen if time runs out.
 */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  { timeoutMs, component }: { timeoutMs: number; component?: Component },
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    if (component && !isAlive(component.pid)) {
      throw new Error(`${component.name} exited while waiting for ${what}:\n${await logTail(component)}`);
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const tail = component ? `\n${component.name} log:\n${await logTail(component)}` : '';
      const last = lastError ? ` (last error: ${(lastError as Error).message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}${tail}`);
    }
    await sleep(100);
  }
}
