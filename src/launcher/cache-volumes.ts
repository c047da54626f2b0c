import type { V1EnvVar, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { type CacheConfig, type CacheTool, cacheMountPath } from '../config/classes.ts';

/**
 * A class's caches as pod volumes, mounts and tool environment.
 *
 * A shared PVC is mounted read-write for trusted classes and read-only for the untrusted class, so fork
 * code can read what trusted builds cached but never plant anything in it. An ephemeral volume
 * belongs to one pod only and is always writable.
 *
 * On a read-only cache only tools that can read a cache without writing to it are pointed at it:
 * Go through a file:// module proxy, Gradle through its read-only dependency cache. npm and pip write
 * into their cache on every run, so on a read-only mount they keep their own default cache.
 */

export interface CachePodParts {
  volumes: V1Volume[];
  mounts: V1VolumeMount[];
  env: V1EnvVar[];
}

export function cacheVolumeName(cache: CacheConfig): string {
  return `cache-${cache.name}`;
}

export function buildCachePodParts(caches: readonly CacheConfig[], untrustedClass: boolean): CachePodParts {
  const parts: CachePodParts = { volumes: [], mounts: [], env: [] };
  for (const cache of caches) {
    const name = cacheVolumeName(cache);
    const mountPath = cacheMountPath(cache);
    const readOnly = cache.type === 'persistentVolumeClaim' && untrustedClass;
    if (cache.type === 'persistentVolumeClaim') {
      parts.volumes.push({ name, persistentVolumeClaim: { claimName: cache.claimName, readOnly } });
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
    }
    parts.mounts.push({ name, mountPath, readOnly });
    for (const tool of cache.tools) parts.env.push(...toolEnv(tool, mountPath, readOnly));
  }
  return parts;
}

function toolEnv(tool: CacheTool, root: string, readOnly: boolean): V1EnvVar[] {
  const at = (name: string, value: string): V1EnvVar => ({ name, value });
  switch (tool) {
    case 'npm':
      return readOnly ? [] : [at('npm_config_cache', `${root}/npm`)];
    case 'pip':
      return readOnly ? [] : [at('PIP_CACHE_DIR', `${root}/pip`)];
    case 'go':
      return readOnly
        ? // The module cache's download directory is laid out as a module proxy.
          [at('GOPROXY', `file://${root}/go/mod/cache/download,https://proxy.golang.org,direct`)]
        : [at('GOMODCACHE', `${root}/go/mod`), at('GOCACHE', `${root}/go/build`)];
    case 'gradle':
      return readOnly
        ? [at('GRADLE_RO_DEP_CACHE', `${root}/gradle/caches`)]
        : [at('GRADLE_USER_HOME', `${root}/gradle`)];
  }
}
