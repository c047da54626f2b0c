/** What a replica saw of the Lease. */
export interface ObservedLease {
  holder: string | undefined;
  /** The holder's own promise of how long the lease lasts after each renewal. */
  durationMs: number | undefined;
  /**
   * Local time at which this replica first saw the Lease as it is now. The Lease's renewTime is
   * the holder's clock; timing the expiry on the observer's own clock makes clock skew harmless.
   */
  observedAt: number;
}

export interface ElectionView {
  identity: string;
  now: number;
  /** Used when the Lease names no duration of its own. */
  leaseDurationMs: number;
  /** Last time this replica renewed the Lease (null: it does not hold it). */
  lastRenewedByMeAt: number | null;
  renewDeadlineMs: number;
}

/**
 * - acquire: the Lease is free or expired; write it with my identity.
 * - renew: I hold it; write a fresh renewTime.
 * - follow: someone else holds a valid lease; do nothing but watch it.
 * - lost: I held it but could not renew within the renew deadline; stop acting now, before the
 *   lease can expire and be taken by another replica.
 */
export type ElectionDecision = 'acquire' | 'renew' | 'follow' | 'lost';

/** When a lease stops protecting its holder, on the observer's clock. */
export function leaseExpiresAt(lease: ObservedLease, fallbackDurationMs: number): number {
  return lease.observedAt + (lease.durationMs ?? fallbackDurationMs);
}

/**
 * The decision of one election round. `lease` is null when the Lease does not exist; `reachable`
 * is false when it could not be read at all.
 */
export function decide(
  view: ElectionView,
  lease: ObservedLease | null,
  reachable: boolean,
): ElectionDecision {
  const heldByMe = view.lastRenewedByMeAt !== null;
  // Acting on a lease older than the renew deadline would overlap with a successor's term.
  if (heldByMe && view.now - (view.lastRenewedByMeAt ?? 0) >= view.renewDeadlineMs) return 'lost';
  if (!reachable) return heldByMe ? 'renew' : 'follow';
  if (lease === null || lease.holder === undefined || lease.holder === '') return 'acquire';
  if (lease.holder === view.identity) return heldByMe ? 'renew' : 'acquire';
  if (view.now >= leaseExpiresAt(lease, view.leaseDurationMs)) return 'acquire';
  // Another replica holds a valid lease: if I believed I led, that belief is stale.
  return heldByMe ? 'lost' : 'follow';
}
