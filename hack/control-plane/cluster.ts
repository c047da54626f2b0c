// `npm run cluster:up` / `npm run cluster:down`: a local control plane for people, kept running in
// the background between the two commands. The same code starts the one the tests use.
import { join } from 'node:path';
import { cacheDir, controlPlaneBinDir } from '../../test/support/control-plane/binaries.ts';
import {
  readRun,
  runIsHealthy,
  startControlPlane,
  stopRun,
} from '../../test/support/control-plane/control-plane.ts';

const runsDir = join(cacheDir(), 'runs');
const runDir = join(runsDir, 'dev');
const say = (m: string) => process.stderr.write(`[cluster] ${m}\n`);

async function up(): Promise<void> {
  const existing = await readRun(runDir);
  if (existing && runIsHealthy(existing, runDir)) {
    say(`already running at ${existing.server}`);
    process.stdout.write(`${existing.kubeconfigPath}\n`);
    return;
  }
  if (existing) await stopRun(runDir);
  const started = Date.now();
  const plane = await startControlPlane({
    binDir: controlPlaneBinDir(),
    runsDir,
    name: 'dev',
    detached: true,
    log: say,
  });
  say(`up in ${((Date.now() - started) / 1000).toFixed(1)} s; logs in ${join(plane.runDir, 'logs')}`);
  say(`use it with: export KUBECONFIG=${plane.kubeconfigPath}`);
  process.stdout.write(`${plane.kubeconfigPath}\n`);
}

async function down(): Promise<void> {
  say((await stopRun(runDir)) ? 'stopped and removed' : 'no local cluster was running');
}

const command = process.argv[2];
const run = command === 'up' ? up : command === 'down' ? down : undefined;
if (!run) {
  process.stderr.write('usage: node hack/control-plane/cluster.ts up|down\n');
  process.exit(2);
}
run().catch((err: unknown) => {
  process.stderr.write(`[cluster] ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
