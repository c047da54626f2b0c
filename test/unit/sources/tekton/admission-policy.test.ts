import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classesSchema } from '../../../../src/classes/schema.ts';
import {
  type AdmissionAnswer,
  type AdmissionResponse,
  createPipelineRunAdmission,
} from '../../../../src/sources/tekton/admission.ts';
import { enforcementViolations } from '../../../../src/sources/tekton/admission-policy.ts';
import { applyJsonPatch } from '../../../support/json-patch.ts';

// Classes with enforce: true refuse runs that contradict their pod settings, and classes bound to
// namespaces refuse runs of other namespaces that name them.

const classes = classesSchema.parse({
  sandbox: {
    match: { tekton: { matchLabels: { kind: 'sandbox' } } },
    enforce: true,
    runtimeClassName: 'gvisor',
    priorityClassName: 'ci-low',
    nodeSelector: { pool: 'sandbox' },
    tolerations: [{ key: 'sandbox', operator: 'Exists', effect: 'NoSchedule' }],
    affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } } },
    serviceAccountName: 'sandbox-runner',
  },
  // The same settings as defaults only.
  relaxed: {
    match: { tekton: { matchLabels: { kind: 'relaxed' } } },
    runtimeClassName: 'gvisor',
    serviceAccountName: 'relaxed-runner',
  },
  'team-a-only': { match: { tekton: { matchLabels: { kind: 'a' }, namespaces: ['team-a'] } } },
});
const sandbox = classes.sandbox;
if (!sandbox) throw new Error('no sandbox class');
const T0 = Date.parse('2026-09-01T10:00:00.000Z');
const UID = 'c0ffee00-0000-4000-8000-000000000002';

interface Run {
  apiVersion: string;
  kind: string;
  metadata: Record<string, unknown>;
  spec: Record<string, unknown>;
}

function run(kind: string, spec: Record<string, unknown> = {}): Run {
  return {
    apiVersion: 'tekton.dev/v1',
    kind: 'PipelineRun',
    metadata: { generateName: 'build-', labels: { kind } },
    spec: { pipelineRef: { name: 'build' }, ...spec },
  };
}

function decide(object: unknown, request: Record<string, unknown> = {}): AdmissionResponse {
  const admission = createPipelineRunAdmission({ classes, now: () => T0 });
  const answer: AdmissionAnswer = admission(
    JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: UID,
        kind: { group: 'tekton.dev', version: 'v1', kind: 'PipelineRun' },
        namespace: 'team-a',
        operation: 'CREATE',
        object,
        ...request,
      },
    }),
  );
  expect(answer.httpStatus).toBe(200);
  return (answer.body as { response: AdmissionResponse }).response;
}

const patchOf = (response: AdmissionResponse) =>
  response.patch ? JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) : [];

