import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { inject } from 'vitest';
import {
  killComponent,
  pauseComponent,
  resumeComponent,
  startComponentAgain,
} from '../support/control-plane/process-control.ts';
import { deliveryHeaders } from '../support/fake-github/webhooks.ts';
import { until } from '../support/until.ts';
import { faultsKubeConfig, type GantryProcess, type Scenario, SECRET } from './harness.ts';

// The faults themselves, shared by the scenarios (one fault each, with its own checks) and the soak
// (all of them, one after another, while jobs keep coming).

const runDir = () => inject('faultsRunDir');

export async function apiserverReady(timeoutMs = 90_000): Promise<void> {
  const core = faultsKubeConfig().makeApiClient(CoreV1Api);
  await until(
    'the apiserver answers again',
    async () => {
      await core.listNamespace({ limit: 1 });
      return true;
    },
    timeoutMs,
    200,
  );
}

/** Kills kube-apiserver (SIGKILL), keeps it down for `downMs`, starts it with the same flags, waits for it. */
export async function restartApiserver(s: Scenario, downMs: number, whileDown?: () => void): Promise<void> {
  s.downOnPurpose.add('kube-apiserver');
  try {
    await killComponent(runDir(), 'kube-apiserver');
    await sleep(downMs / 2);
    whileDown?.();
    await sleep(downMs / 2);
    await startComponentAgain(runDir(), 'kube-apiserver');
  } finally {
    s.downOnPurpose.delete('kube-apiserver');
  }
  await apiserverReady();
}

/** Freezes etcd (SIGSTOP) for `ms`, then lets it run again (SIGCONT). */
export async function pauseEtcd(ms: number, whilePaused?: () => void): Promise<void> {
  await pauseComponent(runDir(), 'etcd');
  try {
    await sleep(ms / 2);
    whilePaused?.();
    await sleep(ms / 2);
  } finally {
    await resumeComponent(runDir(), 'etcd');
  }
  await apiserverReady();
}

export type FloodKind = 'redelivery' | 're-signed' | 'forged' | 'garbage';

/**
 * Sends `count` deliveries to `replica`, `concurrency` at once, built from the deliveries the fake
 * sent so far: 40 % GitHub's redelivery (same delivery id), 20 % the same event under a new
 * delivery id, 30 % forged signatures, 10 % signed garbage (JSON nested too deep). Returns how many
 * of each kind got each status.
 */
export async function floodWebhooks(
  s: Scenario,
  replica: GantryProcess,
  count: number,
  concurrency = 32,
): Promise<Map<string, number>> {
  const originals = s.fake.deliveries.filter((d) => typeof d.result === 'number');
  const codes = new Map<string, number>();
  let sent = 0;
  const worker = async () => {
    while (sent < count) {
      const n = sent++;
      const original = originals[n % originals.length];
      if (!original) return;
      let kind: FloodKind;
      let body = original.body;
      let headers: Record<string, string>;
      const slot = n % 10;
      if (slot < 4) {
        kind = 'redelivery';
        headers = original.headers;
      } else if (slot < 6) {
        kind = 're-signed';
        headers = deliveryHeaders(body, SECRET, randomUUID(), 'workflow_job', s.fake.installationId);
      } else if (slot < 9) {
        kind = 'forged';
        headers = deliveryHeaders(body, 'not-the-secret', randomUUID(), 'workflow_job', 1);
      } else {
        kind = 'garbage';
        body = `${'['.repeat(100)}${']'.repeat(100)}`;
        headers = deliveryHeaders(body, SECRET, randomUUID(), 'workflow_job', s.fake.installationId);
      }
      let status: number | string;
      try {
        const res = await fetch(`${replica.url}/webhooks/github`, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.timeout(10_000),
        });
        await res.arrayBuffer();
        status = res.status;
      } catch {
        status = 'error';
      }
      const key = `${kind} ${status}`;
      codes.set(key, (codes.get(key) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return codes;
}

export function describeCodes(codes: Map<string, number>): string {
  return [...codes]
    .sort()
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
}
