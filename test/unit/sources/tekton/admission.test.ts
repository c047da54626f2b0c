import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classesSchema } from '../../../../src/classes/schema.ts';
import {
  type AdmissionAnswer,
  type AdmissionResponse,
  createPipelineRunAdmission,
  type JsonPatchOperation,
} from '../../../../src/sources/tekton/admission.ts';
import { MAX_REVIEW_DEPTH } from '../../../../src/sources/tekton/admission-review.ts';
import { applyJsonPatch, valueAt } from '../../../support/json-patch.ts';

const classes = classesSchema.parse({
  // Two requirements: beats `pipelines` for team=web runs.
  web: {
    match: {
      tekton: {
        matchLabels: { team: 'web' },
        matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['experimental'] }],
      },
    },
    runtimeClassName: 'gvisor',
    priorityClassName: 'ci-low',
    nodeSelector: { pool: 'ci', 'kubernetes.io/arch': 'amd64' },
    tolerations: [{ key: 'ci', value: 'true', effect: 'NoSchedule' }],
    affinity: {
      nodeAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 1, preference: { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] } },
        ],
      },
    },
  },
  pipelines: { match: { tekton: { matchExpressions: [{ key: 'team', operator: 'Exists' }] } } },
  lint: { match: { github: { labels: ['self-hosted', 'lint'] } } },
});

const T0 = Date.parse('2026-09-01T10:00:00.000Z');
const admission = (now: () => number = () => T0) => createPipelineRunAdmission({ classes, now });

interface PipelineRunObject {
  apiVersion: string;
  kind: string;
  metadata: Record<string, unknown>;
  spec?: Record<string, unknown>;
}

function pipelineRun(
  labels: Record<string, string> = { team: 'web' },
  spec: Record<string, unknown> = { pipelineRef: { name: 'build' } },
  annotations?: Record<string, string>,
): PipelineRunObject {
  return {
    apiVersion: 'tekton.dev/v1',
    kind: 'PipelineRun',
    metadata: {
      generateName: 'build-',
      namespace: 'team-web',
      labels,
      ...(annotations ? { annotations } : {}),
    },
    spec,
  };
}

/** The AdmissionReview the apiserver would send for `object`, as an object. */
function reviewObject(object: unknown, request: Record<string, unknown> = {}) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'b3a7c1d2-0000-4000-8000-000000000001',
      kind: { group: 'tekton.dev', version: 'v1', kind: 'PipelineRun' },
      resource: { group: 'tekton.dev', version: 'v1', resource: 'pipelineruns' },
      namespace: 'team-web',
      operation: 'CREATE',
      object,
      ...request,
    },
  };
}

/** The same as the request body's text, which the admission reads. */
function review(object: unknown, request: Record<string, unknown> = {}): string {
  return JSON.stringify(reviewObject(object, request));
}

/** The response of a 200 answer, and its patch decoded. */
function decode(answer: AdmissionAnswer): { response: AdmissionResponse; ops: JsonPatchOperation[] } {
  expect(answer.httpStatus).toBe(200);
  const body = answer.body as { apiVersion: string; kind: string; response: AdmissionResponse };
  expect(body.apiVersion).toBe('admission.k8s.io/v1');
  expect(body.kind).toBe('AdmissionReview');
  const { response } = body;
  if (response.patch === undefined) {
    expect(response.patchType).toBeUndefined();
    return { response, ops: [] };
  }
  expect(response.patchType).toBe('JSONPatch');
  return { response, ops: JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) };
}

/** Admits `object` with a fresh admission and returns the response and the patched object. */
function admit<T>(object: T, admit = admission()) {
  const { response, ops } = decode(admit(review(object)));
  return { response, ops, result: applyJsonPatch(object, ops) };
}

/** Operations that replace or remove an object or array that was already in the run. */
function overwrittenObjects(object: unknown, ops: JsonPatchOperation[]): JsonPatchOperation[] {
  return ops.filter((op) => {
    if (op.path.endsWith('/-')) return false;
    const existing = valueAt(object, op.path);
    return typeof existing === 'object' && existing !== null;
  });
}

const SECURE = { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } };

