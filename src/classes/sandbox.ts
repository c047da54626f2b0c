/**
 * The floor every pod Gantry shapes stands on, runner pods and Tekton runs' pod templates alike:
 * what Pod Security "restricted" asks, and no service-account token unless a trusted class asks.
 */
export const SANDBOX_FLOOR = {
  runAsNonRoot: true,
  seccompProfile: { type: 'RuntimeDefault' },
  automountServiceAccountToken: false,
} as const;

/** A container's share of the floor: no privilege, none to gain, no capability. */
export const SANDBOX_CONTAINER = {
  allowPrivilegeEscalation: false,
  privileged: false,
  capabilities: { drop: ['ALL'] },
} as const;
