import type { ActionsService } from './actions-service.ts';
import {
  type JitConfig,
  listOf,
  type QueueMessage,
  type RunnerGroup,
  type RunnerRef,
  readJitConfig,
  readQueueMessage,
  readRunner,
  readRunnerGroup,
  readScaleSet,
  readSession,
  type ScaleSet,
  type Session,
} from './wire.ts';

/** The scale-set calls of the Actions service, each reading its answer with the wire readers. */

const SCALE_SETS = '_apis/runtime/runnerscalesets';
const AGENTS = '_apis/distributedtask/pools/0/agents';

export type ScaleSetApi = ReturnType<typeof createScaleSetApi>;

export function createScaleSetApi(service: ActionsService) {
  const labelsOf = (labels: readonly string[]) => labels.map((name) => ({ name, type: 'System' }));

  return {
    /** The runner group of that name (case-insensitive, as GitHub compares them), or null. */
    async runnerGroup(name: string): Promise<RunnerGroup | null> {
      const { body } = await service.request({
        operation: 'get_runner_group',
        method: 'GET',
        path: '_apis/runtime/runnergroups/',
        query: { groupName: name },
        idempotent: true,
      });
      const groups = listOf(body, 'runner groups', readRunnerGroup);
      return groups.find((g) => g.name.toLowerCase() === name.toLowerCase()) ?? null;
    },

    async findScaleSet(runnerGroupId: number, name: string): Promise<ScaleSet | null> {
      const { body } = await service.request({
        operation: 'get_scale_set',
        method: 'GET',
        path: SCALE_SETS,
        query: { runnerGroupId: String(runnerGroupId), name },
        idempotent: true,
      });
      const sets = listOf(body, 'scale sets', readScaleSet);
      return sets.find((s) => s.name.toLowerCase() === name.toLowerCase()) ?? null;
    },

    /** Runners of a scale set take no runner updates mid-life: an ephemeral runner is replaced instead. */
    async createScaleSet(spec: { name: string; runnerGroupId: number; labels: readonly string[] }) {
      const { body } = await service.request({
        operation: 'create_scale_set',
        method: 'POST',
        path: SCALE_SETS,
        body: {
          name: spec.name,
          runnerGroupId: spec.runnerGroupId,
          labels: labelsOf(spec.labels),
          RunnerSetting: { disableUpdate: true },
        },
        idempotent: false,
      });
      return readScaleSet(body);
    },

    async updateScaleSet(id: number, spec: { labels: readonly string[] }) {
      const { body } = await service.request({
        operation: 'update_scale_set',
        method: 'PATCH',
        path: `${SCALE_SETS}/${id}`,
        body: { labels: labelsOf(spec.labels), RunnerSetting: { disableUpdate: true } },
        idempotent: true,
      });
      return readScaleSet(body);
    },

    /** Not retried here: a lost answer leaves a session the next try meets as a 409. */
    async createSession(scaleSetId: number, ownerName: string, signal?: AbortSignal): Promise<Session> {
      const { body } = await service.request({
        operation: 'create_session',
        method: 'POST',
        path: `${SCALE_SETS}/${scaleSetId}/sessions`,
        body: { ownerName },
        idempotent: false,
        ...(signal ? { signal } : {}),
      });
      return readSession(body);
    },

    /** A new message-queue token for the session; the service answers with the whole session. */
    async refreshSession(scaleSetId: number, sessionId: string, signal?: AbortSignal): Promise<Session> {
      const { body } = await service.request({
        operation: 'refresh_session',
        method: 'PATCH',
        path: `${SCALE_SETS}/${scaleSetId}/sessions/${sessionId}`,
        idempotent: true,
        ...(signal ? { signal } : {}),
      });
      return readSession(body);
    },

    async deleteSession(scaleSetId: number, sessionId: string, timeoutMs?: number): Promise<void> {
      await service.request({
        operation: 'delete_session',
        method: 'DELETE',
        path: `${SCALE_SETS}/${scaleSetId}/sessions/${sessionId}`,
        idempotent: true,
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      });
    },

    /**
     * The next message after `lastMessageId`, or null when none came within the service's long poll
     * (202). `maxCapacity`: how many jobs the scale set can take, so that the service assigns no more.
     * Not retried here: the caller's loop polls again.
     */
    async getMessage(
      session: Session,
      lastMessageId: number,
      maxCapacity: number,
      timeoutMs: number,
      signal: AbortSignal,
    ): Promise<QueueMessage | null> {
      const { status, body } = await service.request({
        operation: 'get_message',
        method: 'GET',
        path: session.messageQueueUrl,
        bearer: session.messageQueueAccessToken,
        ...(lastMessageId > 0 ? { query: { lastMessageId: String(lastMessageId) } } : {}),
        headers: { 'X-ScaleSetMaxCapacity': String(Math.max(0, Math.floor(maxCapacity))) },
        idempotent: false,
        timeoutMs,
        signal,
      });
      if (status === 202 || body === null) return null;
      return readQueueMessage(body);
    },

    /** The acknowledgement: a deleted message is not delivered again. */
    async deleteMessage(session: Session, messageId: number): Promise<void> {
      const url = new URL(session.messageQueueUrl);
      url.pathname = `${url.pathname.replace(/\/+$/, '')}/${messageId}`;
      await service.request({
        operation: 'delete_message',
        method: 'DELETE',
        path: url.href,
        bearer: session.messageQueueAccessToken,
        idempotent: true,
      });
    },

    /** Takes the announced jobs for the scale set (GHES); returns the ids the service gave it. */
    async acquireJobs(scaleSetId: number, session: Session, ids: readonly number[]): Promise<number[]> {
      const { body } = await service.request({
        operation: 'acquire_jobs',
        method: 'POST',
        path: `${SCALE_SETS}/${scaleSetId}/acquirejobs`,
        bearer: session.messageQueueAccessToken,
        body: ids,
        idempotent: true,
      });
      return listOf(body, 'acquired jobs', (value, what) => {
        if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
          throw new Error(`${what}: expected a job request id`);
        }
        return value;
      });
    },

    /** Not retried here: a lost answer leaves a runner of that name, which the next try meets as a 409. */
    async generateJitConfig(scaleSetId: number, name: string): Promise<JitConfig> {
      const { body } = await service.request({
        operation: 'generate_jit_config',
        method: 'POST',
        path: `${SCALE_SETS}/${scaleSetId}/generatejitconfig`,
        body: { name, workFolder: '_work' },
        idempotent: false,
      });
      return readJitConfig(body);
    },

    async runnerByName(name: string): Promise<RunnerRef | null> {
      const { body } = await service.request({
        operation: 'get_runner',
        method: 'GET',
        path: AGENTS,
        query: { agentName: name },
        idempotent: true,
      });
      return (
        listOf(body, 'runners', readRunner).find((r) => r.name.toLowerCase() === name.toLowerCase()) ?? null
      );
    },

    async removeRunner(id: number): Promise<void> {
      await service.request({
        operation: 'remove_runner',
        method: 'DELETE',
        path: `${AGENTS}/${id}`,
        idempotent: true,
      });
    },
  };
}