describe('a run the webhook queues', () => {
  it('is made pending, stamped and given the class pod settings with a minimal patch', () => {
    const run = pipelineRun();
    const { response, ops, result } = admit(run);

    expect(response).toMatchObject({ uid: 'b3a7c1d2-0000-4000-8000-000000000001', allowed: true });
    expect(response.warnings).toBeUndefined();
    expect(ops).toEqual([
      {
        op: 'add',
        path: '/metadata/annotations',
        value: { 'gantry.dev/class': 'web', 'gantry.dev/queued-at': '2026-09-01T10:00:00.000Z' },
      },
      { op: 'add', path: '/spec/status', value: 'PipelineRunPending' },
      {
        op: 'add',
        path: '/spec/taskRunTemplate',
        value: {
          podTemplate: {
            runtimeClassName: 'gvisor',
            priorityClassName: 'ci-low',
            nodeSelector: { pool: 'ci', 'kubernetes.io/arch': 'amd64' },
            tolerations: [{ key: 'ci', operator: 'Equal', value: 'true', effect: 'NoSchedule' }],
            affinity: classes.web?.affinity,
            securityContext: SECURE,
            automountServiceAccountToken: false,
          },
        },
      },
    ]);
    expect(result.metadata).toEqual({ ...run.metadata, annotations: ops[0]?.value });
    expect(result.spec?.pipelineRef).toEqual({ name: 'build' });
    expect(result.spec?.status).toBe('PipelineRunPending');
  });

  it('adds field by field into the objects the user wrote, escaping "/" in keys', () => {
    const run = pipelineRun(
      { team: 'web' },
      { pipelineRef: { name: 'build' }, taskRunTemplate: { serviceAccountName: 'builder', podTemplate: {} } },
      { 'example.com/owner': 'web-team' },
    );
    const { ops, result } = admit(run);

    expect(ops.map((op) => `${op.op} ${op.path}`)).toEqual([
      'add /metadata/annotations/gantry.dev~1class',
      'add /metadata/annotations/gantry.dev~1queued-at',
      'add /spec/status',
      'add /spec/taskRunTemplate/podTemplate/runtimeClassName',
      'add /spec/taskRunTemplate/podTemplate/priorityClassName',
      'add /spec/taskRunTemplate/podTemplate/nodeSelector',
      'add /spec/taskRunTemplate/podTemplate/tolerations',
      'add /spec/taskRunTemplate/podTemplate/affinity',
      'add /spec/taskRunTemplate/podTemplate/securityContext',
      'add /spec/taskRunTemplate/podTemplate/automountServiceAccountToken',
    ]);
    expect(result.metadata.annotations).toEqual({
      'example.com/owner': 'web-team',
      'gantry.dev/class': 'web',
      'gantry.dev/queued-at': '2026-09-01T10:00:00.000Z',
    });
    expect(result.spec?.taskRunTemplate).toMatchObject({ serviceAccountName: 'builder' });
  });

  it('keeps every value the user set and warns where it differs from the class', () => {
    const userTolerations = [
      { key: 'gpu', operator: 'Exists', effect: 'NoSchedule' },
      // The class's toleration written with the implicit operator: already there, not added again.
      { key: 'ci', value: 'true', effect: 'NoSchedule' },
    ];
    const userAffinity = { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [] } };
    const podTemplate = {
      runtimeClassName: 'runc',
      nodeSelector: { pool: 'gpu' },
      tolerations: userTolerations,
      affinity: userAffinity,
      securityContext: { runAsUser: 1000, runAsNonRoot: false },
      automountServiceAccountToken: true,
      env: [{ name: 'HOME', value: '/tekton/home' }],
    };
    const run = pipelineRun(
      { team: 'web' },
      { pipelineRef: { name: 'build' }, taskRunTemplate: { podTemplate } },
    );
    const { response, ops, result } = admit(run);

    expect(overwrittenObjects(run, ops)).toEqual([]);
    expect(ops.filter((op) => op.op !== 'add')).toEqual([]);
    expect(result.spec?.taskRunTemplate).toEqual({
      podTemplate: {
        runtimeClassName: 'runc',
        priorityClassName: 'ci-low',
        nodeSelector: { pool: 'gpu', 'kubernetes.io/arch': 'amd64' },
        tolerations: userTolerations,
        affinity: userAffinity,
        securityContext: { runAsUser: 1000, runAsNonRoot: false, seccompProfile: { type: 'RuntimeDefault' } },
        automountServiceAccountToken: true,
        env: [{ name: 'HOME', value: '/tekton/home' }],
      },
    });
    expect(response.warnings).toEqual([
      'podTemplate.runtimeClassName "runc" kept (class web: "gvisor")',
      'podTemplate.nodeSelector["pool"] "gpu" kept (class web: "ci")',
      "podTemplate.affinity an object kept (class web's not applied)",
      'podTemplate.securityContext.runAsNonRoot false kept (Gantry: true)',
      'podTemplate.automountServiceAccountToken true kept (Gantry: false)',
    ]);
    for (const warning of response.warnings ?? []) expect(warning.length).toBeLessThanOrEqual(120);
  });

  it('appends a missing class toleration to the user list rather than replacing it', () => {
    const tolerations = [{ key: 'gpu', operator: 'Exists' }];
    const run = pipelineRun({ team: 'web' }, { taskRunTemplate: { podTemplate: { tolerations } } });
    const { ops, result } = admit(run);

    expect(ops).toContainEqual({
      op: 'add',
      path: '/spec/taskRunTemplate/podTemplate/tolerations/-',
      value: { key: 'ci', operator: 'Equal', value: 'true', effect: 'NoSchedule' },
    });
    expect(valueAt(result, '/spec/taskRunTemplate/podTemplate/tolerations')).toEqual([
      { key: 'gpu', operator: 'Exists' },
      { key: 'ci', operator: 'Equal', value: 'true', effect: 'NoSchedule' },
    ]);
  });

  it('turns an empty spec.status into pending with a replace of that string only', () => {
    const run = pipelineRun({ team: 'web' }, { pipelineRef: { name: 'build' }, status: '' });
    const { ops, result } = admit(run);
    expect(ops).toContainEqual({ op: 'replace', path: '/spec/status', value: 'PipelineRunPending' });
    expect(result.spec?.status).toBe('PipelineRunPending');
  });

  it('overwrites queue annotations a user forged at creation', () => {
    const run = pipelineRun(
      { team: 'web' },
      {},
      {
        'gantry.dev/class': 'pipelines',
        'gantry.dev/queued-at': '1970-01-01T00:00:00.000Z',
        'gantry.dev/held': 'user',
        'gantry.dev/admitted-at': '1970-01-01T00:00:00.000Z',
        'gantry.dev/cancel-reason': 'max-queue-age',
      },
    );
    const { result } = admit(run);
    expect(result.metadata.annotations).toEqual({
      'gantry.dev/class': 'web',
      'gantry.dev/queued-at': '2026-09-01T10:00:00.000Z',
    });
  });

  it('creates metadata.annotations and spec when the run has neither', () => {
    const run = {
      apiVersion: 'tekton.dev/v1',
      kind: 'PipelineRun',
      metadata: { name: 'x', labels: { team: 'ops' } },
    };
    const { result } = admit(run);
    expect(result).toMatchObject({
      metadata: { name: 'x', annotations: { 'gantry.dev/class': 'pipelines' } },
      spec: {
        status: 'PipelineRunPending',
        taskRunTemplate: { podTemplate: { securityContext: SECURE, automountServiceAccountToken: false } },
      },
    });
  });

  it('warns when a per-task pod template replaces the class settings for that task', () => {
    const run = pipelineRun(
      { team: 'web' },
      {
        taskRunSpecs: [
          {
            pipelineTaskName: 'push',
            podTemplate: { runtimeClassName: 'runc', nodeSelector: { pool: 'x' } },
          },
          { pipelineTaskName: 'test', podTemplate: { env: [] } },
        ],
      },
    );
    const { response } = admit(run);
    expect(response.warnings).toEqual([
      'taskRunSpecs[0].podTemplate (task "push") sets runtimeClassName, nodeSelector: ' +
        "these replace class web's for that task",
    ]);
  });
});

