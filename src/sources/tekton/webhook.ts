import type { Logger } from 'pino';
import type { RunnerClasses } from '../../classes/schema.ts';
import type { KubeApis } from '../../kube/client.ts';
import { createPipelineRunAdmission } from './admission.ts';
import { createAdmissionServer } from './admission-server.ts';
import type { TektonConfig } from './config.ts';
import { startWebhookTls } from './tls/webhook-tls.ts';

export interface TektonWebhookOptions {
  config: TektonConfig;
  classes: RunnerClasses;
  apis: KubeApis;
  /** Gantry's own namespace: where a self-managed certificate's Secret lives. */
  namespace: string;
  logger: Logger;
}

/**
 * The admission webhook every replica serves (its decision needs only the classes, no leader): the
 * serving certificate from mounted files or made and rotated by Gantry, and the HTTPS server.
 */
export async function startTektonWebhook(options: TektonWebhookOptions) {
  const { config, logger } = options;
  const certificates = await startWebhookTls({
    tls: config.webhook.tls,
    apis: options.apis,
    namespace: options.namespace,
    logger,
  });
  const server = createAdmissionServer({
    address: config.webhook.address,
    port: config.webhook.port,
    logger,
    review: createPipelineRunAdmission({ classes: options.classes, now: Date.now }),
    tls: certificates,
  });
  try {
    const { url } = await server.start();
    return {
      url,
      async stop(): Promise<void> {
        await server.stop();
        await certificates.stop();
      },
    };
  } catch (err) {
    await certificates.stop();
    throw err;
  }
}

export type TektonWebhook = Awaited<ReturnType<typeof startTektonWebhook>>;
