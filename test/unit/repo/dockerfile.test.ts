import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// No Docker engine runs the unit tests, so these read the Dockerfile as BuildKit would (continuation
// lines joined, comments dropped) and check what the image would hold.

const ROOT = new URL('../../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, ROOT), 'utf8');

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  image: string;
  name: string | undefined;
  platform: string | undefined;
  instructions: Instruction[];
}

function parseDockerfile(text: string): { globalArgs: Instruction[]; stages: Stage[] } {
  const lines = text.split('\n').filter((line) => !/^\s*#/.test(line));
  const joined = lines.join('\n').replace(/\\\n/g, ' ');
  const globalArgs: Instruction[] = [];
  const stages: Stage[] = [];
  for (const line of joined.split('\n')) {
    const match = /^\s*(\w+)\s+(.*?)\s*$/.exec(line);
    if (!match?.[1] || match[2] === undefined) continue;
    const op = match[1].toUpperCase();
    const args = match[2].replace(/\s+/g, ' ');
    if (op === 'FROM') {
      const from = /^(?:--platform=(\S+) )?(\S+)(?: AS (\S+))?$/i.exec(args);
      if (!from?.[2]) throw new Error(`unparsed FROM: ${args}`);
      stages.push({ platform: from[1], image: from[2], name: from[3], instructions: [] });
    } else if (stages.length === 0) {
      if (op !== 'ARG') throw new Error(`${op} before the first FROM`);
      globalArgs.push({ op, args });
    } else {
      stages.at(-1)?.instructions.push({ op, args });
    }
  }
  return { globalArgs, stages };
}

const dockerfile = parseDockerfile(read('Dockerfile'));
const runtime = dockerfile.stages.at(-1) as Stage;
const stageNamed = (name: string): Stage | undefined => dockerfile.stages.find((s) => s.name === name);
const runs = (stage: Stage): string[] => stage.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
const digest = 'a1'.repeat(32);

/** Runs the Dockerfile's pin check with the given base images; true when it lets the build go on. */
function pinCheckAccepts(images: Record<string, string>): boolean {
  const check = dockerfile.stages.flatMap(runs).find((run) => run.includes('@sha256:'));
  if (!check) throw new Error('no RUN checks the base image pins');
  try {
    execFileSync('sh', ['-c', check], { env: { PATH: process.env.PATH, ...images }, stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

describe('Dockerfile', () => {
  it('builds every stage from a base image given as a build argument with no default', () => {
    const baseArgs = new Set<string>();
    for (const stage of dockerfile.stages) {
      const ref = /^\$\{(\w+)\}$/.exec(stage.image)?.[1];
      expect(ref, `FROM ${stage.image}`).toBeDefined();
      baseArgs.add(ref as string);
    }
    for (const name of baseArgs) {
      expect(dockerfile.globalArgs.map((a) => a.args)).toContain(name);
    }
    expect([...baseArgs].sort()).toEqual(['BUILD_IMAGE', 'RUNTIME_IMAGE']);
  });

  it('refuses to build unless every base image is pinned by digest', () => {
    const pinned = {
      BUILD_IMAGE: `node:24-bookworm-slim@sha256:${digest}`,
      RUNTIME_IMAGE: `gcr.io/distroless/nodejs24-debian12:nonroot@sha256:${digest}`,
    };
    expect(pinCheckAccepts(pinned)).toBe(true);
    expect(pinCheckAccepts({ ...pinned, BUILD_IMAGE: 'node:24-bookworm-slim' })).toBe(false);
    expect(pinCheckAccepts({ ...pinned, RUNTIME_IMAGE: 'gcr.io/distroless/nodejs24-debian12:nonroot' })).toBe(
      false,
    );
    expect(pinCheckAccepts({ ...pinned, RUNTIME_IMAGE: 'node@sha256:abc' })).toBe(false);
    expect(pinCheckAccepts({ BUILD_IMAGE: pinned.BUILD_IMAGE })).toBe(false);
    // The check must sit in a stage the runtime depends on, or BuildKit would skip it.
    const checkStage = dockerfile.stages.find((s) => runs(s).some((r) => r.includes('@sha256:')));
    expect(runtime.instructions.some((i) => i.args.includes(`--from=${checkStage?.name}`))).toBe(true);
    for (const name of ['BUILD_IMAGE', 'RUNTIME_IMAGE']) {
      expect(checkStage?.instructions).toContainEqual({ op: 'ARG', args: name });
    }
  });

  it('installs without running dependencies’ lifecycle scripts and compiles with tsconfig.build.json', () => {
    const installs = dockerfile.stages.flatMap(runs).filter((run) => /\bnpm (ci|install|i)\b/.test(run));
    expect(installs.length).toBeGreaterThan(0);
    for (const install of installs) expect(install).toContain('--ignore-scripts');
    const build = stageNamed('build') as Stage;
    expect(runs(build).some((run) => /\btsc -p tsconfig\.build\.json\b/.test(run))).toBe(true);
  });

  it('runs as the non-root user 65532 with no shell and only dist/src, package.json and node_modules', () => {
    const users = runtime.instructions.filter((i) => i.op === 'USER').map((i) => i.args);
    expect(users.at(-1)).toBe('65532:65532');
    expect(runs(runtime)).toEqual([]);
    const entrypoint = runtime.instructions.find((i) => i.op === 'ENTRYPOINT')?.args ?? '';
    expect(JSON.parse(entrypoint)).toEqual(['/nodejs/bin/node', 'dist/src/main.js']);
    const copies = runtime.instructions.filter((i) => i.op === 'COPY' || i.op === 'ADD');
    const copied = copies.map((c) => {
      const [from, src] = c.args.split(' ');
      return `${from} ${src}`;
    });
    expect(copied.sort()).toEqual([
      '--from=build /app/dist/src',
      '--from=build /app/package.json',
      '--from=prod-deps /app/node_modules',
    ]);
  });

  it('takes node_modules from an install that omits dev dependencies', () => {
    const prodDeps = stageNamed('prod-deps') as Stage;
    expect(runs(prodDeps)).toEqual([expect.stringMatching(/^npm ci .*--omit=dev/)]);
    expect(prodDeps.instructions.filter((i) => i.op === 'COPY').map((i) => i.args)).toEqual([
      'package.json package-lock.json ./',
    ]);
    // --omit=dev leaves out what the lock file marks dev. A devDependency not marked so is there
    // only because a production dependency needs it too (@types/node, for one).
    const pkg = JSON.parse(read('package.json'));
    const lock = JSON.parse(read('package-lock.json'));
    const production = Object.entries<{ dev?: boolean; dependencies?: Record<string, string> }>(
      lock.packages,
    ).filter(([path, entry]) => path !== '' && !entry.dev);
    const neededInProduction = new Set(
      production.flatMap(([, entry]) => Object.keys(entry.dependencies ?? {})),
    );
    for (const name of Object.keys(pkg.devDependencies)) {
      if (lock.packages[`node_modules/${name}`]?.dev === true) continue;
      expect(neededInProduction, `${name} would ship`).toContain(name);
    }
    for (const tool of ['typescript', 'vitest', '@biomejs/biome', 'node', 'playwright-core']) {
      expect(lock.packages[`node_modules/${tool}`]?.dev, tool).toBe(true);
    }
  });
});

describe('.dockerignore', () => {
  it('keeps what the build does not need out of the context', () => {
    const entries = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    for (const entry of ['.git', 'node_modules', 'dist', 'test', 'hack', 'chart', 'coverage']) {
      expect(entries).toContain(entry);
    }
    for (const needed of [
      'src',
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
    ]) {
      expect(entries).not.toContain(needed);
    }
  });
});