describe('choosing the class', () => {
  it('takes the most specific selector, or the class the label names', () => {
    expect(admit(pipelineRun({ team: 'web' })).result.metadata.annotations).toMatchObject({
      'gantry.dev/class': 'web',
    });
    expect(admit(pipelineRun({ team: 'ops' })).result.metadata.annotations).toMatchObject({
      'gantry.dev/class': 'pipelines',
    });
    // The label wins even where no selector would match.
    const named = admit(pipelineRun({ 'gantry.dev/class': 'web' })).result;
    expect(named.metadata.annotations).toMatchObject({ 'gantry.dev/class': 'web' });
    expect(valueAt(named, '/spec/taskRunTemplate/podTemplate/runtimeClassName')).toBe('gvisor');
  });

  it('denies a run whose label names an unknown class, naming the value and the Tekton classes', () => {
    const answer = admission()(review(pipelineRun({ team: 'web', 'gantry.dev/class': 'nope' })));
    const { response, ops } = decode(answer);
    expect(ops).toEqual([]);
    expect(response).toEqual({
      uid: 'b3a7c1d2-0000-4000-8000-000000000001',
      allowed: false,
      status: {
        code: 400,
        message:
          'label gantry.dev/class="nope" names no class that takes Tekton runs; these do: pipelines, web',
      },
    });
  });

  it('denies a label naming a class without a Tekton selector, or an inherited property', () => {
    for (const name of ['lint', 'constructor', '__proto__', '']) {
      const { response } = decode(admission()(review(pipelineRun({ 'gantry.dev/class': name }))));
      expect(response.allowed).toBe(false);
      expect(response.status?.message).toContain(`gantry.dev/class=${JSON.stringify(name)}`);
    }
    const none = createPipelineRunAdmission({ classes: classesSchema.parse({}), now: () => T0 });
    const { response } = decode(none(review(pipelineRun({ 'gantry.dev/class': 'web' }))));
    expect(response.status?.message).toBe(
      'label gantry.dev/class="web" names no class that takes Tekton runs; none does',
    );
  });

  it('leaves a run no class selects alone: allowed, no patch', () => {
    const unmatched: Record<string, string>[] = [
      {},
      { tier: 'x' },
      { app: 'web', 'tekton.dev/pipeline': 'build' },
    ];
    for (const labels of unmatched) {
      const { response, ops } = decode(admission()(review(pipelineRun(labels))));
      expect(response).toEqual({ uid: 'b3a7c1d2-0000-4000-8000-000000000001', allowed: true });
      expect(ops).toEqual([]);
    }
  });
});

