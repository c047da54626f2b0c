import { createHash } from 'node:crypto';

/**
 * The name of a runner (its pod, and the runner GitHub sees) from its class and name seed. The same
 * seed always yields the same name, so a create that is planned or retried twice collides with
 * itself (AlreadyExists) instead of launching a second runner.
 */
export function runnerNameFor(className: string, nameSeed: string): string {
  const digest = createHash('sha256').update(`${className}\u0000${nameSeed}`).digest('hex').slice(0, 10);
  // "gantry-" + class + "-" + 10 hex digits stays within the 63 characters of a DNS label.
  const classPart = className.slice(0, 63 - 'gantry-'.length - 1 - digest.length).replace(/-+$/, '');
  return `gantry-${classPart}-${digest}`;
}
