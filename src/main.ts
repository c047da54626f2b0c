#!/usr/bin/env node
import { createApp } from './app.ts';
import { parseCommandLine, usage } from './cli.ts';
import { ConfigError, loadConfigFile, parseConfig } from './config/load.ts';
import { watchConfigFile } from './config/watch.ts';
import { isStatusReport, renderStatusTable } from './http/status-table.ts';
import { runSimulate } from './simulate/command.ts';
import { runTraceExport, runTraceSynthetic } from './trace/command.ts';
import { InputError } from './util/input-error.ts';
import { version } from './version.ts';

const EXIT_RUNTIME = 1;
const EXIT_USAGE = 2;
const STATUS_TIMEOUT_MS = 5_000;

function fail(message: string, code: number): never {
  process.stderr.write(`gantry: ${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  const command = parseCommandLine(process.argv.slice(2));
  switch (command.kind) {
    case 'help':
      process.stdout.write(`${usage}\n`);
      return;
    case 'version':
      process.stdout.write(`gantry ${version}\n`);
      return;
    case 'status':
      await printStatus(command.url);
      return;
    case 'simulate':
      await runTool(() => runSimulate(command.options, (text) => process.stdout.write(text)));
      return;
    case 'trace-export':
      await runTool(() =>
        runTraceExport(command.options, { stdout: process.stdout, stderr: process.stderr }),
      );
      return;
    case 'trace-synthetic':
      await runTool(() =>
        runTraceSynthetic(command.options, { stdout: process.stdout, stderr: process.stderr }),
      );
      return;
    case 'usage-error':
      fail(`${command.message} (see gantry --help)`, EXIT_USAGE);
  }

  let app: ReturnType<typeof createApp>;
  let config: Awaited<ReturnType<typeof loadConfigFile>>;
  try {
    config = command.configPath ? await loadConfigFile(command.configPath) : parseConfig({});
    app = createApp(config);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, EXIT_USAGE);
    throw err;
  }

  let stopping = false;
  let stopWatching = () => {};
  const shutdown = (signal: string) => {
    if (stopping) {
      app.logger.error({ signal }, 'second signal during shutdown: exiting now');
      process.exit(EXIT_RUNTIME);
    }
    stopping = true;
    stopWatching();
    const timeoutSeconds = config.shutdownTimeoutSeconds;
    app.logger.info({ signal, timeoutSeconds }, 'shutting down');
    setTimeout(() => {
      app.logger.error({ timeoutSeconds }, 'shutdown did not finish in time: exiting now');
      process.exit(EXIT_RUNTIME);
    }, timeoutSeconds * 1000).unref();
    app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        app.logger.error({ err }, 'shutdown failed');
        process.exit(EXIT_RUNTIME);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  try {
    await app.start();
  } catch (err) {
    // A configuration the outside world refutes (e.g. an unprotected trusted-only runner group).
    if (err instanceof ConfigError) fail(err.message, EXIT_USAGE);
    throw err;
  }
  const configPath = command.configPath;
  if (configPath && !stopping) {
    // A valid new configuration is applied by restarting: the graceful shutdown exits 0 and the
    // Deployment starts the pod again, which reads the file afresh. An invalid one changes nothing.
    stopWatching = watchConfigFile(configPath, {
      onValid: () => {
        app.logger.info({ path: configPath }, 'configuration changed; restarting to apply it');
        shutdown('configuration change');
      },
      onInvalid: (err) => {
        app.logger.error(
          { path: configPath },
          `configuration change ignored, keeping the running one: ${err.message}`,
        );
      },
    });
  }
}

/** A one-shot command: bad input or configuration exits 2 with its one line, anything else 1. */
async function runTool(run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (err) {
    if (err instanceof InputError || err instanceof ConfigError) fail(err.message, EXIT_USAGE);
    fail(err instanceof Error ? err.message : String(err), EXIT_RUNTIME);
  }
}

async function printStatus(baseUrl: string): Promise<void> {
  const url = new URL('/api/status', baseUrl);
  let body: unknown;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) });
    if (!res.ok) fail(`${url}: HTTP ${res.status}`, EXIT_RUNTIME);
    body = await res.json();
  } catch (err) {
    fail(`${url}: ${err instanceof Error ? err.message : String(err)}`, EXIT_RUNTIME);
  }
  if (!isStatusReport(body)) fail(`${url}: not a Gantry status report`, EXIT_RUNTIME);
  process.stdout.write(renderStatusTable(body));
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err), EXIT_RUNTIME));
