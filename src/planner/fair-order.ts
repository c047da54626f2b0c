/**
 * Orders waiting units (a runner to create, a run to admit) so that any prefix of the order is a
 * max-min fair split across tenants (repositories, Tekton namespaces): the order goes round-robin
 * over the tenants that still wait, so with capacity C and n tenants every tenant gets at least
 * min(its demand, floor(C / n)) — integer water-filling — whatever C turns out to be once quotas
 * and rates have had their say.
 */

export interface Tenant<Unit> {
  key: string;
  /** Slots the tenant holds already; fewer goes first within a round. */
  held: number;
  /** When its oldest waiting unit was queued; earlier goes first among equals. */
  oldest: number;
  /** Its units, most urgent first. */
  units: readonly Unit[];
  /**
   * How many of its units come before any tenant's units beyond their share (`maxShare`). The rest
   * still follow, so capacity nobody else wants is not left idle.
   */
  withinShare: number;
}

export function fairOrder<Unit>(tenants: readonly Tenant<Unit>[], limit: number): Unit[] {
  const ordered = [...tenants].sort(
    (a, b) => a.held - b.held || a.oldest - b.oldest || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  );
  const out: Unit[] = [];
  const withinShare = ordered.map((tenant) => ({
    units: tenant.units,
    next: 0,
    end: Math.min(tenant.units.length, Math.max(0, tenant.withinShare)),
  }));
  roundRobin(withinShare, out, limit);
  const beyondShare = withinShare.map((queue) => ({
    units: queue.units,
    next: queue.end,
    end: queue.units.length,
  }));
  roundRobin(beyondShare, out, limit);
  return out;
}

interface Queue<Unit> {
  units: readonly Unit[];
  next: number;
  end: number;
}

function roundRobin<Unit>(queues: Queue<Unit>[], out: Unit[], limit: number): void {
  let active = queues.filter((queue) => queue.next < queue.end);
  while (active.length > 0 && out.length < limit) {
    for (const queue of active) {
      if (out.length >= limit) return;
      const unit = queue.units[queue.next++];
      if (unit !== undefined) out.push(unit);
    }
    active = active.filter((queue) => queue.next < queue.end);
  }
}
