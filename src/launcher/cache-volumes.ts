import type { V1EnvVar, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { type CacheConfig, type CacheTool, cacheMountPath, cacheVolumeName } from '../classes/schema.ts';

/**
 * A class's caches as pod volumes, mounts and tool environment.
 *
 * A shared claim lives in the class's namespace, so it is never a class of another trust tier's
 * (those have namespaces of their own). It is read-only for untrusted classes unless the class says
 * otherwise, so one fork's job cannot plant content for the next. With `perRepository` (scope repo,
 * where a runner takes jobs of its own repository only) each repository gets a sub-path of its own.
 *
 * Tools are pointed only at what is safe to share: caches verified on read (npm's content-addressed
 * cache, Go's module cache against go.sum) or inert (pip's wheels, Gradle's read-only dependency
 * cache). GOCACHE and GRADLE_USER_HOME, whose content later builds execute (Gradle init scripts, Go
 * build results), go into a shared claim only with `buildCaches`; an ephemeral volume belongs to one
 * pod, so it gets them all. On a read-only claim only tools that can read without writing use it: Go
 * through a file:// module proxy, Gradle as its read-only dependency cache.
 */

export interface CachePodParts {
  volumes: V1Volume[];
  mounts: V1VolumeMount[];
  env: V1EnvVar[];
}

export interface CacheOwner {
  /** The class takes untrusted jobs: shared claims default to read-only. */
  untrusted: boolean;
  /** The repository a repo-scoped runner serves, for per-repository sub-paths. */
  repo?: string;
}

type Access = 'private' | 'shared' | 'shared-build' | 'read-only';

export function buildCachePodParts(caches: readonly CacheConfig[], owner: CacheOwner): CachePodParts {
  const parts: CachePodParts = { volumes: [], mounts: [], env: [] };
  for (const cache of caches) {
    const name = cacheVolumeName(cache);
    const mountPath = cacheMountPath(cache);
    let access: Access = 'private';
    if (cache.type === 'persistentVolumeClaim') {
      const readOnly = cache.readOnly ?? owner.untrusted;
      access = readOnly ? 'read-only' : cache.buildCaches ? 'shared-build' : 'shared';
      parts.volumes.push({ name, persistentVolumeClaim: { claimName: cache.claimName, readOnly } });
      const subPath = cache.perRepository && owner.repo ? owner.repo.toLowerCase() : undefined;
      parts.mounts.push({ name, mountPath, readOnly, ...(subPath ? { subPath } : {}) });
    } else {
      parts.volumes.push({
        name,
        ephemeral: {
          volumeClaimTemplate: {
            spec: {
              accessModes: ['ReadWriteOnce'],
              resources: { requests: { storage: cache.size } },
              ...(cache.storageClassName ? { storageClassName: cache.storageClassName } : {}),
            },
          },
        },
      });
      parts.mounts.push({ name, mountPath, readOnly: false });
    }
    for (const tool of cache.tools) parts.env.push(...toolEnv(tool, mountPath, access));
  }
  return parts;
}

function toolEnv(tool: CacheTool, root: string, access: Access): V1EnvVar[] {
  const at = (name: string, value: string): V1EnvVar => ({ name, value });
  const buildOutputs = access === 'private' || access === 'shared-build';
  switch (tool) {
    case 'npm':
      return access === 'read-only' ? [] : [at('npm_config_cache', `${root}/npm`)];
    case 'pip':
      return access === 'read-only' ? [] : [at('PIP_CACHE_DIR', `${root}/pip`)];
    case 'go':
      if (access === 'read-only') {
        // The module cache's download directory is laid out as a module proxy.
        return [at('GOPROXY', `file://${root}/go/mod/cache/download,https://proxy.golang.org,direct`)];
      }
      return [
        at('GOMODCACHE', `${root}/go/mod`),
        ...(buildOutputs ? [at('GOCACHE', `${root}/go/build`)] : []),
      ];
    case 'gradle':
      return buildOutputs
        ? [at('GRADLE_USER_HOME', `${root}/gradle`)]
        : [at('GRADLE_RO_DEP_CACHE', `${root}/gradle/caches`)];
  }
}
