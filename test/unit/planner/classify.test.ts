import { describe, expect, it } from 'vitest';
import { buildClassifier, buildRunnerTrustCheck, classifyJob } from '../../../src/classes/matching.ts';
import { classesSchema } from '../../../src/classes/schema.ts';
import type { JobOrigin } from '../../../src/model/job.ts';
import type { ClassifiableJob } from '../../../src/model/ledger-snapshot.ts';

const classes = classesSchema.parse({
  small: { match: { github: { labels: ['self-hosted', 'linux'] } } },
  lint: { match: { github: { labels: ['self-hosted', 'linux', 'lint'] } } },
  'lint-arm': { match: { github: { labels: ['self-hosted', 'linux', 'lint', 'arm64'] } } },
  // Same size as lint-arm, to show the alphabetical tie-break.
  'lint-big': { match: { github: { labels: ['self-hosted', 'linux', 'lint', 'large'] } } },
  release: { trustedOnly: true, match: { github: { labels: ['self-hosted', 'linux', 'release'] } } },
  forks: {
    untrusted: true,
    namespace: 'sandbox',
    runnerGroup: 'sandbox',
    runtimeClassName: 'gvisor',
    match: { github: { labels: ['self-hosted', 'linux', 'lint', 'x64'] } },
  },
  pipelines: {
    match: { tekton: { matchExpressions: [{ key: 'team', operator: 'Exists' }] } },
  },
  'pipelines-web': {
    match: {
      tekton: {
        matchLabels: { team: 'web' },
        matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['experimental'] }],
      },
    },
  },
});

const classify = buildClassifier(classes);
const github = (labels: string[], untrusted = false): ClassifiableJob => ({
  source: 'github',
  labels,
  untrusted,
});
const tekton = (tektonLabels: Record<string, string>, untrusted = false): ClassifiableJob => ({
  source: 'tekton',
  labels: [],
  untrusted,
  tektonLabels,
});

describe('classifying GitHub jobs', () => {
  it('needs every runs-on label among the class labels, case-insensitively', () => {
    expect(classify(github(['self-hosted', 'Linux', 'LINT']))).toEqual({ matched: true, className: 'lint' });
    expect(classify(github(['self-hosted', 'windows']))).toEqual({
      matched: false,
      reason: 'no-matching-class',
    });
  });

  it('picks the most specific class: the fewest labels the job did not ask for', () => {
    expect(classify(github(['linux']))).toEqual({ matched: true, className: 'small' });
    expect(classify(github(['lint']))).toEqual({ matched: true, className: 'lint' });
    expect(classify(github(['arm64']))).toEqual({ matched: true, className: 'lint-arm' });
  });

  it('breaks ties by class name, whatever order the classes were written in', () => {
    const reversed = classesSchema.parse({
      'zeta-b': { match: { github: { labels: ['ci', 'b'] } } },
      'alpha-a': { match: { github: { labels: ['ci', 'a'] } } },
    });
    expect(classifyJob(github(['ci']), reversed)).toEqual({ matched: true, className: 'alpha-a' });
  });

  it('gives a job that asks for nothing no class', () => {
    expect(classify(github([]))).toEqual({ matched: false, reason: 'no-matching-class' });
  });

  it('sends untrusted jobs only to the untrusted class, and trusted jobs never there', () => {
    expect(classify(github(['self-hosted', 'lint'], true))).toEqual({ matched: true, className: 'forks' });
    expect(classify(github(['self-hosted', 'lint', 'x64']))).toEqual({
      matched: false,
      reason: 'no-matching-class',
    });
  });

  it('says why an untrusted job has no class', () => {
    expect(classify(github(['self-hosted', 'release'], true))).toEqual({
      matched: false,
      reason: 'untrusted-trusted-only',
    });
    expect(classify(github(['self-hosted', 'arm64'], true))).toEqual({
      matched: false,
      reason: 'untrusted-no-class',
    });
    expect(classify(github(['gpu'], true))).toEqual({ matched: false, reason: 'untrusted-no-class' });
  });

  it('leaves untrusted jobs alone when no class takes them', () => {
    const trustedOnly = classesSchema.parse({ lint: { match: { github: { labels: ['lint'] } } } });
    expect(classifyJob(github(['lint'], true), trustedOnly)).toEqual({
      matched: false,
      reason: 'untrusted-no-class',
    });
  });
});