describe('a class with enforce: true', () => {
  it('queues a run that leaves its pod settings to the class, as any class does', () => {
    const response = decide(run('sandbox'));
    expect(response.allowed).toBe(true);
    expect(response.warnings).toBeUndefined();
    const result = applyJsonPatch(run('sandbox'), patchOf(response));
    expect(result.spec.taskRunTemplate).toMatchObject({
      serviceAccountName: 'sandbox-runner',
      podTemplate: { runtimeClassName: 'gvisor', nodeSelector: { pool: 'sandbox' } },
    });
    expect(enforcementViolations(result.spec, 'sandbox', sandbox)).toEqual([]);
  });

  it('lets an author repeat the class’s values, narrow its placement and refer to Tasks it cannot see', () => {
    const response = decide(
      run('sandbox', {
        taskRunTemplate: {
          serviceAccountName: 'sandbox-runner',
          podTemplate: {
            runtimeClassName: 'gvisor',
            nodeSelector: { pool: 'sandbox', zone: 'a' },
            tolerations: [{ key: 'sandbox', operator: 'Exists', effect: 'NoSchedule' }],
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 1000,
              seccompProfile: { type: 'RuntimeDefault' },
            },
            automountServiceAccountToken: false,
            hostNetwork: false,
            volumes: [{ name: 'scratch', emptyDir: {} }],
          },
        },
        taskRunSpecs: [
          { pipelineTaskName: 'test', podTemplate: { nodeSelector: { pool: 'sandbox', disk: 'ssd' } } },
        ],
        pipelineSpec: {
          tasks: [
            { name: 'ref', taskRef: { name: 'privileged-task' } },
            { name: 'custom', taskRef: { apiVersion: 'example.dev/v1', kind: 'Wait' } },
            { name: 'inline', taskSpec: { steps: [{ name: 's', securityContext: { runAsUser: 1000 } }] } },
          ],
        },
      }),
    );
    expect(response).toMatchObject({ uid: UID, allowed: true });
  });

  it('refuses runtimeClassName, hostNetwork and a per-task override, naming each with its path', () => {
    const response = decide(
      run('sandbox', {
        taskRunTemplate: { podTemplate: { runtimeClassName: 'runc', hostNetwork: true } },
        taskRunSpecs: [{ pipelineTaskName: 'push', podTemplate: { runtimeClassName: 'kata' } }],
      }),
    );
    expect(response).toEqual({
      uid: UID,
      allowed: false,
      status: {
        code: 403,
        message:
          'class sandbox enforces its pod settings: ' +
          'spec.taskRunTemplate.podTemplate.runtimeClassName "runc" is not class sandbox\'s "gvisor"; ' +
          "spec.taskRunTemplate.podTemplate.hostNetwork true shares the node's namespaces; " +
          'spec.taskRunSpecs[0].podTemplate.runtimeClassName "kata" is not class sandbox\'s "gvisor"',
      },
    });
    expect(response.patch).toBeUndefined();
  });

  it('judges every managed field of the run’s and the tasks’ pod templates', () => {
    const podTemplate = {
      priorityClassName: 'urgent',
      nodeSelector: { pool: 'gpu' },
      tolerations: [{ operator: 'Exists' }],
      affinity: {},
      securityContext: { runAsNonRoot: false, runAsUser: 0, seccompProfile: { type: 'Unconfined' } },
      automountServiceAccountToken: true,
      hostPID: true,
      hostIPC: true,
      volumes: [{ name: 'root', hostPath: { path: '/' } }],
    };
    expect(
      enforcementViolations(
        { taskRunTemplate: { serviceAccountName: 'deployer', podTemplate } },
        'sandbox',
        sandbox,
      ),
    ).toEqual([
      'spec.taskRunTemplate.serviceAccountName "deployer" is not class sandbox\'s "sandbox-runner"',
      'spec.taskRunTemplate.podTemplate.priorityClassName "urgent" is not class sandbox\'s "ci-low"',
      'spec.taskRunTemplate.podTemplate.nodeSelector["pool"] "gpu" is not class sandbox\'s "sandbox"',
      'spec.taskRunTemplate.podTemplate.tolerations[0] (key "") is not one of class sandbox\'s tolerations',
      "spec.taskRunTemplate.podTemplate.affinity differs from class sandbox's",
      'spec.taskRunTemplate.podTemplate.securityContext.runAsNonRoot false: Gantry requires true',
      'spec.taskRunTemplate.podTemplate.securityContext.runAsUser 0 runs as root',
      'spec.taskRunTemplate.podTemplate.securityContext.seccompProfile "Unconfined": Gantry requires RuntimeDefault',
      'spec.taskRunTemplate.podTemplate.automountServiceAccountToken true: Gantry requires false',
      "spec.taskRunTemplate.podTemplate.hostPID true shares the node's namespaces",
      "spec.taskRunTemplate.podTemplate.hostIPC true shares the node's namespaces",
      'spec.taskRunTemplate.podTemplate.volumes[0] ("root") is a hostPath volume',
    ]);
    expect(
      enforcementViolations(
        { taskRunSpecs: [{}, { serviceAccountName: 'deployer', podTemplate: { tolerations: 'all' } }] },
        'sandbox',
        sandbox,
      ),
    ).toEqual([
      'spec.taskRunSpecs[1].serviceAccountName "deployer" is not class sandbox\'s "sandbox-runner"',
      'spec.taskRunSpecs[1].podTemplate.tolerations: expected a list',
    ]);
  });

  it('refuses a per-task nodeSelector or securityContext that replaces the run’s without the class’s values', () => {
    // Tekton merges a task's pod template over the run's field by field: these replace the whole field.
    expect(
      enforcementViolations(
        {
          taskRunSpecs: [
            {
              pipelineTaskName: 'build',
              podTemplate: { nodeSelector: { disk: 'ssd' }, securityContext: { runAsUser: 1000 } },
            },
          ],
        },
        'sandbox',
        sandbox,
      ),
    ).toEqual([
      'spec.taskRunSpecs[0].podTemplate.nodeSelector replaces the run\'s and lacks class sandbox\'s pool="sandbox"',
      'spec.taskRunSpecs[0].podTemplate.securityContext.runAsNonRoot nothing: Gantry requires true',
      'spec.taskRunSpecs[0].podTemplate.securityContext.seccompProfile nothing: Gantry requires RuntimeDefault',
    ]);
    // The run's own template is completed by Gantry's patch instead.
    expect(
      enforcementViolations(
        {
          taskRunTemplate: {
            podTemplate: { nodeSelector: { disk: 'ssd' }, securityContext: { runAsUser: 1000 } },
          },
        },
        'sandbox',
        sandbox,
      ),
    ).toEqual([]);
  });

  it('refuses privileged, root and added capabilities in embedded Tasks, nested pipelines included', () => {
    const taskSpec = {
      steps: [
        { name: 'ok', securityContext: { runAsNonRoot: true } },
        { name: 'root', securityContext: { privileged: true, runAsUser: 0 } },
      ],
      sidecars: [{ name: 'docker', securityContext: { capabilities: { add: ['NET_ADMIN', 'SYS_ADMIN'] } } }],
      stepTemplate: { securityContext: { runAsNonRoot: false, seccompProfile: { type: 'Unconfined' } } },
      volumes: [{ name: 'sock', hostPath: { path: '/var/run/docker.sock' } }],
    };
    expect(
      enforcementViolations(
        {
          pipelineSpec: {
            tasks: [{ name: 'a', taskSpec }],
            finally: [
              {
                name: 'inner',
                pipelineSpec: { tasks: [{ name: 'b', taskSpec: { steps: taskSpec.steps } }] },
              },
            ],
          },
        },
        'sandbox',
        sandbox,
      ),
    ).toEqual([
      'spec.pipelineSpec.tasks[0].taskSpec.steps[1].securityContext.privileged true',
      'spec.pipelineSpec.tasks[0].taskSpec.steps[1].securityContext.runAsUser 0 runs as root',
      'spec.pipelineSpec.tasks[0].taskSpec.sidecars[0].securityContext.capabilities.add "NET_ADMIN", "SYS_ADMIN"',
      'spec.pipelineSpec.tasks[0].taskSpec.stepTemplate.securityContext.runAsNonRoot false',
      'spec.pipelineSpec.tasks[0].taskSpec.stepTemplate.securityContext.seccompProfile Unconfined',
      'spec.pipelineSpec.tasks[0].taskSpec.volumes[0] ("sock") is a hostPath volume',
      'spec.pipelineSpec.finally[0].pipelineSpec.tasks[0].taskSpec.steps[1].securityContext.privileged true',
      'spec.pipelineSpec.finally[0].pipelineSpec.tasks[0].taskSpec.steps[1].securityContext.runAsUser 0 runs as root',
    ]);
  });

  it('shows the first eight reasons and counts the rest', () => {
    const steps = Array.from({ length: 11 }, (_, i) => ({
      name: `s${i}`,
      securityContext: { privileged: true },
    }));
    const { status } = decide(
      run('sandbox', { pipelineSpec: { tasks: [{ name: 'a', taskSpec: { steps } }] } }),
    );
    expect(status?.message.split('; ')).toHaveLength(9);
    expect(status?.message).toMatch(/steps\[7\]\.securityContext\.privileged true; and 3 more$/);
  });

  it('judges a run its author holds pending, and lets one created cancelled through (it never runs)', () => {
    const bad = { taskRunTemplate: { podTemplate: { hostNetwork: true } } };
    expect(decide(run('sandbox', { ...bad, status: 'PipelineRunPending' })).allowed).toBe(false);
    expect(decide(run('sandbox', { ...bad, status: 'Cancelled' }))).toEqual({ uid: UID, allowed: true });
  });

  it('refuses a run of another API version, which it cannot judge', () => {
    const response = decide(run('sandbox'), {
      kind: { group: 'tekton.dev', version: 'v1beta1', kind: 'PipelineRun' },
    });
    expect(response.allowed).toBe(false);
    expect(response.status).toEqual({
      code: 403,
      message:
        'Gantry queues tekton.dev/v1 PipelineRuns only; this "v1beta1" run cannot be checked for class sandbox ' +
        '(the webhook needs matchPolicy Equivalent)',
    });
  });

  it('never allows a run whose patched pod template it would refuse', () => {
    const maybe = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined });
    const podTemplate = fc.record(
      {
        runtimeClassName: fc.constantFrom('gvisor', 'runc', ''),
        nodeSelector: fc.dictionary(fc.constantFrom('pool', 'zone'), fc.constantFrom('sandbox', 'gpu')),
        tolerations: fc.array(
          fc.record({ key: fc.constantFrom('sandbox', 'gpu'), operator: maybe(fc.constant('Exists')) }),
          { maxLength: 2 },
        ),
        securityContext: fc.record(
          { runAsNonRoot: fc.boolean(), runAsUser: fc.constantFrom(0, 1000) },
          { requiredKeys: [] },
        ),
        automountServiceAccountToken: fc.boolean(),
        hostNetwork: fc.boolean(),
      },
      { requiredKeys: [] },
    );
    const spec = fc.record(
      {
        taskRunTemplate: fc.record(
          { serviceAccountName: fc.constantFrom('sandbox-runner', 'other'), podTemplate },
          { requiredKeys: [] },
        ),
        taskRunSpecs: fc.array(fc.record({ pipelineTaskName: fc.constant('t'), podTemplate }), {
          maxLength: 2,
        }),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(spec, (runSpec) => {
        const object = run('sandbox', runSpec);
        const response = decide(object);
        if (!response.allowed) return;
        const patched = applyJsonPatch(object, patchOf(response));
        expect(enforcementViolations(patched.spec, 'sandbox', sandbox)).toEqual([]);
        expect(response.warnings).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});

describe('a class without enforce', () => {
  it('keeps what the author set, with a warning, and names its service account when the author names none', () => {
    const object = run('relaxed', {
      taskRunTemplate: { podTemplate: { runtimeClassName: 'runc', hostNetwork: true } },
    });
    const response = decide(object);
    expect(response.allowed).toBe(true);
    expect(response.warnings).toEqual(['podTemplate.runtimeClassName "runc" kept (class relaxed: "gvisor")']);
    const result = applyJsonPatch(object, patchOf(response));
    expect(result.spec.taskRunTemplate).toMatchObject({
      serviceAccountName: 'relaxed-runner',
      podTemplate: { runtimeClassName: 'runc', hostNetwork: true },
    });
    const named = decide(run('relaxed', { taskRunTemplate: { serviceAccountName: 'deployer' } }));
    expect(named.warnings).toEqual([
      'taskRunTemplate.serviceAccountName "deployer" kept (class relaxed: "relaxed-runner")',
    ]);
  });
});

describe('a class bound to namespaces', () => {
  it('refuses a run of another namespace that names it, and does not select one', () => {
    const named = { ...run('x'), metadata: { labels: { 'gantry.dev/class': 'team-a-only' } } };
    expect(decide(named, { namespace: 'team-b' })).toEqual({
      uid: UID,
      allowed: false,
      status: {
        code: 403,
        message: 'class team-a-only takes runs of namespace team-a only; this run is in "team-b"',
      },
    });
    expect(decide(named, { namespace: 'team-a' }).allowed).toBe(true);
    expect(decide(run('a'), { namespace: 'team-b' })).toEqual({ uid: UID, allowed: true });
    expect(patchOf(decide(run('a'), { namespace: 'team-a' }))).not.toEqual([]);
  });
});
