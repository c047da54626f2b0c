import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

// npm run faults                       the CI form: every scenario, briefly (also part of npm test)
// npm run faults -- --soak             the long form: each scenario's fault held longer, and the
//                                      soak (5,000 jobs with faults injected throughout)
// npm run faults -- --soak --jobs 800  a shorter soak
// Anything else is passed to vitest (e.g. -t apiserver).

const { values, tokens } = parseArgs({
  args: process.argv.slice(2),
  options: { soak: { type: 'boolean' }, jobs: { type: 'string' } },
  strict: false,
  tokens: true,
});
const passThrough = tokens
  .filter((t) => t.kind !== 'option' || (t.name !== 'soak' && t.name !== 'jobs'))
  .flatMap((t) => {
    if (t.kind === 'positional') return [t.value];
    if (t.kind === 'option') return t.value === undefined ? [t.rawName] : [t.rawName, t.value];
    return [];
  });
const env = { ...process.env };
if (values.soak) env.GANTRY_FAULTS_SOAK = '1';
if (typeof values.jobs === 'string') env.GANTRY_FAULTS_SOAK_JOBS = values.jobs;

const vitest = fileURLToPath(new URL('../../node_modules/.bin/vitest', import.meta.url));
const child = spawn(vitest, ['run', '--project', 'faults', ...passThrough], { stdio: 'inherit', env });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
