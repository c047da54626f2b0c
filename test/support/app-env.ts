import type { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { type App, createApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { createTestNamespace } from './kube.ts';

/**
 * What the in-process envs share, whichever way jobs reach Gantry (gantry-env.ts: GitHub's webhooks;
 * scaleset-env.ts: scale sets): the namespaces, Gantry's configuration with the quick defaults, Gantry
 * started (and restarted) against the fakes, and the runner simulator.
 */

const RESTRICTED = { 'pod-security.kubernetes.io/enforce': 'restricted' };

export interface AppEnvOptions {
  /** Namespaces to create (Pod Security restricted), by the names `classes` refers to them by. */
  namespaces: readonly string[];
  /** Labels of a namespace instead of Pod Security restricted, by name (e.g. another level). */
  namespaceLabels?: Record<string, Record<string, string>>;
  /** Keys of the `controller:` section, over the env's quick defaults. */
  controller?: Record<string, unknown>;
  /** The classes, given the namespaces made. */
  classes: (namespaces: Record<string, string>) => Record<string, unknown>;
  /** Extra keys of the `github:` section (merged over the fakes'). */
  github?: Record<string, unknown>;
  /** Other top-level keys of the configuration (warmPools, trace, …). */
  config?: Record<string, unknown>;
  /** Namespaces to delete after the file, collected here. */
  cleanup: string[];
}

interface Stoppable {
  stop(): Promise<void>;
}

export interface AppEnv<Simulator> {
  app: App;
  config: Config;
  simulator: Simulator;
  /** The namespaces made for this env, by the names the test asked for. */
  namespaces: Record<string, string>;
  /** A new Gantry process (same config) replaces the running one, as after a restart. */
  restart(): Promise<App>;
  stop(): Promise<void>;
}

/** How Gantry reaches the fakes of one env, and they it. */
export interface EnvFakes<Simulator> extends Stoppable {
  /** The `github:` section that points Gantry at the fakes. */
  github: Record<string, unknown>;
  /** After each start of Gantry: points the fakes at it, or waits until it listens to them. */
  started(webhookUrl: string | undefined, config: Config): Promise<void>;
  startSimulator(namespaces: string[]): Simulator;
}

/** Starts Gantry in process against `fakes` (started already); `env.stop()` stops it all. */
export async function startAppEnv<Simulator extends Stoppable>(
  kc: KubeConfig,
  options: AppEnvOptions,
  fakes: EnvFakes<Simulator>,
): Promise<AppEnv<Simulator>> {
  const startApp = async (config: Config) => {
    const app = createApp(config, {
      kubeConfig: kc,
      logger: pino({ level: process.env.GANTRY_TEST_LOG ?? 'silent' }),
    });
    const { webhookUrl } = await app.start();
    await fakes.started(webhookUrl, config);
    return app;
  };
  const namespaces: Record<string, string> = {};
  let config: Config;
  let app: App;
  try {
    for (const name of options.namespaces) {
      namespaces[name] = await createTestNamespace(kc, name, options.namespaceLabels?.[name] ?? RESTRICTED);
      options.cleanup.push(namespaces[name]);
    }
    config = parseConfig({
      ...options.config,
      log: { level: process.env.GANTRY_TEST_LOG ?? 'silent' },
      http: { address: '127.0.0.1', port: 0 },
      github: { ...fakes.github, ...options.github },
      controller: {
        reconcilePeriodSeconds: 0.5,
        startTimeoutSeconds: 4,
        deadlineGraceSeconds: 1,
        ...options.controller,
      },
      classes: options.classes(namespaces),
    });
    app = await startApp(config);
  } catch (err) {
    await fakes.stop();
    throw err;
  }
  const simulator = fakes.startSimulator(Object.values(namespaces));
  const env: AppEnv<Simulator> = {
    app,
    config,
    simulator,
    namespaces,
    async restart() {
      await env.app.stop();
      env.app = await startApp(config);
      return env.app;
    },
    async stop() {
      await simulator.stop();
      await env.app.stop();
      await fakes.stop();
    },
  };
  return env;
}
