/** What Gantry is configured to act for; a signed delivery outside it is not Gantry's business. */
export interface DeliveryScope {
  /**
   * The App installation Gantry acts for. An App has one webhook URL and secret for all its
   * installations, so deliveries for other organisations arrive correctly signed.
   */
  installationId?: number;
  /** owner/name of the repositories Gantry serves; empty: any of `org`'s. */
  repositories: readonly string[];
  /** The organisation org-scoped runners register in. */
  org?: string;
  /**
   * A queued delivery for a job created longer ago than this is stale or replayed (GitHub cancels a
   * job that stays queued for 24 hours): it must not make demand.
   */
  maxQueuedAgeMs: number;
}

/** What a delivery says about where it belongs. */
export interface DeliveryPlace {
  installationId?: number;
  /** owner/name. */
  repository: string;
  /** For a delivery that queues a job: when the job was created (ISO 8601). */
  queuedAt?: string;
}

/** Why the delivery is outside the scope, or undefined when it is Gantry's to act on. Pure. */
export function screenDelivery(
  place: DeliveryPlace,
  scope: DeliveryScope,
  nowMs: number,
): string | undefined {
  const installation = place.installationId;
  if (
    scope.installationId !== undefined &&
    installation !== undefined &&
    installation !== scope.installationId
  ) {
    return `installation ${installation} is not the one configured`;
  }
  const repo = place.repository.toLowerCase();
  if (scope.repositories.length > 0) {
    if (!scope.repositories.some((r) => r.toLowerCase() === repo)) {
      return `repository ${place.repository} is not among github.repositories`;
    }
  } else if (scope.org !== undefined && repo.split('/')[0] !== scope.org.toLowerCase()) {
    return `repository ${place.repository} is not in organisation ${scope.org}`;
  }
  if (place.queuedAt !== undefined) {
    const createdAt = Date.parse(place.queuedAt);
    if (!Number.isNaN(createdAt) && nowMs - createdAt > scope.maxQueuedAgeMs) {
      return `job queued at ${place.queuedAt}, too long ago: a stale or replayed delivery`;
    }
  }
  return undefined;
}
