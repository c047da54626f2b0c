import { z } from 'zod';
import { isDnsLabel, isDnsSubdomain } from '../../model/kube-names.ts';

const dnsLabel = z.string().refine(isDnsLabel, { error: 'expected a DNS-1123 label' });
const dnsSubdomain = z.string().refine(isDnsSubdomain, { error: 'expected a DNS-1123 subdomain' });

/**
 * The Tekton queue: PipelineRuns that match a class are held pending at creation by Gantry's
 * mutating admission webhook and admitted when their class has room.
 */
export const tektonConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Queue Tekton PipelineRuns (tekton.dev/v1) into classes.'),
    namespaces: z
      .array(dnsLabel)
      .default([])
      .describe('Namespaces whose PipelineRuns are queued; empty: every namespace (a ClusterRole).'),
    webhook: z
      .strictObject({
        address: z
          .string()
          .min(1)
          .default('0.0.0.0')
          .describe('Address the HTTPS admission server listens on.'),
        port: z.int().min(0).max(65535).default(8443).describe('Port of the HTTPS admission server.'),
        tls: z
          .strictObject({
            certFile: z
              .string()
              .min(1)
              .optional()
              .describe(
                'Serving certificate (PEM), e.g. from cert-manager; re-read when it changes. With keyFile; ' +
                  'without both, Gantry makes and rotates its own.',
              ),
            keyFile: z.string().min(1).optional().describe('Private key (PEM) of certFile.'),
            secretName: dnsSubdomain
              .default('gantry-webhook-tls')
              .describe(
                'Self-managed: the Secret in Gantry’s namespace that holds the CA and serving certificate.',
              ),
            serviceName: dnsLabel
              .default('gantry')
              .describe(
                'Self-managed: the Service the apiserver calls; the certificate names <service>.<namespace>.svc.',
              ),
            extraHosts: z
              .array(z.string().min(1))
              .default([])
              .describe('Self-managed: more DNS names or IP addresses the certificate is valid for.'),
            webhookConfigurationName: dnsSubdomain
              .default('gantry')
              .describe(
                'Self-managed: the MutatingWebhookConfiguration whose caBundle Gantry keeps current.',
              ),
            validityDays: z
              .int()
              .min(2)
              .default(365)
              .describe('Self-managed: lifetime of a certificate; it is replaced after two thirds of it.'),
          })
          .prefault({})
          .refine((tls) => (tls.certFile === undefined) === (tls.keyFile === undefined), {
            message: 'set both certFile and keyFile, or neither (self-managed certificate)',
            path: ['keyFile'],
          }),
      })
      .prefault({}),
  })
  .prefault({});

export type TektonConfig = z.output<typeof tektonConfigSchema>;
