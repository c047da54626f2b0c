// `npm run demo`: Gantry's main job on an embedded default. Today it starts the local control plane
// and the Gantry daemon beside it; the simulated GitHub and its job load join when those parts land.
// Runs until Ctrl-C, then stops everything it started.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir, controlPlaneBinDir } from '../test/support/control-plane/binaries.ts';
import { startControlPlane } from '../test/support/control-plane/control-plane.ts';

const say = (m: string) => process.stderr.write(`[demo] ${m}\n`);

async function main(): Promise<void> {
  const plane = await startControlPlane({
    binDir: controlPlaneBinDir(),
    runsDir: join(cacheDir(), 'runs'),
    log: (m) => say(`control plane: ${m}`),
  });
  say(`kubeconfig: ${plane.kubeconfigPath}`);
  const configPath = join(plane.runDir, 'gantry.yaml');
  await writeFile(configPath, 'http:\n  address: 127.0.0.1\n  port: 8080\n');
  const gantry = spawn(process.execPath, ['src/main.ts', '--config', configPath], {
    stdio: 'inherit',
    env: { ...process.env, KUBECONFIG: plane.kubeconfigPath },
  });
  say('gantry: http://127.0.0.1:8080/metrics and /healthz; Ctrl-C stops the demo');
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    gantry.kill('SIGTERM');
    await plane.stop();
    process.exit(code);
  };
  gantry.on('exit', (code) => void stop(code ?? 1));
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
}

main().catch((err: unknown) => {
  say(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
