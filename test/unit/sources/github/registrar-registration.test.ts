import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { classesSchema } from '../../../../src/classes/schema.ts';
import type { CreateRunnerAction } from '../../../../src/model/action.ts';
import { RegistrationDeferredError, RegistrationExistsError } from '../../../../src/ports.ts';
import { createGithubRegistrar } from '../../../../src/sources/github/registrar.ts';
import { type Harness, startHarness } from '../../../support/github-harness.ts';

const classes = classesSchema.parse({
  lint: { namespace: 'ci', match: { github: { labels: ['self-hosted', 'lint'] } } },
});
const lint = classes.lint as NonNullable<typeof classes.lint>;

const action = (runnerName: string): CreateRunnerAction => ({
  kind: 'create-runner',
  className: 'lint',
  namespace: 'ci',
  nameSeed: runnerName,
  runnerName,
  reason: 'queued-jobs',
});

describe('GitHub registrar: registrations', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  function registrar(limits: number[] = []) {
    return createGithubRegistrar({
      runners: h.source.runners,
      classes,
      livePods: () => new Set(),
      repositories: () => [],
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
      cleanupIntervalMs: 60_000,
      unsafePlacement: 'warn',
      placementCheckIntervalMs: 60_000,
      concurrency: { initial: 4, min: 1, max: 8 },
      onConcurrencyLimit: (limit) => limits.push(limit),
    });
  }

  it('does not replace a registration of the same name when asked not to, and says so', async () => {
    h = await startHarness({ webhooks: false, github: { runners: { org: 'acme' } } });
    const r = registrar();
    await r.register(action('gantry-lint-0123456789'), lint);
    await expect(
      r.register(action('gantry-lint-0123456789'), lint, { replaceExisting: false }),
    ).rejects.toBeInstanceOf(RegistrationExistsError);
    expect(h.fake.runners()).toHaveLength(1);
    // Replacing is what a register does otherwise.
    await r.register(action('gantry-lint-0123456789'), lint);
    expect(h.fake.runners()).toHaveLength(1);
  });

  it('says when GitHub takes registrations again after a rate limit, as a typed error', async () => {
    h = await startHarness({ webhooks: false, github: { runners: { org: 'acme' }, maxRetries: 0 } });
    const r = registrar();
    h.fake.faults.secondaryLimit = { count: 1, status: 429, retryAfterSeconds: 90 };
    const refused = await r.register(action('gantry-lint-bbbbbbbbbb'), lint).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(RegistrationDeferredError);
    // GitHub's Retry-After, on the clock the source keeps.
    expect((refused as RegistrationDeferredError).retryAt).toBe(h.clock.now() + 90_000);
    expect(h.fake.runners()).toHaveLength(0);
  });

  it('halves the number of registrations sent at once when GitHub answers 5xx', async () => {
    h = await startHarness({
      webhooks: false,
      github: { runners: { org: 'acme' }, maxRetries: 0 },
    });
    const limits: number[] = [];
    const r = registrar(limits);
    h.fake.faults.serverErrors = 1;
    await expect(r.register(action('gantry-lint-aaaaaaaaaa'), lint)).rejects.toThrow(/500|503|5\d\d/);
    expect(limits).toEqual([2]);
    // A refusal GitHub gives for good is an answer like any other: the limit stays.
    await expect(r.register(action('not-gantry-name'), lint)).rejects.toThrow(/must start with/);
    expect(limits).toEqual([2]);
  });
});
