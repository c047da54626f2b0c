import type { Logger } from 'pino';
import type { RunnerClass, RunnerClasses } from '../config/classes.ts';
import { ConfigError } from '../config/error.ts';
import type { RegisteredRunner, RunnerRegistrar } from '../launcher/kube-launcher.ts';
import type { CreateRunnerAction } from '../model/action.ts';
import type { RunnerScope } from '../sources/github/api.ts';
import type { JitRunnerService, RunnerPlacement } from '../sources/github/jit-runners.ts';
import { trustedGroupProblems } from '../sources/github/runner-group-policy.ts';

/** A trusted-only class whose runner group GitHub would let untrusted jobs use. */
export class UnsafeTrustedGroupError extends ConfigError {
  override name = 'UnsafeTrustedGroupError';
}

export interface GithubRegistrarOptions {
  runners: JitRunnerService;
  classes: RunnerClasses;
  /** Names of the runner pods that exist now; registrations of other Gantry runners are stale. */
  livePods: () => ReadonlySet<string>;
  /** Repositories that repo-scoped runners may be registered in, for the clean-up sweep. */
  repositories: () => Iterable<string>;
  logger: Logger;
  cleanupIntervalMs: number;
  /** What an unsafe runner group of a trusted-only class does at start. */
  unsafeTrustedGroup: 'warn' | 'refuse';
}

/**
 * Runner registrations on GitHub for the launcher: a JIT config per runner in its class's scope
 * (organisation runner group, or the job's repository), removal on request, and a periodic sweep
 * of registrations whose pod is gone or that never came online.
 */
export function createGithubRegistrar(options: GithubRegistrarOptions): RunnerRegistrar & {
  checkTrustedOnlyClasses(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
} {
  const { runners, classes } = options;
  const log = options.logger.child({ component: 'github-registrar' });
  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<unknown> | undefined;

  const placementOf = (runner: RegisteredRunner, runnerClass: RunnerClass | undefined): RunnerPlacement => {
    if (runnerClass?.scope === 'repo') {
      if (!runner.repo)
        throw new Error(`runner ${runner.runnerName}: a repo-scoped class needs the job's repository`);
      return { scope: 'repo', repo: runner.repo };
    }
    return { scope: 'org', group: runnerClass?.runnerGroup ?? 'default' };
  };

  async function sweep(): Promise<void> {
    const scopes: RunnerScope[] = [];
    const classList = Object.values(classes);
    if (classList.some((c) => c.scope === 'org' && c.match.github)) {
      scopes.push(runners.scopeOf({ scope: 'org', group: 'default' }));
    }
    if (classList.some((c) => c.scope === 'repo' && c.match.github)) {
      for (const repo of new Set(options.repositories())) scopes.push({ kind: 'repo', repo });
    }
    const report = await runners.cleanup(options.livePods(), scopes);
    if (report.deleted.length || report.failed.length) log.info(report, 'stale runner registrations swept');
  }

  return {
    async register(action: CreateRunnerAction, runnerClass: RunnerClass) {
      const labels = runnerClass.match.github?.labels;
      if (!labels)
        throw new Error(`class ${action.className} has no GitHub labels to register a runner with`);
      const runner = await runners.create({
        name: action.runnerName,
        labels,
        placement: placementOf(action, runnerClass),
      });
      return { encodedJitConfig: runner.encodedJitConfig };
    },
    unregister(runner: RegisteredRunner) {
      return runners.remove(runner.runnerName, placementOf(runner, classes[runner.className]));
    },
    /**
     * A trusted-only class is only as safe as its runner group on GitHub's side: check each one
     * and warn loudly, or refuse to start, when untrusted jobs could reach its runners.
     */
    async checkTrustedOnlyClasses() {
      for (const [name, runnerClass] of Object.entries(classes)) {
        if (!runnerClass.trustedOnly || !runnerClass.match.github) continue;
        const problems =
          runnerClass.scope === 'repo'
            ? [
                'repository runners take any job of their repository, fork pull requests of a public one included',
              ]
            : await runners
                .findGroup(runnerClass.runnerGroup)
                .then((group) =>
                  group
                    ? trustedGroupProblems(group)
                    : [`runner group ${runnerClass.runnerGroup} does not exist`],
                );
        if (problems.length === 0) continue;
        const message = `class ${name} is trustedOnly but its runners are not protected on GitHub: ${problems.join('; ')}`;
        if (options.unsafeTrustedGroup === 'refuse') throw new UnsafeTrustedGroupError(message);
        log.error({ class: name, runnerGroup: runnerClass.runnerGroup, problems }, message);
      }
    },
    start() {
      timer = setInterval(() => {
        sweeping ??= sweep()
          .catch((err: unknown) =>
            log.warn({ err: err instanceof Error ? err.message : String(err) }, 'runner sweep failed'),
          )
          .finally(() => {
            sweeping = undefined;
          });
      }, options.cleanupIntervalMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await sweeping;
    },
  };
}
