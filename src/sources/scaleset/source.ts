import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { buildClassifier } from '../../classes/matching.ts';
import type { RunnerClasses } from '../../classes/schema.ts';
import type { JobEvent } from '../../model/job.ts';
import type { PlacementHold } from '../../model/ledger-snapshot.ts';
import type { RunnerRegistrar } from '../../ports.ts';
import { splitRepo } from '../github/api.ts';
import { type Clock, systemClock } from '../github/clock.ts';
import type { GithubConfig } from '../github/config.ts';
import { createGithubMetrics } from '../github/metrics.ts';
import { createPlacementGuard } from '../github/placement-guard.ts';
import { createGithubRest, GithubConfigError } from '../github/source.ts';
import { createActionsService, isServiceError } from './actions-service.ts';
import { JobBook } from './job-book.ts';
import { type Listener, startListener } from './listener.ts';
import { createScaleSetMetrics } from './metrics.ts';
import { createScaleSetOrigins } from './origin.ts';
import { createScaleSetRegistrar } from './registrar.ts';
import { createScaleSetApi } from './scale-set-api.ts';
import type { Statistics } from './wire.ts';

/**
 * GitHub in scale-set mode: every class that serves GitHub jobs is one runner scale set of the
 * organisation, in the class's runner group, with the class's labels, created or adopted by name.
 * The leader holds one message session per scale set and turns its messages into job events; the
 * registrar gets runners their JIT configs from the scale set and removes them through the service.
 * The REST API is used for the registration token (the Actions service's token, renewed about
 * hourly), the runner groups' access settings, repositories' visibility, and the workflow runs of
 * jobs whose origin a message does not tell.
 */

export interface ScaleSetSourceDeps {
  config: GithubConfig;
  classes: RunnerClasses;
  logger: Logger;
  metrics: Registry;
  /** Receives every job event. */
  onEvent: (event: JobEvent) => void;
  /** How many jobs the class's scale set can take now (its runners and the room left); maxRunners when absent. */
  capacityOf?: (className: string) => number | undefined;
  /** This replica's name: the sessions' owner. */
  identity: string;
  /** Told after every runner-group check which classes to hold (see the GitHub registrar). */
  onPlacements?: (holds: ReadonlyMap<string, PlacementHold>) => void;
  clock?: Clock;
}

export interface ScaleSetStatus {
  className: string;
  scaleSet: string;
  scaleSetId: number | null;
  session: boolean;
  capacity: number;
  statistics: Statistics | null;
  waiting: number;
  running: number;
  unnamed: number;
  retained: number;
}

export interface ScaleSetSource {
  readonly registrar: RunnerRegistrar;
  /** Reads the runner groups; refuses to start (UnsafePlacementError) as github.trust says. */
  checkPlacements(): Promise<void>;
  /** The leader's work: scale sets ensured, sessions opened and polled, runner groups rechecked. */
  start(): void;
  /** Stops polling and deletes the sessions (stopping leading, or shutting down). */
  stop(): Promise<void>;
  status(): ScaleSetStatus[];
}

/** A job waits at most a day for a runner (GitHub cancels it then); news of one is kept that long past its class's deadline. */
const QUEUE_LIMIT_MS = 24 * 3_600_000;

/**
 * The organisation's address that registration names: `https://github.com/ORG` for api.github.com,
 * `https://SUB.ghe.com/ORG` for `api.SUB.ghe.com`, and `https://HOST/ORG` for a server's `/api/v3`.
 */
export function configUrlOf(apiUrl: string, org: string): string {
  const url = new URL(apiUrl);
  if (url.hostname === 'api.github.com') return `https://github.com/${org}`;
  const host = url.hostname.startsWith('api.') ? url.host.slice(4) : url.host;
  return `${url.protocol}//${host}/${org}`;
}

export function scaleSetNameOf(config: GithubConfig, className: string): string {
  return config.scaleSets.names[className] ?? `${config.runners.namePrefix}-${className}`;
}

