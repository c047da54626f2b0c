import { createHash } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError, parseConfigText, readConfigText } from './load.ts';
import type { Config } from './schema.ts';

export interface WatchConfigOptions {
  /** The file now holds a valid configuration that differs from the one it held at the start. */
  onValid: (config: Config) => void;
  /** The file changed but cannot be read or is invalid; the running configuration stays. */
  onInvalid: (error: ConfigError) => void;
  /** Quiet time after the last change before the file is read: an editor's save is several events. */
  debounceMs?: number;
}

const digest = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * Watches a config file for changes and validates each new version. The directory is watched, not
 * the file: editors replace the file by renaming a new one over it, and Kubernetes swaps a ConfigMap
 * volume by re-pointing a symlink, neither of which a watch on the old file would see. Every event
 * in the directory leads to a read; comparing contents by hash ignores the ones that changed nothing.
 * Returns a function that stops watching.
 */
export function watchConfigFile(path: string, options: WatchConfigOptions): () => void {
  const { onValid, onInvalid, debounceMs = 500 } = options;
  let running: string | undefined;
  try {
    running = digest(readFileSync(path, 'utf8'));
  } catch {
    // Unreadable now: any readable valid version later counts as a change.
  }
  let seen = running;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let checking = false;
  let again = false;

  async function check(): Promise<void> {
    let text: string;
    try {
      text = await readConfigText(path);
    } catch (err) {
      const error = err instanceof ConfigError ? err : new ConfigError(String(err));
      // Reported once until the file changes again.
      if (seen === error.message) return;
      seen = error.message;
      if (!stopped) onInvalid(error);
      return;
    }
    const hash = digest(text);
    if (hash === seen) return;
    seen = hash;
    // Changed back to what is running: nothing to apply.
    if (hash === running || stopped) return;
    let config: Config;
    try {
      config = parseConfigText(text, path);
    } catch (err) {
      onInvalid(err instanceof ConfigError ? err : new ConfigError(String(err)));
      return;
    }
    onValid(config);
  }

  async function run(): Promise<void> {
    if (checking) {
      again = true;
      return;
    }
    checking = true;
    try {
      do {
        again = false;
        await check();
      } while (again && !stopped);
    } finally {
      checking = false;
    }
  }

  const schedule = () => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => void run(), debounceMs);
    timer.unref();
  };

  let watcher: FSWatcher;
  try {
    // Not persistent: watching alone must not keep the process alive during shutdown.
    watcher = watch(dirname(path), { persistent: false }, schedule);
  } catch (err) {
    onInvalid(new ConfigError(`cannot watch ${dirname(path)} for changes: ${(err as Error).message}`));
    return () => {};
  }
  watcher.on('error', (err) => {
    onInvalid(new ConfigError(`watching ${dirname(path)} for changes failed: ${err.message}`));
  });

  return () => {
    stopped = true;
    clearTimeout(timer);
    watcher.close();
  };
}