describe('trusted-only classes and where a run comes from', () => {
  const policy = { trustedOnlyDeniedEvents: ['pull_request_target', 'workflow_run', 'issue_comment'] };
  const config = classesSchema.parse({
    ci: { match: { github: { labels: ['self-hosted', 'linux'] } } },
    release: {
      trustedOnly: true,
      allowedEvents: ['push', 'release'],
      allowedRefs: ['refs/heads/main', 'refs/tags/v*'],
      match: { github: { labels: ['self-hosted', 'linux', 'release'] } },
    },
    deploy: { trustedOnly: true, match: { github: { labels: ['self-hosted', 'deploy'] } } },
  });
  const classify = buildClassifier(config, policy);
  const job = (labels: string[], origin: JobOrigin): ClassifiableJob => ({
    source: 'github',
    labels,
    untrusted: false,
    origin,
  });
  const release = (event: string, headBranch: string | null) => job(['release'], { event, headBranch });

  it('admits only the events and refs the class allows', () => {
    expect(classify(release('push', 'main'))).toEqual({ matched: true, className: 'release' });
    expect(classify(release('push', 'v1.4.2'))).toEqual({ matched: true, className: 'release' });
    expect(classify(release('release', 'v1.4.2'))).toEqual({ matched: true, className: 'release' });
    for (const refused of [
      release('push', 'feature'),
      release('workflow_dispatch', 'main'),
      // A pull request's merge ref is no branch or tag of the list, whatever its head branch is called.
      job(['release'], { event: 'pull_request', headBranch: 'main' }),
      release('push', null),
    ]) {
      expect(classify(refused)).toEqual({ matched: false, reason: 'not-allowed-on-trusted-only' });
    }
  });

  it('keeps runs of the denied events off trusted-only classes that list no events of their own', () => {
    const deploy = (event: string) => job(['deploy'], { event, headBranch: 'main' });
    expect(classify(deploy('push'))).toEqual({ matched: true, className: 'deploy' });
    expect(classify(deploy('workflow_run'))).toEqual({
      matched: false,
      reason: 'not-allowed-on-trusted-only',
    });
    expect(classify(deploy('issue_comment'))).toEqual({
      matched: false,
      reason: 'not-allowed-on-trusted-only',
    });
  });

  it('sends a job a trusted-only class refuses to a plain class that matches', () => {
    expect(classify(job(['linux'], { event: 'workflow_run', headBranch: 'main' }))).toEqual({
      matched: true,
      className: 'ci',
    });
  });
});

describe('checking the runner GitHub gave a job', () => {
  const config = classesSchema.parse({
    lint: { match: { github: { labels: ['lint'] } } },
    release: { trustedOnly: true, allowedEvents: ['release'], match: { github: { labels: ['release'] } } },
    oss: {
      sandboxed: true,
      namespace: 'oss',
      runnerGroup: 'oss',
      runtimeClassName: 'gvisor',
      match: { github: { labels: ['oss'] } },
    },
    forks: {
      untrusted: true,
      namespace: 'sandbox',
      runnerGroup: 'sandbox',
      runtimeClassName: 'gvisor',
      match: { github: { labels: ['lint'] } },
    },
  });
  const check = buildRunnerTrustCheck(config, { trustedOnlyDeniedEvents: [] });
  const job = (untrusted: boolean, event = 'push'): ClassifiableJob => ({
    source: 'github',
    labels: ['lint'],
    untrusted,
    origin: { event, headBranch: 'main', ...(untrusted ? { untrustedBecause: 'fork' as const } : {}) },
  });

  it('stops an untrusted job on a trusted runner, and a job a trusted-only class refuses', () => {
    expect(check(job(true), 'lint')).toEqual({ ok: false, kind: 'untrusted-job', contain: true });
    expect(check(job(false, 'push'), 'release')).toEqual({ ok: false, kind: 'not-allowed', contain: true });
    expect(check(job(false, 'release'), 'release')).toEqual({ ok: true });
  });

  it('only counts an untrusted job on a sandboxed class and a trusted job on an untrusted one', () => {
    expect(check(job(true), 'oss')).toEqual({ ok: false, kind: 'untrusted-job', contain: false });
    expect(check(job(false), 'forks')).toEqual({ ok: false, kind: 'trusted-job', contain: false });
    expect(check(job(true), 'forks')).toEqual({ ok: true });
    expect(check(job(false), 'lint')).toEqual({ ok: true });
  });
});

