import { z } from 'zod';

const repoFullName = z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'expected owner/name');

/** Tokens travel with every request: plain http only where nothing leaves the machine. */
function isHttpsOrLoopback(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  if (protocol === 'https:') return true;
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

const eventName = z
  .string()
  .regex(/^[a-z][a-z_]*$/, 'expected a GitHub event name such as push or pull_request_target');

/**
 * Which GitHub jobs are untrusted (they may only use untrusted classes), which may not use trusted-only
 * classes, and what Gantry does when GitHub's side does not keep the tiers apart.
 */
const trustSchema = z
  .strictObject({
    publicRepositories: z
      .enum(['untrusted', 'trusted'])
      .default('untrusted')
      .describe(
        'Jobs of public repositories: untrusted (anyone can open a pull request there, and every runner ' +
          'such a job can reach can get theirs) or trusted. Fork pull requests are untrusted either way.',
      ),
    untrustedActors: z
      .array(z.string().min(1))
      .default(['dependabot[bot]'])
      .describe(
        'Runs triggered by these accounts (actor or triggering actor, case-insensitive) are untrusted.',
      ),
    untrustedEvents: z
      .array(eventName)
      .default([])
      .describe('Runs of these events are untrusted, e.g. [pull_request_target, issue_comment].'),
    trustedOnlyDeniedEvents: z
      .array(eventName)
      .default(['pull_request_target', 'workflow_run', 'issue_comment'])
      .describe(
        'Runs of these events never get trusted-only runners (they act on pull requests, artifacts or ' +
          'comments others control). A class’s allowedEvents, when set, replaces this list for that class.',
      ),
    unsafePlacement: z
      .enum(['refuse', 'warn'])
      .default('refuse')
      .describe(
        'When a trusted class’s runner group lets untrusted jobs reach its runners (it admits public ' +
          'repositories; for trustedOnly classes also: any workflow may use it): refuse to start (exit 2), ' +
          'and later hold the class and remove its idle runners; or only log an error and count it.',
      ),
    placementCheckIntervalSeconds: z
      .int()
      .min(60)
      .default(600)
      .describe('How often the runner groups are read again (conditional requests: free when unchanged).'),
  })
  .prefault({});

export type TrustPolicy = z.output<typeof trustSchema>;

const appAuthSchema = z
  .strictObject({
    kind: z.literal('app'),
    appId: z
      .union([z.int().positive(), z.string().min(1)])
      .describe('GitHub App id, or its client id (both are accepted as JWT issuer).'),
    installationId: z
      .int()
      .positive()
      .describe('Installation of the App on the organisation or repositories.'),
    privateKey: z.string().min(1).optional().describe('PEM private key of the App (prefer privateKeyPath).'),
    privateKeyPath: z
      .string()
      .min(1)
      .optional()
      .describe('File holding the PEM private key (a mounted Secret).'),
    tokenRefreshMarginSeconds: z
      .int()
      .min(60)
      .max(1800)
      .default(300)
      .describe('Refresh the installation token this long before its expires_at.'),
  })
  .refine((a) => (a.privateKey === undefined) !== (a.privateKeyPath === undefined), {
    message: 'set exactly one of privateKey or privateKeyPath',
    path: ['privateKeyPath'],
  });

const tokenAuthSchema = z
  .strictObject({
    kind: z.literal('token'),
    token: z.string().min(1).optional().describe('Personal access token (prefer tokenPath).'),
    tokenPath: z.string().min(1).optional().describe('File holding the personal access token.'),
  })
  .refine((a) => (a.token === undefined) !== (a.tokenPath === undefined), {
    message: 'set exactly one of token or tokenPath',
    path: ['tokenPath'],
  });

/**
 * Runner scale-set mode: GitHub's Actions service hands each class's jobs to a scale set over a
 * long-polled message session; no webhook, no polling of the REST API.
 */
const scaleSetsSchema = z
  .strictObject({
    configUrl: z
      .url({ protocol: /^https?$/ })
      .refine(isHttpsOrLoopback, {
        error: 'expected an https URL (plain http only for a loopback address): requests carry tokens',
      })
      .optional()
      .describe(
        'The organisation’s URL on GitHub that registration names (https://github.com/ORG, or ' +
          'https://HOST/ORG on GitHub Enterprise Server). Default: derived from apiUrl and runners.org.',
      ),
    names: z
      .record(
        z.string(),
        z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'expected letters, digits, ., _ and - (at most 100)'),
      )
      .default({})
      .describe(
        'Scale set name per class, e.g. { lint: ci-lint }. Default: runners.namePrefix-CLASS. A scale set ' +
          'of that name in the class’s runner group is adopted (its labels set to the class’s), else created.',
      ),
    pollTimeoutSeconds: z
      .number()
      .min(60)
      .max(600)
      .default(90)
      .describe(
        'Longest wait for one long poll of a session’s messages (GitHub answers within about 50 s when ' +
          'nothing happens); then the poll is dropped and sent again.',
      ),
    sessionConflictRetrySeconds: z
      .number()
      .min(1)
      .max(300)
      .default(30)
      .describe(
        'Wait between attempts to open a session while the service says the scale set has one ' +
          '(409: another Gantry’s, or one a killed process left until the service expires it).',
      ),
    adminTokenRefreshMarginSeconds: z
      .int()
      .min(60)
      .max(1800)
      .default(300)
      .describe('Renew the Actions service’s token this long before the expiry its claims state.'),
  })
  .prefault({})
  .describe(
    'Runner scale sets (mode scaleSets): each GitHub class is one scale set of the organisation, in its ' +
      'runner group, with its labels.',
  );

