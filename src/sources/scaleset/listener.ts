import type { Logger } from 'pino';
import type { JobEvent, JobOrigin } from '../../model/job.ts';
import { backoffDelayMs } from '../../util/retry.ts';
import { BACKGROUND_RETRIES } from '../../util/schedules.ts';
import type { Clock } from '../github/clock.ts';
import { ActionsServiceError, isServiceError, isTransient } from './actions-service.ts';
import type { JobBook } from './job-book.ts';
import type { ScaleSetMetrics } from './metrics.ts';
import type { OriginNeeds, ScaleSetOrigins } from './origin.ts';
import type { ScaleSetApi } from './scale-set-api.ts';
import { type JobMessage, type QueueMessage, type Session, type Statistics, WireError } from './wire.ts';

/**
 * One scale set's message session, held by the leader: open it (waiting out another's), long-poll
 * its queue with the scale set's capacity, apply each message to the job book, acquire announced jobs
 * the class may take, and acknowledge what the book no longer needs. Closing deletes the session, so
 * that a successor need not wait for the service to expire it.
 */

export interface ListenerOptions {
  className: string;
  /** The class's scale set, created or adopted when first asked for. */
  scaleSetId: () => Promise<number>;
  api: ScaleSetApi;
  /** The scale set's job book (its keys name the scale set's id). */
  bookFor: (scaleSetId: number) => JobBook;
  /** The scale set no longer exists: forget its id and book, so that it is ensured afresh. */
  scaleSetGone: () => void;
  origins: ScaleSetOrigins;
  needs: OriginNeeds;
  /** Whether the class may take the job (its trust): only those are acquired. */
  mayTake: (news: JobMessage, origin: JobOrigin) => boolean;
  emit: (event: JobEvent) => void;
  /** How many jobs the service may assign the scale set now (X-ScaleSetMaxCapacity). */
  capacity: () => number;
  /** The session's owner, as the service shows it. */
  owner: string;
  pollTimeoutMs: number;
  conflictRetryMs: number;
  clock: Clock;
  logger: Logger;
  metrics: ScaleSetMetrics;
}

export interface Listener {
  /** Resolves when the loop ends (after stop()). */
  readonly done: Promise<void>;
  /** Ends the poll, waits for the message in hand to be applied, and deletes the session. */
  stop(): Promise<void>;
  status(): { session: boolean; lastMessageId: number };
}

