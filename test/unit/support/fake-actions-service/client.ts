import { createPrivateKey, sign } from 'node:crypto';
import type {
  queueMessage,
  runnerGroupBody,
  runnerReference,
  scaleSetBody,
  serviceError,
  sessionBody,
} from '../../../support/fake-actions-service/wire.ts';
import { appKeys } from '../../../support/fake-github/index.ts';

// A bare-hands client of the scale-set protocol for the fake's own tests: every request visible, no
// retries, so a test sees exactly what the fake answered.

export interface Answer<T> {
  status: number;
  headers: Headers;
  body: T;
  ms: number;
}

/** The shapes tests read, from the fake's own builders. */
export type ServiceErrorWire = ReturnType<typeof serviceError>;
export type ScaleSetWire = ReturnType<typeof scaleSetBody>;
export type SessionWire = ReturnType<typeof sessionBody>;
export type MessageWire = ReturnType<typeof queueMessage>;
export type RunnerWire = ReturnType<typeof runnerReference>;
export type RunnerGroupWire = ReturnType<typeof runnerGroupBody>;
export interface ListWire<T> {
  count: number;
  value: T[];
}
export interface JitWire {
  runner: RunnerWire;
  encodedJITConfig: string;
}
export interface TokenWire {
  token: string;
  expires_at: string;
}
export interface AdminWire {
  url: string;
  token: string;
}

/** One job message as a client decodes it (the union of every type's fields). */
export interface JobMessageWire {
  messageType: string;
  runnerRequestId: number;
  repositoryName: string;
  ownerName: string;
  jobId: string;
  jobWorkflowRef: string;
  jobDisplayName: string;
  workflowRunId: number;
  eventName: string;
  requestLabels: string[];
  queueTime: string;
  scaleSetAssignTime: string;
  runnerAssignTime: string;
  finishTime: string;
  acquireJobUrl?: string;
  runnerId?: number;
  runnerName?: string;
  result?: string;
}

/** The caller names the shape it expects; a JSON body is not checked against it (the test does that). */
export async function http<T = ServiceErrorWire>(
  method: string,
  url: string,
  init: { auth?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer<T>> {
  const started = Date.now();
  const res = await fetch(url, {
    method,
    headers: {
      ...(init.auth ? { authorization: init.auth } : {}),
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? JSON.parse(text) : undefined,
    ms: Date.now() - started,
  };
}

export function appJwt(appId: number, nowMs: number): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const iat = Math.floor(nowMs / 1000) - 60;
  const unsigned = `${enc({ alg: 'RS256', typ: 'JWT' })}.${enc({ iat, exp: iat + 540, iss: String(appId) })}`;
  const key = createPrivateKey(appKeys().privateKeyPem);
  return `${unsigned}.${sign('RSA-SHA256', Buffer.from(unsigned), key).toString('base64url')}`;
}

export interface AdminConnection {
  tenantUrl: string;
  adminToken: string;
  registrationToken: string;
}

/** The bootstrap the scaleset client performs: App JWT → installation token → registration → admin JWT. */
export async function bootstrap(
  rest: { apiUrl: string; configUrl: string; installationId: number },
  appId: number,
  nowMs: number,
): Promise<AdminConnection> {
  const installation = await http<TokenWire>(
    'POST',
    `${rest.apiUrl}/app/installations/${rest.installationId}/access_tokens`,
    {
      auth: `Bearer ${appJwt(appId, nowMs)}`,
    },
  );
  if (installation.status !== 201) throw new Error(`access_tokens answered ${installation.status}`);
  const org = new URL(rest.configUrl).pathname.slice(1);
  const registration = await http<TokenWire>(
    'POST',
    `${rest.apiUrl}/orgs/${org}/actions/runners/registration-token`,
    {
      auth: `Bearer ${installation.body.token}`,
    },
  );
  if (registration.status !== 201) throw new Error(`registration-token answered ${registration.status}`);
  const admin = await http<AdminWire>('POST', `${rest.apiUrl}/actions/runner-registration`, {
    auth: `RemoteAuth ${registration.body.token}`,
    body: { url: rest.configUrl, runner_event: 'register' },
  });
  if (admin.status !== 200) throw new Error(`runner-registration answered ${admin.status}`);
  return {
    tenantUrl: admin.body.url,
    adminToken: admin.body.token,
    registrationToken: registration.body.token,
  };
}

/** A call to the Actions service the way the Go client makes it (api-version on every request). */
export function service(conn: AdminConnection) {
  return <T = ServiceErrorWire>(
    method: string,
    path: string,
    body?: unknown,
    auth = `Bearer ${conn.adminToken}`,
  ) => {
    const url = new URL(path, conn.tenantUrl);
    url.searchParams.set('api-version', '6.0-preview');
    return http<T>(method, url.toString(), { auth, body });
  };
}

type QueueAccess = { messageQueueUrl: string; messageQueueAccessToken: string };

/** A 200 carries a message, a 202 nothing, anything else an error body. */
export function poll(session: QueueAccess, lastMessageId: number, maxCapacity = 10) {
  const url = new URL(session.messageQueueUrl);
  if (lastMessageId > 0) url.searchParams.set('lastMessageId', String(lastMessageId));
  return http<MessageWire>('GET', url.toString(), {
    auth: `Bearer ${session.messageQueueAccessToken}`,
    headers: {
      accept: 'application/json; api-version=6.0-preview',
      'x-scalesetmaxcapacity': String(maxCapacity),
    },
  });
}

export function acknowledge(session: QueueAccess, messageId: number) {
  const url = new URL(session.messageQueueUrl);
  url.pathname = `${url.pathname}/${messageId}`;
  return http<undefined>('DELETE', url.toString(), { auth: `Bearer ${session.messageQueueAccessToken}` });
}

/** The job messages of a 200 poll: `body` is a JSON string holding an array. */
export function jobMessages(answer: Answer<MessageWire>): JobMessageWire[] {
  return JSON.parse(answer.body.body) as JobMessageWire[];
}
