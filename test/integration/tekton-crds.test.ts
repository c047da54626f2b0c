import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createTestNamespace,
  deleteNamespace,
  messageOf,
  statusOf,
  testKubeConfig,
} from '../support/kube.ts';

// The local control plane serves Tekton Pipelines' own CRDs (from its Go module), so PipelineRuns
// Gantry will hold and release are judged by Tekton's real schemas, not a stand-in.

const kc = testKubeConfig();
const objects = kc.makeApiClient(CustomObjectsApi);
const group = 'tekton.dev';
const version = 'v1';
const plural = 'pipelineruns';
let namespace: string;

beforeAll(async () => {
  namespace = await createTestNamespace(kc, 'tekton');
});
afterAll(async () => {
  if (namespace) await deleteNamespace(kc, namespace);
});

function pipelineRun(name: string, spec: Record<string, unknown>) {
  return {
    apiVersion: `${group}/${version}`,
    kind: 'PipelineRun',
    metadata: { name, labels: { 'gantry.dev/class': 'build' } },
    spec: {
      pipelineSpec: {
        tasks: [{ name: 'build', taskSpec: { steps: [{ name: 'make', image: 'alpine', script: 'make' }] } }],
      },
      ...spec,
    },
  };
}

describe.skipIf(inject('clusterKind') === 'existing')('Tekton CRDs in the local control plane', () => {
  it('accepts a pending tekton.dev/v1 PipelineRun and lets its pending status be cleared', async () => {
    await objects.createNamespacedCustomObject({
      group,
      version,
      namespace,
      plural,
      body: pipelineRun('held', { status: 'PipelineRunPending' }),
      fieldValidation: 'Strict',
    });
    const held = (await objects.getNamespacedCustomObject({
      group,
      version,
      namespace,
      plural,
      name: 'held',
    })) as {
      spec: { status?: string };
    };
    expect(held.spec.status).toBe('PipelineRunPending');

    // Releasing a held run is a merge patch that clears spec.status.
    await objects.patchNamespacedCustomObject(
      { group, version, namespace, plural, name: 'held', body: { spec: { status: null } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const released = (await objects.getNamespacedCustomObject({
      group,
      version,
      namespace,
      plural,
      name: 'held',
    })) as {
      spec: { status?: string };
    };
    expect(released.spec.status).toBeUndefined();
  });

  it('refuses a misspelt field under strict validation, by Tekton’s own schema', async () => {
    try {
      await objects.createNamespacedCustomObject({
        group,
        version,
        namespace,
        plural,
        body: pipelineRun('typo', { statuss: 'PipelineRunPending' }),
        fieldValidation: 'Strict',
      });
      expect.unreachable('the apiserver accepted an unknown field');
    } catch (err) {
      expect(statusOf(err)).toBe(400);
      expect(messageOf(err)).toContain('unknown field "spec.statuss"');
    }
  });
});