export function startListener(options: ListenerOptions): Listener {
  const { api, clock, metrics, className } = options;
  const log = options.logger.child({ component: 'scaleset-listener', class: className });
  const abort = new AbortController();
  const { signal } = abort;
  let session: Session | null = null;
  let scaleSetId = 0;
  let current: JobBook | null = null;
  /** The book, once the scale set is known (nothing reads it before the first session). */
  const bookOf = (): JobBook => {
    if (!current) throw new Error(`class ${className}: no scale set yet`);
    return current;
  };
  let lastMessageId = 0;
  let failures = 0;
  /** Serialises acknowledgements and acquisitions: both use the session and the book. */
  let chain: Promise<void> = Promise.resolve();
  let originRetry: NodeJS.Timeout | undefined;
  let originDelayMs: number = BACKGROUND_RETRIES.scaleSetOriginLookup.baseDelayMs;

  const emitAll = (events: readonly JobEvent[]) => {
    for (const event of events) options.emit(event);
  };

  const publishCounts = () => {
    if (!current) return;
    const counts = current.counts();
    metrics.retained.set({ class: className }, counts.retained);
    metrics.unnamedJobs.set({ class: className }, counts.unnamed);
  };

  const publishStatistics = (statistics: Statistics) => {
    for (const [statistic, value] of Object.entries(statistics)) {
      metrics.statistics.set({ class: className, statistic }, value);
    }
    emitAll(bookOf().setStatistics(statistics, clock.now()));
  };

  async function open(): Promise<Session> {
    let conflicts = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        scaleSetId = await options.scaleSetId();
        current ??= options.bookFor(scaleSetId);
        const opened = await api.createSession(scaleSetId, options.owner, signal);
        // A new session is sent the unacknowledged messages again, from the first.
        lastMessageId = 0;
        metrics.session.set({ class: className }, 1);
        log.info(
          { scaleSet: scaleSetId, session: opened.sessionId, afterConflicts: conflicts },
          'message session opened',
        );
        if (opened.statistics) publishStatistics(opened.statistics);
        return opened;
      } catch (err) {
        if (signal.aborted) throw err;
        if (isServiceError(err, 409, 'SessionConflict')) {
          metrics.sessionConflicts.inc({ class: className });
          if (conflicts++ === 0) {
            log.warn(
              { scaleSet: scaleSetId, retryInMs: options.conflictRetryMs },
              'the scale set has a message session already (another process’s, or one left by a process that stopped without closing it); waiting for it to end',
            );
          }
          await clock.sleep(options.conflictRetryMs * (0.75 + Math.random() * 0.5), signal);
          continue;
        }
        if (isServiceError(err, 404, 'RunnerScaleSetNotFound')) {
          // Deleted on GitHub's side (by a person, or by the service after a week unused): made again.
          log.error({ scaleSet: scaleSetId }, 'the scale set is gone; it is created again');
          if (current) emitAll(current.handOver(clock.now()));
          current = null;
          options.scaleSetGone();
        }
        const delay = backoffDelayMs(attempt, BACKGROUND_RETRIES.scaleSetSession);
        log.warn({ err: (err as Error).message, retryInMs: delay }, 'opening the message session failed');
        await clock.sleep(delay, signal);
      }
    }
  }

  /** A new queue token for the session; null when the service no longer knows it. */
  async function refresh(held: Session): Promise<Session | null> {
    try {
      return await api.refreshSession(scaleSetId, held.sessionId, signal);
    } catch (err) {
      if (isServiceError(err, 404)) return null;
      throw err;
    }
  }

  /** Runs `call` with the session's queue token; an expired token is renewed once and the call made again. */
  async function withSession<T>(call: (held: Session) => Promise<T>): Promise<T> {
    const held = session;
    if (!held) throw new Error('no message session');
    try {
      return await call(held);
    } catch (err) {
      if (!isServiceError(err, 401)) throw err;
      const renewed = await refresh(held);
      if (session === held) session = renewed;
      if (!renewed) throw err;
      return call(renewed);
    }
  }

  function serially(task: () => Promise<void>): Promise<void> {
    const next = chain.then(task, task);
    chain = next.catch(() => {});
    return next;
  }

  /** Deletes the messages the book no longer needs; one that fails now is tried after the next message. */
  function acknowledge(): Promise<void> {
    return serially(async () => {
      if (!session || !current) return;
      for (const id of current.acknowledgeable()) {
        try {
          await withSession((held) => api.deleteMessage(held, id));
          bookOf().acknowledged(id);
        } catch (err) {
          if (isServiceError(err, 404)) {
            bookOf().acknowledged(id);
            continue;
          }
          log.warn(
            { message: id, err: (err as Error).message },
            'acknowledging a message failed; tried again later',
          );
          return;
        }
      }
      publishCounts();
    });
  }

  /** Acquires announced jobs the class may take (GHES needs it); declines the others. */
  function acquire(): Promise<void> {
    return serially(async () => {
      if (!session || !current) return;
      const pending = current.unsettledAvailable();
      if (pending.length === 0) return;
      const wanted: number[] = [];
      const declined: number[] = [];
      for (const { news, origin } of pending) {
        if (!origin) continue;
        if (options.mayTake(news, origin)) wanted.push(news.runnerRequestId);
        else declined.push(news.runnerRequestId);
      }
      if (declined.length > 0) {
        log.info({ jobs: declined }, 'announced jobs the class may not take are left for other runners');
        bookOf().settle(declined);
      }
      if (wanted.length === 0) return;
      try {
        const acquired = await withSession((held) => api.acquireJobs(scaleSetId, held, wanted));
        log.debug({ asked: wanted.length, acquired: acquired.length }, 'jobs acquired');
        bookOf().settle(wanted);
      } catch (err) {
        log.warn(
          { jobs: wanted.length, err: (err as Error).message },
          'acquiring jobs failed; tried again later',
        );
      }
    });
  }

  /** Looks up the origins the book waits for; schedules itself again while some cannot be had. */
  async function resolveWaiting(): Promise<void> {
    if (!current) return;
    const waiting = current.awaitingOrigin();
    let failed = false;
    await Promise.all(
      waiting.map(async (news) => {
        try {
          const origin = await options.origins.resolve(news, options.needs);
          emitAll(bookOf().resolveOrigin(news.runnerRequestId, origin, clock.now()));
        } catch (err) {
          failed = true;
          log.warn(
            {
              job: news.runnerRequestId,
              repo: news.repo,
              run: news.workflowRunId,
              err: (err as Error).message,
            },
            'the job’s origin cannot be looked up yet; its events wait',
          );
        }
      }),
    );
    if (waiting.length > 0) {
      await acquire();
      await acknowledge();
    }
    clearTimeout(originRetry);
    if (failed && !signal.aborted) {
      originRetry = setTimeout(() => void resolveWaiting(), originDelayMs);
      originRetry.unref();
      originDelayMs = Math.min(BACKGROUND_RETRIES.scaleSetOriginLookup.maxDelayMs, originDelayMs * 2);
    } else {
      originDelayMs = BACKGROUND_RETRIES.scaleSetOriginLookup.baseDelayMs;
    }
  }

  async function handle(message: QueueMessage): Promise<void> {
    // Origins first, so that events go out with the job's trust; what cannot be looked up now waits.
    await Promise.all(
      message.jobs
        .filter((news) => options.origins.peek(news, options.needs) === undefined)
        .map((news) => options.origins.resolve(news, options.needs).catch(() => undefined)),
    );
    const { events, redelivered } = bookOf().apply(message, clock.now(), (news) =>
      options.origins.peek(news, options.needs),
    );
    metrics.messages.inc({ class: className, result: redelivered ? 'redelivered' : 'applied' });
    if (!redelivered) {
      for (const news of message.jobs) metrics.jobMessages.inc({ class: className, type: news.type });
    }
    emitAll(events);
    for (const problem of message.problems) {
      metrics.messages.inc({ class: className, result: 'malformed' });
      log.error(
        { message: message.messageId, problem },
        'a job message could not be read; it is skipped (the message stays unacknowledged)',
      );
    }
    if (message.statistics) publishStatistics(message.statistics);
    if (bookOf().awaitingOrigin().length > 0) void resolveWaiting();
    await acquire();
    await acknowledge();
  }

  const done = (async () => {
    while (!signal.aborted) {
      try {
        session ??= await open();
        emitAll(bookOf().expire(clock.now()));
        // What failed after the last message (an expired token, a 5xx) is tried again before waiting.
        await acquire();
        await acknowledge();
        const capacity = options.capacity();
        metrics.capacity.set({ class: className }, capacity);
        let message: QueueMessage | null;
        try {
          message = await api.getMessage(session, lastMessageId, capacity, options.pollTimeoutMs, signal);
        } catch (err) {
          if (isServiceError(err, 401)) {
            // The queue token expired: a new one for the same session, then poll again.
            session = await refresh(session);
            if (!session) metrics.session.set({ class: className }, 0);
            continue;
          }
          if (isServiceError(err, 404)) {
            log.warn('the service no longer knows the message session; opening a new one');
            session = null;
            metrics.session.set({ class: className }, 0);
            continue;
          }
          throw err;
        }
        failures = 0;
        if (message === null) {
          publishCounts();
          continue;
        }
        await handle(message);
        lastMessageId = Math.max(lastMessageId, message.messageId);
        publishCounts();
      } catch (err) {
        if (signal.aborted) break;
        const delay = backoffDelayMs(failures++, BACKGROUND_RETRIES.scaleSetSession);
        if (err instanceof WireError) {
          metrics.messages.inc({ class: className, result: 'malformed' });
          log.error({ err: err.message, retryInMs: delay }, 'the service sent a message that cannot be read');
        } else {
          log.warn(
            { err: (err as Error).message, transient: isTransient(err), retryInMs: delay },
            'polling the message session failed',
          );
        }
        await clock.sleep(delay, signal).catch(() => {});
      }
    }
  })();

  return {
    done,
    async stop() {
      abort.abort(new Error('listener stopped'));
      clearTimeout(originRetry);
      await done;
      await chain;
      const held = session;
      session = null;
      metrics.session.set({ class: className }, 0);
      if (!held) return;
      try {
        await api.deleteSession(scaleSetId, held.sessionId, 5_000);
        log.info({ session: held.sessionId }, 'message session closed');
      } catch (err) {
        if (!isServiceError(err, 404)) {
          log.warn(
            { session: held.sessionId, err: err instanceof ActionsServiceError ? err.message : String(err) },
            'deleting the message session failed; the service ends it once it is not polled',
          );
        }
      }
    },
    status: () => ({ session: session !== null, lastMessageId }),
  };
}