describe('spec.status at creation', () => {
  it('keeps a run its author made pending held: held=user, no queued-at, spec.status untouched', () => {
    const run = pipelineRun(
      { team: 'web' },
      { pipelineRef: { name: 'build' }, status: 'PipelineRunPending' },
      {
        'gantry.dev/queued-at': '1970-01-01T00:00:00.000Z',
      },
    );
    const { ops, result } = admit(run);
    expect(result.metadata.annotations).toEqual({ 'gantry.dev/class': 'web', 'gantry.dev/held': 'user' });
    expect(ops.some((op) => op.path === '/spec/status')).toBe(false);
    expect(result.spec?.status).toBe('PipelineRunPending');
    // The pod settings still go in: the spec cannot change once the run exists.
    expect(valueAt(result, '/spec/taskRunTemplate/podTemplate/runtimeClassName')).toBe('gvisor');
  });

  it('lets a run created cancelled (or stopped) through untouched', () => {
    for (const status of ['Cancelled', 'StoppedRunFinally', 'CancelledRunFinally']) {
      const { response, ops } = decode(admission()(review(pipelineRun({ team: 'web' }, { status }))));
      expect(response.allowed).toBe(true);
      expect(ops).toEqual([]);
    }
  });
});

describe('queued-at', () => {
  it('strictly increases within one instance, even with a frozen or backward clock', () => {
    const times = [T0, T0, T0, T0 - 5000, T0 + 10];
    const clock = () => times.shift() ?? T0;
    const admit1 = admission(clock);
    const stamps = Array.from({ length: 5 }, () => {
      const { result } = admit(pipelineRun(), admit1);
      return (result.metadata.annotations as Record<string, string>)['gantry.dev/queued-at'];
    });
    expect(stamps).toEqual([
      '2026-09-01T10:00:00.000Z',
      '2026-09-01T10:00:00.001Z',
      '2026-09-01T10:00:00.002Z',
      '2026-09-01T10:00:00.003Z',
      '2026-09-01T10:00:00.010Z',
    ]);
  });

  it('truncates fractional milliseconds and does not advance for held runs', () => {
    const admit1 = admission(() => T0 + 0.9);
    const held = admit(pipelineRun({ team: 'web' }, { status: 'PipelineRunPending' }), admit1).result;
    expect((held.metadata.annotations as Record<string, string>)['gantry.dev/queued-at']).toBeUndefined();
    const queued = admit(pipelineRun(), admit1).result;
    expect((queued.metadata.annotations as Record<string, string>)['gantry.dev/queued-at']).toBe(
      '2026-09-01T10:00:00.000Z',
    );
  });
});