/**
 * The `github:` section of Gantry's configuration. Disabled by default so an empty file stays valid;
 * once enabled, auth is required and the runner scope must name what it needs.
 */
export const githubConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Take demand from GitHub Actions.'),
    mode: z
      .enum(['webhook', 'scaleSets'])
      .default('webhook')
      .describe(
        'webhook: jobs from webhook deliveries and the REST poller, JIT runners through the REST API. ' +
          'scaleSets: every class is a runner scale set; jobs, JIT configs and runner removal go through ' +
          'the Actions service’s message sessions (no inbound webhook, no per-job REST calls).',
      ),
    scaleSets: scaleSetsSchema,
    apiUrl: z
      .url({ protocol: /^https?$/ })
      .refine(isHttpsOrLoopback, {
        error: 'expected an https URL (plain http only for a loopback address): requests carry the token',
      })
      .default('https://api.github.com')
      .describe(
        'REST API base URL: https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server.',
      ),
    auth: z
      .discriminatedUnion('kind', [appAuthSchema, tokenAuthSchema])
      .optional()
      .describe('GitHub App (recommended) or personal access token.'),
    repositories: z
      .array(repoFullName)
      .default([])
      .describe('Repositories to poll (owner/name). Empty: every repository of the App installation.'),
    webhook: z
      .strictObject({
        secret: z.string().min(1).optional().describe('Webhook secret (prefer secretPath).'),
        secretPath: z.string().min(1).optional().describe('File holding the webhook secret.'),
        address: z
          .string()
          .min(1)
          .default('0.0.0.0')
          .describe('Address the webhook listener binds, apart from the status and metrics one.'),
        port: z
          .int()
          .min(0)
          .max(65535)
          .default(8081)
          .describe(
            'Port of the webhook listener: the only one to publish to GitHub (POST /webhooks/github).',
          ),
        maxBodyBytes: z
          .int()
          .min(64 * 1024)
          .max(25 * 1024 * 1024)
          .default(1024 * 1024)
          .describe(
            'Largest delivery read; larger ones get 413 by their Content-Length, before anything is read ' +
              '(workflow_job payloads are a few KiB).',
          ),
        maxConcurrentDeliveries: z
          .int()
          .min(1)
          .default(256)
          .describe('Deliveries being read or handled at once; beyond, 503 before the body is read.'),
        maxConcurrentLargeDeliveries: z
          .int()
          .min(1)
          .default(4)
          .describe(
            'Of those, deliveries declaring more than 64 KiB at once: a workflow_job is a few KiB, so ' +
              'large bodies are rare and costly to read.',
          ),
        maxBufferedBytes: z
          .int()
          .min(1024 * 1024)
          .default(16 * 1024 * 1024)
          .describe('Body bytes held at once across all deliveries being read; beyond, 503.'),
        maxQueuedAgeHours: z
          .number()
          .positive()
          .default(25)
          .describe(
            'A queued delivery for a job created longer ago is ignored as stale or replayed (GitHub cancels ' +
              'a job queued for 24 hours).',
          ),
        deliveryCacheSize: z
          .int()
          .min(100)
          .default(10_000)
          .describe('How many X-GitHub-Delivery ids are remembered to drop redeliveries.'),
        queueSize: z
          .int()
          .min(1)
          .default(5_000)
          .describe('Accepted deliveries waiting to be processed; beyond it deliveries get 503.'),
      })
      .prefault({})
      .refine((w) => w.secret === undefined || w.secretPath === undefined, {
        message: 'set at most one of secret or secretPath',
        path: ['secretPath'],
      })
      .describe(
        'POST /webhooks/github on a listener of its own; without a secret the listener is off and only the ' +
          'poller runs. Deliveries for another installation of the App or a repository outside the ' +
          'configuration are answered 202 and ignored.',
      ),
    poll: z
      .strictObject({
        intervalSeconds: z
          .number()
          .min(5)
          .default(30)
          .describe('Poll interval while webhooks are not known to flow (idle polls are free 304s).'),
        backstopIntervalSeconds: z
          .number()
          .min(30)
          .default(300)
          .describe(
            'Poll interval while signed webhooks arrive: a job whose webhook was lost is found within it ' +
              '(the first interval; see backstopMaxIntervalSeconds).',
          ),
        backstopMaxIntervalSeconds: z
          .number()
          .min(30)
          .default(1200)
          .describe(
            'While webhooks keep arriving and backstop sweeps find nothing they missed, the backstop ' +
              'interval doubles up to this; a sweep that finds a missed job brings it back. Listings cost ' +
              'quota per repository and hour, whatever the jobs.',
          ),
        perPage: z.int().min(1).max(100).default(100).describe('Page size of list requests.'),
      })
      .prefault({}),
    trust: trustSchema,
    runners: z
      .strictObject({
        org: z
          .string()
          .min(1)
          .optional()
          .describe('Organisation that org-scoped classes register their runners in.'),
        namePrefix: z
          .string()
          .regex(
            /^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$/,
            'expected a lowercase DNS label of at most 20 characters',
          )
          .default('gantry')
          .describe(
            'Prefix of runner (and pod) names; runners with it are treated as this installation’s own, so ' +
              'each Gantry installation sharing an organisation needs its own prefix.',
          ),
        sweepIntervalSeconds: z
          .int()
          .min(10)
          .default(900)
          .describe(
            'How often registrations with no runner pod (or offline past the grace) are looked for and ' +
              'removed; also once when a replica starts leading. A conditional listing: free when unchanged.',
          ),
        offlineGraceSeconds: z
          .int()
          .min(30)
          .default(600)
          .describe('An owned runner offline for longer than this is deleted.'),
        concurrency: z
          .int()
          .positive()
          .max(100)
          .default(16)
          .describe(
            'Most runner registrations (JIT configs) and removals sent to GitHub at once. The limit adapts ' +
              'below it: it starts at 8 (or this, if lower), grows while registrations wait and GitHub ' +
              'answers about as fast with more in flight, is taken back when latency rises with it, and ' +
              'halves on 5xx, timeouts and rate limits.',
          ),
      })
      .prefault({}),
    requestTimeoutSeconds: z
      .number()
      .positive()
      .max(120)
      .default(10)
      .describe('Timeout of one GitHub request.'),
    maxRetries: z
      .int()
      .min(0)
      .max(8)
      .default(3)
      .describe('Retries of a failed idempotent request (jittered backoff).'),
    runCacheSize: z.int().min(100).default(10_000).describe('Workflow runs remembered for fork detection.'),
  })
  .superRefine((c, ctx) => {
    if (!c.enabled) return;
    if (!c.auth)
      ctx.addIssue({ code: 'custom', path: ['auth'], message: 'required when github.enabled is true' });
    if (c.auth?.kind === 'token' && c.repositories.length === 0 && c.mode === 'webhook') {
      ctx.addIssue({
        code: 'custom',
        path: ['repositories'],
        message:
          'list owner/name entries: a personal access token has no installation to list repositories from',
      });
    }
  });

export type GithubConfig = z.output<typeof githubConfigSchema>;
export type ScaleSetsConfig = GithubConfig['scaleSets'];
export type GithubAuthConfig = NonNullable<GithubConfig['auth']>;
