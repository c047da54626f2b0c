import { describe, expect, it } from 'vitest';
import { describeRequest } from '../../../src/kube/client.ts';

describe('describeRequest', () => {
  const base = 'https://127.0.0.1:6443';
  it.each([
    ['GET', '/api/v1/namespaces/ci/pods', 'list', 'pods'],
    ['GET', '/api/v1/namespaces/ci/pods?watch=true&resourceVersion=5', 'watch', 'pods'],
    ['GET', '/api/v1/namespaces/ci/pods/runner-1', 'get', 'pods'],
    ['POST', '/api/v1/namespaces/ci/pods', 'post', 'pods'],
    ['POST', '/api/v1/namespaces/ci/pods?dryRun=All', 'post-dry-run', 'pods'],
    ['DELETE', '/api/v1/namespaces/ci/secrets/jit-1', 'delete', 'secrets'],
    ['PATCH', '/api/v1/namespaces/ci/pods/runner-1/status', 'patch', 'pods/status'],
    ['GET', '/api/v1/nodes', 'list', 'nodes'],
    ['GET', '/api/v1/namespaces', 'list', 'namespaces'],
    ['GET', '/api/v1/namespaces/ci', 'get', 'namespaces'],
    ['PUT', '/apis/coordination.k8s.io/v1/namespaces/gantry/leases/gantry-leader', 'put', 'leases'],
    ['PATCH', '/apis/tekton.dev/v1/namespaces/ci/pipelineruns/build-1', 'patch', 'pipelineruns'],
  ])('%s %s is %s of %s', (method, path, verb, resource) => {
    expect(describeRequest(method, `${base}${path}`)).toEqual({ verb, resource });
  });
});
