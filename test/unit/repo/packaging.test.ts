import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// What `npm pack` ships is decided by package.json's "files"; only the compiled daemon belongs in it.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

function packedFiles(cwd: string): string[] {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [report] = JSON.parse(out) as { files: { path: string }[] }[];
  return (report?.files ?? []).map((f) => f.path).sort();
}

const ALWAYS = ['package.json', 'README.md', 'LICENSE'];
const shippable = (path: string): boolean =>
  ALWAYS.includes(path) || /^dist\/src\/.+\.(js|d\.ts)$/.test(path);

describe('npm pack', () => {
  // A copy of package.json beside a tree with every kind of file the repository holds after a
  // build, so the test needs no build and sees exactly which ones "files" lets through.
  const fixture = mkdtempSync(join(tmpdir(), 'gantry-pack-'));
  afterAll(() => rmSync(fixture, { recursive: true, force: true }));

  it('ships the compiled daemon, package.json and README, and nothing else', () => {
    copyFileSync(join(ROOT, 'package.json'), join(fixture, 'package.json'));
    copyFileSync(join(ROOT, 'README.md'), join(fixture, 'README.md'));
    const tree = [
      'dist/src/main.js',
      'dist/src/main.js.map',
      'dist/src/config/schema.js',
      'dist/test/unit/cli.test.js',
      'dist/hack/demo/main.js',
      'dist/sbom.cdx.json',
      'src/main.ts',
      'test/unit/cli.test.ts',
      'hack/demo/main.ts',
      'chart/Chart.yaml',
      'node_modules/yaml/index.js',
      'coverage/index.html',
      'Dockerfile',
      'tsconfig.json',
      '.ci/run',
      '.github/workflows/ci.yml',
    ];
    for (const path of tree) {
      mkdirSync(dirname(join(fixture, path)), { recursive: true });
      writeFileSync(join(fixture, path), '\n');
    }
    expect(packedFiles(fixture)).toEqual(
      ['README.md', 'dist/src/config/schema.js', 'dist/src/main.js', 'package.json'].sort(),
    );
  });

  it('includes the bin it declares', () => {
    expect(pkg.bin.gantry).toMatch(/^dist\/src\//);
  });

  it('ships nothing but those from the working tree, with or without a build', () => {
    const files = packedFiles(ROOT);
    expect(files.filter((path) => !shippable(path))).toEqual([]);
    if (existsSync(join(ROOT, pkg.bin.gantry))) expect(files).toContain(pkg.bin.gantry);
  });
});

describe('npm run sbom', () => {
  it('writes a CycloneDX SBOM of the production dependencies outside what git tracks', () => {
    expect(pkg.scripts.sbom).toMatch(
      /\bnpm sbom --sbom-format cyclonedx\b.* --omit dev\b.*> dist\/\S+\.json$/,
    );
  });
});
