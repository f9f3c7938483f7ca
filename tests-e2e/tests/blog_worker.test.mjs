// The blog post this project started from (shared/seed) builds a calculator Worker
// that trusts a hosted authorization server at `${AUTH_URL}/oauth/2.1`: its
// protected-resource metadata points clients there, and it validates every call by
// RFC 7662 introspection with its own client credentials, checking `active`, the
// audience and a scope per operation. Here that Worker, as the post writes it
// (tests-e2e/fixtures/worker), runs locally in workerd through wrangler, configured
// only through its three variables to use mcpgate, whose issuer is
// `${origin}/oauth/2.1`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startMcpgate, freePort, mcpgate } from '../lib/server.mjs';
import { adminPassword } from '../lib/browser.mjs';
import { obtainTokens } from '../lib/flow.mjs';
import { node22 } from '../lib/conformance.mjs';

const fixture = resolve(import.meta.dirname, '../fixtures/worker');
let as;
let password;
let worker;
let workerUrl;
let resource;

/** `wrangler dev` on a free loopback port, its variables from a file (no secret in argv). */
async function startWorker(vars) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mcpgate-worker-'));
  const envFile = join(dir, 'worker.env');
  writeFileSync(envFile, Object.entries(vars).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 });
  const child = spawn(node22(), [join(fixture, 'node_modules/wrangler/bin/wrangler.js'), 'dev', '--ip', '127.0.0.1', '--port', String(port),
    '--env-file', envFile, '--log-level', 'warn', '--show-interactive-dev-session=false'], {
    cwd: fixture,
    env: { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false', WRANGLER_LOG_PATH: dir, XDG_CONFIG_HOME: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  child.stdout.on('data', (d) => { logs += d; });
  child.stderr.on('data', (d) => { logs += d; });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 240000; // bundling and starting workerd on a busy 2-core machine
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler exited ${child.exitCode}: ${logs}`);
    try { await fetch(`${url}/.well-known/oauth-protected-resource`); break; } catch {}
    if (Date.now() > deadline) throw new Error(`the Worker did not start: ${logs}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, logs: () => logs, stop: () => new Promise((r) => { child.once('exit', r); child.kill('SIGTERM'); }) };
}

before(async () => {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  // The Worker names itself `https://${hostname}/mcp` (RFC 8707 resource): mcpgate is
  // told it may issue tokens for it, as an operator of the post's setup would.
  resource = 'https://127.0.0.1/mcp';
  as = await startMcpgate({ port, publicUrl: `${origin}/oauth/2.1`, args: ['--resource', resource] });
  password = adminPassword(as.output());
  const add = await mcpgate(['client', 'add', '--name', 'Calculator Worker', '--introspection', '--json'], { dataDir: as.dataDir });
  assert.equal(add.code, 0, add.stderr);
  const creds = JSON.parse(add.stdout);
  worker = await startWorker({
    PROPELAUTH_AUTH_URL: origin,
    PROPELAUTH_INTROSPECTION_CLIENT_ID: creds.client_id,
    PROPELAUTH_INTROSPECTION_CLIENT_SECRET: creds.client_secret,
  });
  workerUrl = worker.url;
});
after(async () => { await worker?.stop(); await as?.stop(); });

async function connect(token) {
  const client = new Client({ name: 'blog-reader', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${workerUrl}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  }));
  return client;
}

const calc = (client, operation, a, b) => client.callTool({ name: 'calculator', arguments: { operation, a, b } });

test('discovery from the Worker reaches mcpgate at {origin}/oauth/2.1', async () => {
  const challenge = await fetch(`${workerUrl}/mcp`, { method: 'POST' });
  assert.equal(challenge.status, 401);
  assert.match(challenge.headers.get('www-authenticate'), /resource_metadata=/);
  const prm = await (await fetch(`${workerUrl}/.well-known/oauth-protected-resource`)).json();
  assert.equal(prm.resource, resource);
  const [issuer] = prm.authorization_servers;
  assert.equal(issuer, as.base, 'the Worker points at mcpgate\'s issuer');
  // RFC 8414 §3.1: the issuer's path goes after the well-known prefix.
  const u = new URL(issuer);
  const metadataUrl = `${u.origin}/.well-known/oauth-authorization-server${u.pathname}`;
  const r = await fetch(metadataUrl);
  assert.equal(r.status, 200, metadataUrl);
  const m = await r.json();
  assert.equal(m.issuer, issuer, 'issuer identical to the one the Worker names');
  assert.equal(m.introspection_endpoint, `${issuer}/introspect`, 'where the Worker introspects');
  assert.equal(m.token_endpoint, `${issuer}/token`);
  assert.ok(m.scopes_supported.includes('op:add'));
});

test('a token from the real flow calls add; an operation without its scope gets the blog\'s error; revocation is immediate', async () => {
  const tok = await obtainTokens(as, password, { resource, approve: ['op:add', 'op:sub'] });
  assert.equal(tok.scope, 'op:add op:sub');
  const client = await connect(tok.access_token);
  try {
    const r = await calc(client, 'add', 5, 8);
    assert.deepEqual(r.content, [{ type: 'text', text: '13' }]);
    assert.deepEqual((await calc(client, 'subtract', 5, 8)).content, [{ type: 'text', text: '-3' }]);
    const denied = await calc(client, 'multiply', 6, 7);
    assert.equal(denied.isError, true);
    assert.match(denied.content[0].text, /Missing required scope "op:mult"/);
  } finally { await client.close().catch(() => {}); }

  // A refresh token is not a bearer token, even to a Worker that never checks token_type.
  await assert.rejects(connect(tok.refresh_token), /401|Unauthorized/);

  // The operator revokes the person's grants from the CLI: the Worker refuses the
  // token on its next call (it introspects every call; mcpgate checks the database).
  const revoked = await mcpgate(['grants', 'revoke', '--user', 'admin', '--all'], { dataDir: as.dataDir });
  assert.equal(revoked.code, 0, revoked.stderr);
  await assert.rejects(connect(tok.access_token), /401|Unauthorized/);
});
