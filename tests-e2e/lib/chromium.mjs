// Debian's chromium, driven by playwright-core (never a downloaded browser build).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** Launches a headless chromium for one test file. */
export async function launchChromium() {
  assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM}: ./scripts/test installs Debian's chromium`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
}
