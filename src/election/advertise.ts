import { isIPv6 } from 'node:net';

const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]']);

/**
 * The base URL the other replicas reach this one at, which the leader writes on its Lease:
 * GANTRY_ADVERTISE_URL when set; otherwise POD_IP (the chart sets it from status.podIP) with the
 * port the HTTP server listens on; otherwise the listen address itself when it names one host.
 * Undefined when none of these says where this replica can be reached.
 */
export function advertisedUrl(
  listenAddress: string,
  listeningUrl: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const explicit = env.GANTRY_ADVERTISE_URL?.trim();
  if (explicit) return explicit.replace(/\/+$/, '');
  const port = new URL(listeningUrl).port;
  const podIp = env.POD_IP?.trim();
  if (podIp) return `http://${isIPv6(podIp) ? `[${podIp}]` : podIp}:${port}`;
  if (WILDCARDS.has(listenAddress.trim())) return undefined;
  return new URL(listeningUrl).origin;
}
