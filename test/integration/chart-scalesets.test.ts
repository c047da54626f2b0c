import type { V1Deployment } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { manifests, objectsOfKind, render, valuesFile } from '../support/chart.ts';

// The chart in scale-set mode (chart/ci/scalesets-values.yaml): no webhook to publish, the config
// Gantry reads in that mode.

describe('the chart with github.mode scaleSets', () => {
  const objects = manifests(render({ files: [valuesFile('scalesets')] }));

  it('renders no webhook Service or port, though a webhook secret is named', () => {
    const services = objectsOfKind(objects, 'Service').map((s) => s.metadata.name);
    expect(services.some((name) => name.endsWith('-webhook'))).toBe(false);
    const [deployment] = objectsOfKind(objects, 'Deployment') as V1Deployment[];
    const ports = deployment?.spec?.template.spec?.containers.flatMap((c) => c.ports ?? []) ?? [];
    expect(ports.map((p) => p.name)).not.toContain('github-webhook');
  });

  it('hands Gantry a configuration it accepts in scale-set mode', () => {
    const [configMap] = objectsOfKind(objects, 'ConfigMap');
    const text = (configMap?.data as Record<string, string> | undefined)?.['config.yaml'] ?? '';
    const config = parseConfig(parseYaml(text));
    expect(config.github.mode).toBe('scaleSets');
    expect(config.github.scaleSets.names).toEqual({ linux: 'acme-linux' });
  });
});
