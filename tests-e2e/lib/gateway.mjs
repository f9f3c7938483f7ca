// Helpers for the gateway tests: upstream servers on loopback ports, mcpgate in front of
// them from a configuration file, and an SDK client signed in through the whole flow.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { startMcpgate, freePort } from './server.mjs';
import { Browser, adminPassword } from './browser.mjs';
import { callbackServer, MemoryProvider } from './oauth.mjs';

export const EVERYTHING = resolve(import.meta.dirname,
  '../fixtures/everything/node_modules/@modelcontextprotocol/server-everything/dist/index.js');
export const PYTHON = resolve(import.meta.dirname, '../.venv/bin/python');
export const PY_SERVER = resolve(import.meta.dirname, '../tests/gateway_server.py');

/** Spawns a process and resolves once `url` answers any HTTP status. */
export async function startUpstream(cmd, args, { env = {}, url }) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  child.stdout.on('data', (d) => { logs += d; });
  child.stderr.on('data', (d) => { logs += d; });
  const deadline = Date.now() + 60000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${cmd} exited ${child.exitCode}: ${logs}`);
    try { await fetch(url, { headers: { 'x-e2e-probe': '1' } }); break; } catch {}
    if (Date.now() > deadline) throw new Error(`${cmd} did not start: ${logs}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url, logs: () => logs,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
    },
  };
}

/** server-everything over Streamable HTTP on a free port. */
export async function startEverythingHttp() {
  const port = await freePort();
  return startUpstream(process.execPath, [EVERYTHING, 'streamableHttp'], { env: { PORT: String(port) }, url: `http://127.0.0.1:${port}/mcp` });
}

/** mcpgate serve with `toml` as its configuration file. */
export async function startGateway(toml, { args = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mcpgate-gw-'));
  const file = join(dir, 'mcpgate.toml');
  writeFileSync(file, toml);
  const server = await startMcpgate({ args: ['--config', file, ...args] });
  server.password = adminPassword(server.output());
  return server;
}

/** A v1 SDK client connected to `url` after the whole OAuth flow (register, browser
 * sign-in, consent with `approve` ticked, token). */
export async function connectClient(server, url, { approve, capabilities = {}, handlers = [], username = 'admin', password = server.password } = {}) {
  const cb = await callbackServer();
  try {
    const provider = new MemoryProvider(cb.redirectUri, 'e2e gateway');
    const u = new URL(url);
    const make = () => {
      const c = new Client({ name: 'e2e-gateway', version: '1' }, { capabilities });
      for (const [schema, fn] of handlers) c.setRequestHandler(schema, fn);
      return c;
    };
    let first;
    try { await make().connect(new StreamableHTTPClientTransport(u, { authProvider: provider })); } catch (e) { first = e; }
    if (!(first instanceof UnauthorizedError)) throw new Error(`expected a 401 first, got ${first}`);
    const authUrl = new URL(provider.authUrls.at(-1));
    const callback = new URL(await new Browser().authorize(authUrl.toString(), { username, password, approve }));
    await new StreamableHTTPClientTransport(u, { authProvider: provider }).finishAuth(callback.searchParams.get('code'));
    const client = make();
    const transport = new StreamableHTTPClientTransport(u, { authProvider: provider });
    await client.connect(transport);
    return { client, transport, provider, authUrl };
  } finally { await cb.close(); }
}
