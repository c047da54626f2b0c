import type { Logger } from 'pino';
import type { KubeApis } from '../../../kube/client.ts';
import type { TektonConfig } from '../config.ts';
import { startFileTls } from './file-source.ts';
import { selfManagedHosts, startSelfManagedTls } from './self-managed.ts';
import type { RunningCertificateSource } from './source.ts';

export interface WebhookTlsOptions {
  tls: TektonConfig['webhook']['tls'];
  apis: Pick<KubeApis, 'core' | 'admission'>;
  /** Gantry's own namespace: the self-managed Secret's, and part of the Service's DNS name. */
  namespace: string;
  logger: Logger;
}

/**
 * The serving certificate the configuration asks for: from certFile and keyFile when set
 * (cert-manager or another issuer renews them), else Gantry's own, kept in a Secret.
 * Resolves once the first certificate is there.
 */
export function startWebhookTls({
  tls,
  apis,
  namespace,
  logger,
}: WebhookTlsOptions): Promise<RunningCertificateSource> {
  if (tls.certFile !== undefined && tls.keyFile !== undefined)
    return startFileTls({ certFile: tls.certFile, keyFile: tls.keyFile, logger });
  return startSelfManagedTls({
    core: apis.core,
    admission: apis.admission,
    namespace,
    secretName: tls.secretName,
    webhookConfigurationName: tls.webhookConfigurationName,
    hosts: selfManagedHosts(tls.serviceName, namespace, tls.extraHosts),
    validityDays: tls.validityDays,
    logger,
  });
}