describe('reviews that are not Gantry’s business', () => {
  it('allows other operations, kinds, groups and non-object runs without a patch', () => {
    const cases: Record<string, unknown>[] = [
      { operation: 'UPDATE' },
      { operation: 'DELETE', object: null },
      { kind: { group: 'tekton.dev', version: 'v1', kind: 'TaskRun' } },
      { kind: { group: 'example.com', version: 'v1', kind: 'PipelineRun' } },
      { kind: 'PipelineRun' },
      { kind: undefined },
      { object: 'a string' },
      { object: [] },
      { object: { metadata: 'x', spec: {} } },
      { object: { metadata: { labels: { team: 'web' } }, spec: [] } },
      { object: { metadata: { labels: { team: 'web' }, annotations: [] } } },
    ];
    for (const request of cases) {
      const object = 'object' in request ? request.object : pipelineRun();
      const { response, ops } = decode(admission()(review(object, request)));
      expect(response, JSON.stringify(request)).toEqual({
        uid: 'b3a7c1d2-0000-4000-8000-000000000001',
        allowed: true,
      });
      expect(ops).toEqual([]);
    }
  });

  it('allows a run of another Tekton version with a warning and no patch', () => {
    const request = { kind: { group: 'tekton.dev', version: 'v1beta1', kind: 'PipelineRun' } };
    const { response, ops } = decode(admission()(review(pipelineRun(), request)));
    expect(ops).toEqual([]);
    expect(response.allowed).toBe(true);
    expect(response.warnings).toEqual([
      'Gantry queues tekton.dev/v1 PipelineRuns only; this "v1beta1" run was not queued',
    ]);
  });
});

describe('malformed reviews', () => {
  const good = reviewObject(pipelineRun());
  it.each<[string, unknown, string]>([
    ['null', null, 'expected an AdmissionReview JSON object, got null'],
    ['an array', [good], 'expected an AdmissionReview JSON object, got an array'],
    ['a string', 'review', 'expected an AdmissionReview JSON object, got "review"'],
    [
      'apiVersion v1beta1',
      { ...good, apiVersion: 'admission.k8s.io/v1beta1' },
      'apiVersion: expected "admission.k8s.io/v1", got "admission.k8s.io/v1beta1"',
    ],
    ['no apiVersion', { kind: 'AdmissionReview' }, 'apiVersion: expected "admission.k8s.io/v1", got nothing'],
    ['another kind', { ...good, kind: 'Review' }, 'kind: expected "AdmissionReview", got "Review"'],
    ['no request', { ...good, request: undefined }, 'request: expected an object, got nothing'],
    ['request a list', { ...good, request: [] }, 'request: expected an object, got an array'],
    [
      'no uid',
      { ...good, request: { ...good.request, uid: undefined } },
      'request.uid: expected a non-empty string, got nothing',
    ],
    [
      'numeric uid',
      { ...good, request: { ...good.request, uid: 7 } },
      'request.uid: expected a non-empty string, got 7',
    ],
    [
      'empty uid',
      { ...good, request: { ...good.request, uid: '' } },
      'request.uid: expected a non-empty string, got ""',
    ],
  ])('denies %s at HTTP 200, naming the field', (_name, body, message) => {
    const { response } = decode(admission()(JSON.stringify(body)));
    expect(response).toEqual({ uid: expect.any(String), allowed: false, status: { code: 400, message } });
  });

  it('denies text that is not JSON, or empty, with the uid when it can be read', () => {
    const text = review(pipelineRun());
    const cut = decode(admission()(text.slice(0, text.length - 20))).response;
    expect(cut).toEqual({
      uid: 'b3a7c1d2-0000-4000-8000-000000000001',
      allowed: false,
      status: { code: 400, message: 'the request body is not valid JSON; an AdmissionReview was expected' },
    });
    expect(decode(admission()('')).response).toEqual({
      uid: '',
      allowed: false,
      status: { code: 400, message: 'the request body is empty; an AdmissionReview was expected' },
    });
  });

  it('denies a run nested deeper than the limit without parsing it, naming the request it answers', () => {
    const bomb = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    const spec = (depth: number) =>
      review(pipelineRun()).replace('"pipelineRef":', `"bomb":${bomb(depth)},"pipelineRef":`);
    // The review adds 3 levels (review, request, object) and spec a fourth: a bomb of 252 fits in 256.
    expect(decode(admission()(spec(MAX_REVIEW_DEPTH - 4))).response.allowed).toBe(true);
    const { response, ops } = decode(admission()(spec(MAX_REVIEW_DEPTH - 3)));
    expect(ops).toEqual([]);
    expect(response).toEqual({
      uid: 'b3a7c1d2-0000-4000-8000-000000000001',
      allowed: false,
      status: {
        code: 400,
        message: `the object nests JSON deeper than ${MAX_REVIEW_DEPTH} levels, which Gantry does not read`,
      },
    });
    // Far deeper than anything JSON.parse or a recursive walk could take.
    expect(decode(admission()(spec(200_000))).response.allowed).toBe(false);
  });
});

