import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../../..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const pages = [
  'README.md',
  'chart/README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
  ...readdirSync(join(ROOT, 'docs/adr'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/adr/${f}`),
];

describe('the documentation', () => {
  it('has a README map of the code whose every entry is a file or folder', () => {
    const readme = read('README.md');
    const map = readme.slice(readme.indexOf('| where '), readme.indexOf('## A configuration'));
    const entries = [...map.matchAll(/^\| `([^`]+)`/gm)].map((m) => m[1] as string);
    expect(entries.length).toBeGreaterThan(10);
    expect(entries.filter((entry) => !existsSync(join(ROOT, entry)))).toEqual([]);
  });

  it('links only to files that exist', () => {
    const broken: string[] = [];
    for (const page of pages) {
      for (const [, target] of read(page).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (!target || /^[a-z]+:/.test(target) || target.startsWith('#')) continue;
        const file = target.split('#')[0] as string;
        if (!existsSync(join(ROOT, dirname(page), file))) broken.push(`${page}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });
});
