import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
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
import { type Scenario, SECRET } from './harness.ts';
import type { GantryProcess } from './replica.ts';
import { faultsKubeConfig } from './scenario.ts';

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
        const event = original.headers['x-github-event'] ?? 'workflow_job';
        headers = deliveryHeaders(body, SECRET, randomUUID(), event, s.fake.installationId);
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
        const res = await fetch(`${replica.webhookUrl}/webhooks/github`, {
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

export interface HostileLoad {
  /** Ends every attacking connection; what the listener answered, by kind of attack and status line. */
  stop(): Promise<Map<string, number>>;
}

/**
 * Unauthenticated clients against a webhook listener, each reconnecting as soon as it is cut off:
 * `largeBodies` posting 25 MB bodies with a bad signature (half declare their length, half stream it
 * chunked), and `slowClients` sending a byte a second (half still in their headers, half in a body).
 */
export function startHostileLoad(
  webhookUrl: string,
  { largeBodies, slowClients }: { largeBodies: number; slowClients: number },
): HostileLoad {
  const { hostname, port } = new URL(webhookUrl);
  const answers = new Map<string, number>();
  const sockets = new Set<Socket>();
  let stopped = false;
  const count = (key: string) => answers.set(key, (answers.get(key) ?? 0) + 1);
  const large = 25 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 0x7b);
  const head = (extra: string) =>
    'POST /webhooks/github HTTP/1.1\r\nhost: gantry\r\ncontent-type: application/json\r\n' +
    `x-github-event: workflow_job\r\nx-github-delivery: ${randomUUID()}\r\n` +
    `x-hub-signature-256: sha256=${'0'.repeat(64)}\r\n${extra}\r\n`;

  /** One attacker: connects, does `attack`, and starts over once the listener closes on it. */
  const attacker = async (kind: string, attack: (socket: Socket) => void) => {
    while (!stopped) {
      await new Promise<void>((resolve) => {
        const socket = connect(Number(port), hostname, () => attack(socket));
        sockets.add(socket);
        let first = '';
        socket.on('data', (data) => {
          if (!first) {
            first = data.toString().split('\r\n')[0] ?? '';
            count(`${kind}: ${first}`);
          }
        });
        socket.on('error', () => {});
        socket.on('close', () => {
          sockets.delete(socket);
          if (!first) count(`${kind}: closed without an answer`);
          resolve();
        });
      });
      if (!stopped) await sleep(50);
    }
  };

  const writeFor = (socket: Socket, bytes: number, framed: boolean) => {
    let left = bytes;
    const pump = () => {
      while (left > 0 && !socket.destroyed) {
        const part = framed ? `${chunk.length.toString(16)}\r\n${chunk.toString()}\r\n` : chunk;
        left -= chunk.length;
        if (!socket.write(part)) {
          socket.once('drain', pump);
          return;
        }
      }
      if (framed && !socket.destroyed) socket.write('0\r\n\r\n');
    };
    pump();
  };
  const trickle = (socket: Socket, text: string) => {
    let i = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || i >= text.length) return clearInterval(timer);
      socket.write(text[i++] ?? '');
    }, 1_000);
    socket.on('close', () => clearInterval(timer));
  };

  const attackers: Promise<void>[] = [];
  for (let i = 0; i < largeBodies; i++) {
    attackers.push(
      i % 2 === 0
        ? attacker('25 MB, length declared', (socket) => {
            socket.write(head(`content-length: ${large}\r\n`));
            writeFor(socket, large, false);
          })
        : attacker('25 MB, chunked', (socket) => {
            socket.write(head('transfer-encoding: chunked\r\n'));
            writeFor(socket, large, true);
          }),
    );
  }
  for (let i = 0; i < slowClients; i++) {
    attackers.push(
      i % 2 === 0
        ? attacker('slow headers', (socket) => trickle(socket, head('content-length: 2\r\n')))
        : attacker('slow body', (socket) => {
            socket.write(head('content-length: 1000\r\n'));
            trickle(socket, 'x'.repeat(1_000));
          }),
    );
  }
  return {
    async stop() {
      stopped = true;
      for (const socket of sockets) socket.destroy();
      await Promise.all(attackers);
      return answers;
    },
  };
}
