// The demo's Gantry configuration: four classes over a simulated GitHub, cost rates of typical cloud
// prices.

export const WEBHOOK_SECRET = 'demo-webhook-secret';
export const APP_ID = 1001;

export interface DemoConfigInput {
  apiUrl: string;
  installationId: number;
  keyPath: string;
  port: number;
  /** GitHub's webhook listener, apart from the status page and metrics. */
  webhookPort: number;
  namespace: string;
  sandboxNamespace: string;
}

/**
 * Four classes: quick lint runners with a warm pool, bigger integration runners with a cache volume,
 * a small class for fork pull requests (they may only go to an untrusted class), and trusted-only
 * release runners in a protected runner group. Cost rates are typical on-demand cloud prices.
 */
export function demoConfig({
  apiUrl,
  installationId,
  keyPath,
  port,
  webhookPort,
  namespace,
  sandboxNamespace,
}: DemoConfigInput) {
  const common = {
    namespace,
    nodeSelector: { type: 'kwok' },
    idleTimeout: '20s',
    cost: { perVcpuHour: 0.04, perGibHour: 0.005 },
  };
  return {
    http: { address: '127.0.0.1', port },
    log: { level: 'info' },
    github: {
      enabled: true,
      apiUrl,
      auth: { kind: 'app', appId: APP_ID, installationId, privateKeyPath: keyPath },
      webhook: { secret: WEBHOOK_SECRET, address: '127.0.0.1', port: webhookPort },
      runners: { org: 'acme' },
    },
    classes: {
      lint: {
        ...common,
        match: { github: { labels: ['self-hosted', 'linux', 'lint'] } },
        minIdle: 2,
        maxRunners: 15,
        resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '1Gi' } },
      },
      integration: {
        ...common,
        match: { github: { labels: ['self-hosted', 'linux', 'integration'] } },
        maxRunners: 10,
        resources: { requests: { cpu: '2', memory: '4Gi' }, limits: { memory: '4Gi' } },
        caches: [{ name: 'deps', type: 'ephemeral', size: '5Gi', tools: ['npm', 'go'] }],
      },
      untrusted: {
        ...common,
        // A namespace and runner group of its own, and a sandboxing runtime: see docs/trust.md.
        namespace: sandboxNamespace,
        runnerGroup: 'sandbox',
        runtimeClassName: 'gvisor',
        match: { github: { labels: ['self-hosted', 'linux', 'sandbox'] } },
        untrusted: true,
        maxRunners: 3,
        resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '1Gi' } },
      },
      release: {
        ...common,
        match: { github: { labels: ['self-hosted', 'linux', 'release'] } },
        trustedOnly: true,
        allowedEvents: ['push', 'release'],
        allowedRefs: ['refs/heads/main', 'refs/tags/v*'],
        runnerGroup: 'release',
        maxRunners: 2,
        resources: { requests: { cpu: '4', memory: '8Gi' }, limits: { memory: '8Gi' } },
      },
    },
  };
}
