// Starts the real `mcpgate` binary on a free loopback port with a fresh data directory.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';

export const BIN = process.env.MCPGATE_BIN || resolve(import.meta.dirname, '../../target/debug/mcpgate');

export async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
  });
}

/** Runs `mcpgate serve` (or another serving subcommand); resolves once /healthz answers. */
export async function startMcpgate({ args = [], env = {}, dataDir, subcommand = 'serve', port: wanted, publicUrl } = {}) {
  const port = wanted || await freePort();
  const base = publicUrl || `http://127.0.0.1:${port}`;
  const dir = dataDir || mkdtempSync(join(tmpdir(), 'mcpgate-e2e-'));
  const child = spawn(BIN, [subcommand, '--listen', `127.0.0.1:${port}`, '--public-url', base, '--data-dir', dir, ...args], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const deadline = Date.now() + 20000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mcpgate exited ${child.exitCode}: ${stderr}`);
    try { if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break; } catch {}
    if (Date.now() > deadline) throw new Error(`mcpgate did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    base, port, dataDir: dir, child,
    mcpUrl: `${base}/mcp`,
    output: () => stdout,
    logs: () => stderr,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
      if (!dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs a one-shot `mcpgate` command; resolves with { code, stdout, stderr }. */
export function mcpgate(args, { input, dataDir, env } = {}) {
  return new Promise((ok) => {
    const child = spawn(BIN, [...args, ...(dataDir ? ['--data-dir', dataDir] : [])], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (code) => ok({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}
