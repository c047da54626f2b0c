/** The prefix of runner names when `github.runners.namePrefix` is left at its default. */
export const DEFAULT_RUNNER_NAME_PREFIX = 'gantry';

/**
 * The name of a runner (its pod, and the runner GitHub sees) from its class and name seed. The same
 * seed always yields the same name, so a create that is planned or retried twice collides with
 * itself (AlreadyExists) instead of launching a second runner.
 */
export function runnerNameFor(
  className: string,
  nameSeed: string,
  prefix: string = DEFAULT_RUNNER_NAME_PREFIX,
): string {
  const digest = digest40(`${className}\u0000${nameSeed}`);
  // prefix + "-" + class + "-" + 10 hex digits stays within the 63 characters of a DNS label.
  const room = 63 - prefix.length - 2 - digest.length;
  const classPart = className.slice(0, room).replace(/-+$/, '');
  return `${prefix}-${classPart}-${digest}`;
}

/**
 * 40 bits of two FNV-1a passes, as 10 hex digits. Not a security measure, only a spread: a name in
 * use is skipped by the planner, so a rare collision costs nothing. The planner names thousands of
 * runners per pass, where a cryptographic hash was most of its time.
 */
function digest40(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + ((b >>> 0) & 0xff).toString(16).padStart(2, '0');
}
