import { readFile, stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { type CertificateAndKey, servingPairProblem } from './certificates.ts';
import { createCertificateHolder, type RunningCertificateSource } from './source.ts';

export interface FileTlsOptions {
  certFile: string;
  keyFile: string;
  logger: Logger;
  /** How often the files' modification times are compared; default 10 s. */
  pollIntervalMs?: number;
  now?: () => Date;
}

export interface FileTls extends RunningCertificateSource {
  /** Compares the files now (after any poll in flight); true if a new pair was taken. */
  poll(): Promise<boolean>;
}

const DEFAULT_POLL_INTERVAL_MS = 10_000;

/**
 * A serving certificate from two PEM files, such as a Secret of cert-manager mounted into the pod.
 * The kubelet updates such a mount by swapping a symlink, which fs.watch on the files does not see,
 * so the files are polled: stat follows the link, and a new target has a new inode and mtime. A pair
 * that cannot be served (unreadable, not PEM, key of another certificate, expired; or half written,
 * the certificate new and the key not yet) is logged and the current one kept; the next change of
 * either file is tried again. Resolves once the first pair is read; throws if it cannot be served.
 */
export async function startFileTls(options: FileTlsOptions): Promise<FileTls> {
  const { certFile, keyFile } = options;
  const now = options.now ?? (() => new Date());
  const log = options.logger.child({ component: 'webhook-tls', certFile, keyFile });
  const holder = createCertificateHolder();
  let seenVersion = await filesVersion(certFile, keyFile);

  const first = await readPair(certFile, keyFile);
  const firstProblem = servingPairProblem(first, now());
  if (firstProblem !== undefined) throw new Error(`webhook certificate ${certFile}: ${firstProblem}`);
  holder.set(first);

  async function pollOnce(): Promise<boolean> {
    let version: string;
    try {
      version = await filesVersion(certFile, keyFile);
    } catch (err) {
      // Remembered like a version, so a file that stays missing is reported once, not every poll.
      version = `unreadable: ${messageOf(err)}`;
      if (version !== seenVersion)
        log.warn(
          { err: messageOf(err) },
          'the certificate files cannot be read; keeping the current certificate',
        );
      seenVersion = version;
      return false;
    }
    if (version === seenVersion) return false;
    seenVersion = version;
    let pair: CertificateAndKey;
    try {
      pair = await readPair(certFile, keyFile);
    } catch (err) {
      log.warn(
        { err: messageOf(err) },
        'the certificate files cannot be read; keeping the current certificate',
      );
      return false;
    }
    const problem = servingPairProblem(pair, now());
    if (problem !== undefined) {
      log.warn(
        { problem },
        'the changed certificate files cannot be served; keeping the current certificate',
      );
      return false;
    }
    const changed = holder.set(pair);
    if (changed) log.info('serving the changed webhook certificate');
    return changed;
  }

  let queue: Promise<unknown> = Promise.resolve();
  function enqueue(): Promise<boolean> {
    const run = queue.then(pollOnce);
    queue = run.catch(() => {});
    return run;
  }

  const timer = setInterval(() => void enqueue(), options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
  timer.unref();

  return {
    current: holder.current,
    subscribe: holder.subscribe,
    poll: enqueue,
    async stop() {
      clearInterval(timer);
      await queue;
    },
  };
}

async function readPair(certFile: string, keyFile: string): Promise<CertificateAndKey> {
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  return { cert, key };
}

/** What changes when either file is rewritten or its symlink retargeted. */
async function filesVersion(certFile: string, keyFile: string): Promise<string> {
  const stats = await Promise.all([stat(certFile), stat(keyFile)]);
  return stats.map((s) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`).join('|');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
