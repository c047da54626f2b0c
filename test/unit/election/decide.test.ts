import { describe, expect, it } from 'vitest';
import { decide, type ElectionView, type ObservedLease } from '../../../src/election/decide.ts';

const LEASE = 15_000;
const DEADLINE = 10_000;

function view(over: Partial<ElectionView> = {}): ElectionView {
  return {
    identity: 'me',
    now: 100_000,
    leaseDurationMs: LEASE,
    lastRenewedByMeAt: null,
    renewDeadlineMs: DEADLINE,
    ...over,
  };
}

function lease(holder: string | undefined, observedAt: number, durationMs = LEASE): ObservedLease {
  return { holder, durationMs, observedAt };
}

describe('decide', () => {
  it('acquires a lease that does not exist or that nobody holds', () => {
    expect(decide(view(), null, true)).toBe('acquire');
    expect(decide(view(), lease(undefined, 99_000), true)).toBe('acquire');
    // A released lease (holder cleared) is taken at once, however recently it was written.
    expect(decide(view(), lease('', 100_000, 1_000), true)).toBe('acquire');
  });

  it('renews its own lease', () => {
    expect(decide(view({ lastRenewedByMeAt: 98_000 }), lease('me', 98_000), true)).toBe('renew');
  });

  it('follows a valid lease held by another replica', () => {
    expect(decide(view(), lease('other', 90_000), true)).toBe('follow');
    expect(decide(view({ now: 90_000 + LEASE - 1 }), lease('other', 90_000), true)).toBe('follow');
  });

  it('takes over a lease whose holder stopped renewing it for the lease duration', () => {
    expect(decide(view({ now: 90_000 + LEASE }), lease('other', 90_000), true)).toBe('acquire');
    // The holder's own duration counts, not this replica's.
    expect(decide(view({ now: 93_000 }), lease('other', 90_000, 3_000), true)).toBe('acquire');
  });

  it('steps down once renewals failed for the renew deadline, before the lease can expire', () => {
    const renewed = 90_000;
    expect(decide(view({ now: renewed + DEADLINE - 1, lastRenewedByMeAt: renewed }), null, false)).toBe(
      'renew',
    );
    expect(decide(view({ now: renewed + DEADLINE, lastRenewedByMeAt: renewed }), null, false)).toBe('lost');
    expect(
      decide(view({ now: renewed + DEADLINE, lastRenewedByMeAt: renewed }), lease('me', renewed), true),
    ).toBe('lost');
    expect(DEADLINE).toBeLessThan(LEASE);
  });

  it('steps down when another replica holds the lease it believed it held', () => {
    expect(decide(view({ lastRenewedByMeAt: 99_000 }), lease('other', 99_500), true)).toBe('lost');
  });

  it('neither acquires nor follows blindly while the apiserver does not answer', () => {
    expect(decide(view(), null, false)).toBe('follow');
  });
});