describe('classifying Tekton runs', () => {
  it('matches selectors with Kubernetes semantics and prefers the most requirements', () => {
    expect(classify(tekton({ team: 'web' }))).toEqual({ matched: true, className: 'pipelines-web' });
    expect(classify(tekton({ team: 'web', tier: 'experimental' }))).toEqual({
      matched: true,
      className: 'pipelines',
    });
    expect(classify(tekton({ team: 'data' }))).toEqual({ matched: true, className: 'pipelines' });
    expect(classify(tekton({ app: 'x' }))).toEqual({ matched: false, reason: 'no-matching-class' });
  });

  it('never matches GitHub label sets against Tekton runs or the other way round', () => {
    expect(classify({ source: 'tekton', labels: ['lint'], untrusted: false })).toEqual({
      matched: false,
      reason: 'no-matching-class',
    });
    expect(
      classify({ source: 'github', labels: ['team'], untrusted: false, tektonLabels: { team: 'web' } }),
    ).toEqual({
      matched: false,
      reason: 'no-matching-class',
    });
  });
});

describe('classify: a Tekton run that names its class', () => {
  const config = classesSchema.parse({
    web: { match: { tekton: { matchLabels: { team: 'web' } } } },
    lint: { match: { github: { labels: ['lint'] } } },
  });
  const classify = buildClassifier(config);
  const tekton = (requestedClass: string | undefined, tektonLabels: Record<string, string> = {}) => ({
    source: 'tekton' as const,
    labels: [],
    untrusted: false,
    tektonLabels,
    ...(requestedClass !== undefined ? { requestedClass } : {}),
  });

  it('gets the class it names, whatever its labels', () => {
    expect(classify(tekton('web', { team: 'api' }))).toEqual({ matched: true, className: 'web' });
  });

  it('gets no class when the named class does not exist or serves only GitHub', () => {
    expect(classify(tekton('nope', { team: 'web' }))).toEqual({ matched: false, reason: 'unknown-class' });
    expect(classify(tekton('lint'))).toEqual({ matched: false, reason: 'unknown-class' });
  });
});

describe('classify: Tekton classes bound to namespaces', () => {
  const config = classesSchema.parse({
    // One more requirement than `shared`, the namespace binding another.
    'team-a': { match: { tekton: { matchLabels: { kind: 'build' }, namespaces: ['team-a'] } } },
    shared: { match: { tekton: { matchLabels: { kind: 'build' } } } },
    'b-only': { match: { tekton: { namespaces: ['team-b'] } } },
  });
  const classify = buildClassifier(config);
  const run = (namespace: string | undefined, labels: Record<string, string>, requestedClass?: string) => ({
    source: 'tekton' as const,
    labels: [],
    untrusted: false,
    tektonLabels: labels,
    ...(namespace !== undefined ? { tektonNamespace: namespace } : {}),
    ...(requestedClass !== undefined ? { requestedClass } : {}),
  });

  it('selects runs of their namespaces only, and counts the binding as a requirement', () => {
    expect(classify(run('team-a', { kind: 'build' }))).toEqual({ matched: true, className: 'team-a' });
    expect(classify(run('team-c', { kind: 'build' }))).toEqual({ matched: true, className: 'shared' });
    expect(classify(run('team-b', {}))).toEqual({ matched: true, className: 'b-only' });
    expect(classify(run('team-c', {}))).toEqual({ matched: false, reason: 'no-matching-class' });
    expect(classify(run(undefined, {}))).toEqual({ matched: false, reason: 'no-matching-class' });
  });

  it('gives a run that names a class of other namespaces no class, saying why', () => {
    expect(classify(run('team-a', {}, 'b-only'))).toEqual({
      matched: false,
      reason: 'namespace-not-allowed',
    });
    expect(classify(run(undefined, {}, 'b-only'))).toEqual({
      matched: false,
      reason: 'namespace-not-allowed',
    });
    expect(classify(run('team-b', {}, 'b-only'))).toEqual({ matched: true, className: 'b-only' });
    expect(classify(run('team-z', {}, 'shared'))).toEqual({ matched: true, className: 'shared' });
  });
});