export function createScaleSetSource(deps: ScaleSetSourceDeps): ScaleSetSource {
  const { config, classes } = deps;
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger.child({ component: 'scaleset' });
  const org = config.runners.org;
  if (!org) throw new GithubConfigError('github.runners.org: required with github.mode scaleSets');
  if (config.webhook.secret !== undefined || config.webhook.secretPath !== undefined) {
    logger.warn('github.webhook is not used with github.mode scaleSets: no webhook listener runs');
  }
  const { client, api: rest } = createGithubRest(config, {
    logger,
    metrics: createGithubMetrics(deps.metrics),
    clock,
    runnerScopes: new Set(['org']),
  });
  const metrics = createScaleSetMetrics(deps.metrics);
  const service = createActionsService({
    github: client,
    org,
    configUrl: config.scaleSets.configUrl ?? configUrlOf(config.apiUrl, org),
    clock,
    logger,
    metrics,
    timeoutMs: config.requestTimeoutSeconds * 1000,
    maxRetries: config.maxRetries,
    refreshMarginMs: config.scaleSets.adminTokenRefreshMarginSeconds * 1000,
  });
  const api = createScaleSetApi(service);
  const classNames = Object.keys(classes)
    .filter((name) => classes[name]?.match.github)
    .sort();

  // ── scale sets ─────────────────────────────────────────────────────────────────────────────────

  const ids = new Map<string, number>();
  const ensuring = new Map<string, Promise<number>>();

  async function ensure(className: string): Promise<number> {
    const runnerClass = classes[className];
    const classLabels = runnerClass?.match.github?.labels;
    if (!runnerClass || !classLabels) throw new Error(`class ${className} serves no GitHub jobs`);
    const name = scaleSetNameOf(config, className);
    // As GitHub's own autoscaler does: a workflow may name the scale set, or ask for its labels.
    const labels = [name, ...classLabels.filter((l) => l.toLowerCase() !== name.toLowerCase())];
    const group = await api.runnerGroup(runnerClass.runnerGroup);
    if (!group) {
      throw new Error(
        `class ${className}: runner group "${runnerClass.runnerGroup}" not found on the Actions service`,
      );
    }
    let set = await api.findScaleSet(group.id, name);
    if (!set) {
      try {
        set = await api.createScaleSet({ name, runnerGroupId: group.id, labels });
        logger.info(
          { class: className, scaleSet: name, id: set.id, runnerGroup: group.name },
          'scale set created',
        );
      } catch (err) {
        // Another replica (or an earlier try whose answer was lost) created it meanwhile.
        if (!isServiceError(err, 409)) throw err;
        set = await api.findScaleSet(group.id, name);
        if (!set) throw err;
      }
    } else {
      const have = new Set(set.labels.map((l) => l.toLowerCase()));
      const want = new Set(labels.map((l) => l.toLowerCase()));
      if (have.size !== want.size || [...want].some((l) => !have.has(l))) {
        set = await api.updateScaleSet(set.id, { labels });
        logger.info(
          { class: className, scaleSet: name, id: set.id, labels },
          'scale set adopted; its labels set to the class’s',
        );
      } else {
        logger.info({ class: className, scaleSet: name, id: set.id }, 'scale set adopted');
      }
    }
    ids.set(className, set.id);
    return set.id;
  }

  /** The class's scale set id: ensured once per process; a failed attempt is retried by the next caller. */
  function scaleSetIdOf(className: string): Promise<number> {
    let pending = ensuring.get(className);
    if (!pending) {
      pending = ensure(className).catch((err: unknown) => {
        ensuring.delete(className);
        throw err;
      });
      ensuring.set(className, pending);
    }
    return pending;
  }

  // ── origins, books, listeners ──────────────────────────────────────────────────────────────────

  const origins = createScaleSetOrigins({
    fetchRun: (repo, runId) => rest.getRun(repo, runId),
    fetchRepo: async (repo) => {
      const { data } = await client.call(
        { operation: 'get_repository', idempotent: true, conditionalKey: `repos/${repo}` },
        (extras) => client.octokit.request('GET /repos/{owner}/{repo}', { ...splitRepo(repo), ...extras }),
      );
      return data;
    },
    policy: config.trust,
    cacheSize: config.runCacheSize,
    visibilityTtlMs: config.trust.placementCheckIntervalSeconds * 1000,
    logger,
  });
  const classify = buildClassifier(classes, config.trust);
  let epoch = 0;
  const books = new Map<string, JobBook>();
  const bookOf = (className: string, scaleSetId: number): JobBook => {
    let book = books.get(className);
    if (!book) {
      const runnerClass = classes[className];
      book = new JobBook({
        className,
        scaleSetId,
        labels: runnerClass?.match.github?.labels ?? [],
        maxRetentionMs: QUEUE_LIMIT_MS + (runnerClass?.activeDeadlineSeconds ?? 0) * 1000,
        epoch,
      });
      books.set(className, book);
    }
    return book;
  };
  const capacityOf = (className: string): number => {
    const max = classes[className]?.maxRunners ?? 0;
    const room = deps.capacityOf?.(className);
    return room === undefined ? max : Math.max(0, Math.min(max, room));
  };

  let listeners = new Map<string, Listener>();
  let running = false;

  function listen(className: string): Listener {
    const runnerClass = classes[className];
    return startListener({
      className,
      scaleSetId: () => scaleSetIdOf(className),
      api,
      bookFor: (id) => bookOf(className, id),
      scaleSetGone: () => {
        ensuring.delete(className);
        ids.delete(className);
        books.delete(className);
      },
      origins,
      needs: { trustedOnly: runnerClass?.trustedOnly ?? false },
      mayTake: (news, origin) =>
        classify({
          source: 'github',
          labels: news.labels,
          untrusted: origin.untrustedBecause !== undefined,
          origin,
          requestedClass: className,
        }).matched,
      emit: deps.onEvent,
      capacity: () => capacityOf(className),
      owner: deps.identity,
      pollTimeoutMs: config.scaleSets.pollTimeoutSeconds * 1000,
      conflictRetryMs: config.scaleSets.sessionConflictRetrySeconds * 1000,
      clock,
      logger,
      metrics,
    });
  }

  const registrar = createScaleSetRegistrar({ api, scaleSetIdOf, logger });
  const placement = createPlacementGuard({
    classes,
    listGroups: async () => (await rest.listRunnerGroups(org)).items,
    unsafePlacement: config.trust.unsafePlacement,
    intervalMs: config.trust.placementCheckIntervalSeconds * 1000,
    ...(deps.onPlacements ? { onPlacements: deps.onPlacements } : {}),
    logger,
    metrics: deps.metrics,
  });

  return {
    registrar,
    async checkPlacements() {
      await placement.checkPlacements();
    },
    start() {
      if (running) return;
      running = true;
      placement.start();
      listeners = new Map(classNames.map((name) => [name, listen(name)]));
    },
    async stop() {
      if (!running) return;
      running = false;
      await Promise.all([...listeners.values()].map((l) => l.stop()));
      listeners = new Map();
      registrar.stop();
      await placement.stop();
      // Another replica holds the sessions from now: what this one was told goes stale.
      const now = clock.now();
      for (const book of books.values()) for (const event of book.handOver(now)) deps.onEvent(event);
      books.clear();
      epoch++;
    },
    status() {
      return classNames.map((className) => {
        const book = books.get(className);
        const counts = book?.counts();
        return {
          className,
          scaleSet: scaleSetNameOf(config, className),
          scaleSetId: ids.get(className) ?? null,
          session: listeners.get(className)?.status().session ?? false,
          capacity: capacityOf(className),
          statistics: book?.statistics ?? null,
          waiting: counts?.waiting ?? 0,
          running: counts?.running ?? 0,
          unnamed: counts?.unnamed ?? 0,
          retained: counts?.retained ?? 0,
        };
      });
    },
  };
}
