import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import type { TestContext } from 'vitest';

/** Where Debian's chromium package (installed by .ci/run) puts the browser. */
const CHROMIUM = '/usr/bin/chromium';

/** Headless chromium for a test; the test is skipped (and this gives nothing) where none is installed. */
export async function launchChromium(ctx: TestContext): Promise<Browser | undefined> {
  if (!existsSync(CHROMIUM)) {
    ctx.skip(`chromium is not installed at ${CHROMIUM}`);
    return undefined;
  }
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}