describe('classify: a GitHub job a class’s scale set took', () => {
  const config = classesSchema.parse({
    lint: { match: { github: { labels: ['self-hosted', 'lint'] } } },
    release: {
      trustedOnly: true,
      runnerGroup: 'release',
      allowedRefs: ['refs/heads/main'],
      match: { github: { labels: ['self-hosted', 'release'] } },
    },
    forks: {
      untrusted: true,
      namespace: 'sandbox',
      runnerGroup: 'sandbox',
      runtimeClassName: 'gvisor',
      match: { github: { labels: ['self-hosted', 'lint'] } },
    },
    docs: {
      sandboxed: true,
      namespace: 'docs',
      runnerGroup: 'docs',
      runtimeClassName: 'gvisor',
      match: { github: { labels: ['self-hosted', 'docs'] } },
    },
    web: { match: { tekton: { matchLabels: { team: 'web' } } } },
  });
  const classify = buildClassifier(config, { trustedOnlyDeniedEvents: ['pull_request_target'] });
  const fork: JobOrigin = { event: 'pull_request', headBranch: null, untrustedBecause: 'fork' };
  const taken = (requestedClass: string, origin: JobOrigin, labels = ['self-hosted']): ClassifiableJob => ({
    source: 'github',
    labels,
    untrusted: origin.untrustedBecause !== undefined,
    origin,
    requestedClass,
  });

  it('gets that class whatever its labels: only its runners can run it', () => {
    expect(classify(taken('lint', { event: 'push', headBranch: 'dev' }, ['anything']))).toEqual({
      matched: true,
      className: 'lint',
    });
    // A trusted job the sandbox took runs there or nowhere; its runner counts it, and does not stop it.
    expect(classify(taken('forks', { event: 'push', headBranch: 'dev' }))).toEqual({
      matched: true,
      className: 'forks',
    });
  });

  it('keeps an untrusted job off a trusted class, and lets the sandbox tier have it', () => {
    expect(classify(taken('lint', fork))).toEqual({ matched: false, reason: 'untrusted-no-class' });
    expect(classify(taken('release', fork))).toEqual({ matched: false, reason: 'untrusted-trusted-only' });
    expect(classify(taken('forks', fork))).toEqual({ matched: true, className: 'forks' });
    expect(classify(taken('docs', fork))).toEqual({ matched: true, className: 'docs' });
  });

  it('gives a trusted-only class the runs of its refs and events only', () => {
    expect(classify(taken('release', { event: 'push', headBranch: 'main' }))).toEqual({
      matched: true,
      className: 'release',
    });
    expect(classify(taken('release', { event: 'push', headBranch: 'feature' }))).toEqual({
      matched: false,
      reason: 'not-allowed-on-trusted-only',
    });
    expect(classify(taken('release', { event: 'pull_request_target', headBranch: 'main' }))).toEqual({
      matched: false,
      reason: 'not-allowed-on-trusted-only',
    });
  });

  it('gets no class when the class does not serve GitHub', () => {
    expect(classify(taken('web', { event: 'push', headBranch: 'main' }))).toEqual({
      matched: false,
      reason: 'unknown-class',
    });
  });
});