describe('properties', () => {
  it('never throws and answers an AdmissionReview at HTTP 200, whatever the body', () => {
    const decide = admission();
    fc.assert(
      fc.property(fc.jsonValue(), fc.anything(), fc.string(), (json, anything, text) => {
        for (const body of [JSON.stringify(json), JSON.stringify(anything) ?? '', text]) {
          const { response } = decode(decide(body));
          expect(typeof response.allowed).toBe('boolean');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('answers any PipelineRun CREATE with a patch that applies cleanly', () => {
    const decide = admission();
    const labels = fc.dictionary(
      fc.constantFrom('team', 'tier', 'gantry.dev/class', 'x'),
      fc.constantFrom('web', 'ops', 'experimental', 'pipelines', 'nope'),
    );
    const object = fc.oneof(
      fc.jsonValue(),
      fc.record(
        {
          metadata: fc.oneof(
            fc.jsonValue(),
            fc.record({ labels, annotations: fc.jsonValue() }, { requiredKeys: [] }),
          ),
          spec: fc.jsonValue(),
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(object, (run) => {
        const answer = decide(review(run));
        expect(answer.httpStatus).toBe(200);
        const { ops } = decode(answer);
        expect(() => applyJsonPatch(run, ops)).not.toThrow();
      }),
      { numRuns: 500 },
    );
  });

  it('never replaces or removes an object the user wrote, and keeps every pod field the user set', () => {
    const decide = admission();
    const maybe = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined });
    const podTemplate = fc.record(
      {
        runtimeClassName: fc.constantFrom('runc', 'gvisor', ''),
        priorityClassName: fc.constantFrom('high', 'ci-low'),
        nodeSelector: fc.dictionary(
          fc.constantFrom('pool', 'kubernetes.io/arch', 'zone'),
          fc.constantFrom('ci', 'amd64', 'a'),
        ),
        tolerations: fc.array(
          fc.record(
            {
              key: fc.constantFrom('ci', 'gpu'),
              operator: maybe(fc.constantFrom('Equal', 'Exists')),
              value: maybe(fc.constant('true')),
              effect: maybe(fc.constant('NoSchedule')),
            },
            { requiredKeys: ['key'] },
          ),
          { maxLength: 3 },
        ),
        affinity: fc.constantFrom({}, classes.web?.affinity),
        securityContext: fc.record(
          {
            runAsNonRoot: fc.boolean(),
            runAsUser: fc.nat(),
            seccompProfile: fc.constantFrom({ type: 'Unconfined' }, { type: 'RuntimeDefault' }),
          },
          { requiredKeys: [] },
        ),
        automountServiceAccountToken: fc.boolean(),
      },
      { requiredKeys: [] },
    );
    const spec = fc.record(
      {
        status: fc.constantFrom('', 'PipelineRunPending'),
        pipelineRef: fc.constant({ name: 'build' }),
        taskRunTemplate: fc.record(
          { serviceAccountName: fc.constant('sa'), podTemplate },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: [] },
    );
    const run = fc.record({
      metadata: fc.record(
        {
          labels: fc.constantFrom({ team: 'web' }, { team: 'ops' }, { 'gantry.dev/class': 'web' }),
          annotations: fc.constantFrom({}, { a: 'b' }),
        },
        { requiredKeys: ['labels'] },
      ),
      spec,
    });
    fc.assert(
      fc.property(run, (object) => {
        const { ops } = decode(decide(review(object)));
        expect(overwrittenObjects(object, ops)).toEqual([]);
        const result = applyJsonPatch(object, ops);
        const before = (object.spec.taskRunTemplate?.podTemplate ?? {}) as Record<string, unknown>;
        const after = valueAt(result, '/spec/taskRunTemplate/podTemplate') as Record<string, unknown>;
        for (const [field, value] of Object.entries(before)) {
          if (value === '') continue; // an empty name counts as unset
          if (field === 'nodeSelector' || field === 'securityContext') {
            expect(after[field]).toMatchObject(value as object);
          } else if (field === 'tolerations') {
            expect((after[field] as unknown[]).slice(0, (value as unknown[]).length)).toEqual(value);
          } else {
            expect(after[field]).toEqual(value);
          }
        }
        expect(after.securityContext).toBeDefined();
      }),
      { numRuns: 300 },
    );
  });
});
