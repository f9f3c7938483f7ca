// The admin CLI against a running server's data directory: scriptable (exit codes,
// --json), and its changes reach the running server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMcpgate, mcpgate } from '../lib/server.mjs';
import { adminPassword, Browser } from '../lib/browser.mjs';
import { obtainTokens } from '../lib/flow.mjs';

let server;
before(async () => { server = await startMcpgate({ args: ['--audit-interval', '1'] }); });
after(async () => { await server?.stop(); });

const run = (args, input) => mcpgate(args, { input, dataDir: server.dataDir });

test('users: add from stdin, list as JSON, sign in, disable, passwd', async () => {
  let r = await run(['user', 'add', 'carol', '--email', 'carol@example.com', '--password-stdin'], 'carol password 1\n');
  assert.equal(r.code, 0, r.stderr);
  r = await run(['user', 'add', 'carol', '--password-stdin'], 'another password\n');
  assert.notEqual(r.code, 0, 'duplicate user fails with a non-zero exit');
  r = await run(['user', 'add', 'dave', '--password-stdin'], 'short\n');
  assert.notEqual(r.code, 0, 'short passwords are refused');
  const users = JSON.parse((await run(['user', 'list', '--json'])).stdout);
  assert.deepEqual(users.map((u) => u.username).sort(), ['admin', 'carol']);
  const signIn = async (pw) => {
    const b = new Browser();
    const page = await (await b.request(`${server.base}/login`)).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)[1];
    return (await b.post(`${server.base}/login`, [['csrf', csrf], ['username', 'carol'], ['password', pw], ['next', '/apps']])).status;
  };
  assert.equal(await signIn('carol password 1'), 303);
  assert.equal((await run(['user', 'passwd', 'carol', '--password-stdin'], 'carol password 2\n')).code, 0);
  assert.equal(await signIn('carol password 1'), 401);
  assert.equal(await signIn('carol password 2'), 303);
  assert.equal((await run(['user', 'disable', 'carol'])).code, 0);
  assert.equal(await signIn('carol password 2'), 401, 'a disabled user cannot sign in');
});

test('allowed clients: list presets, add a custom URI, registration follows the list', async () => {
  const list = JSON.parse((await run(['clients', 'allowed', 'list', '--json'])).stdout);
  assert.ok(list.presets.find((p) => p.preset === 'cursor' && p.enabled));
  const reg = (uri) => fetch(`${server.base}/register`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ redirect_uris: [uri], token_endpoint_auth_method: 'none' }) });
  assert.equal((await reg('https://agent.example/cb')).status, 400);
  assert.equal((await run(['clients', 'allowed', 'add', 'https://agent.example/cb'])).code, 0);
  assert.equal((await reg('https://agent.example/cb')).status, 201);
  assert.equal((await run(['clients', 'allowed', 'disable', 'cursor'])).code, 0);
  assert.equal((await reg('cursor://anysphere.cursor-mcp/oauth/callback')).status, 400);
  assert.notEqual((await run(['clients', 'allowed', 'enable', 'no-such-preset'])).code, 0);
});

test('grants: list and revoke a user\'s grants while the server runs; audit shows it', async () => {
  const password = adminPassword(server.output());
  const tok = await obtainTokens(server, password);
  const call = () => fetch(server.mcpUrl, { method: 'POST', headers: { authorization: `Bearer ${tok.access_token}`, 'content-type': 'application/json',
    accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'calculator', arguments: { operation: 'add', a: 1, b: 1 } } }) });
  assert.equal((await call()).status, 200);
  const grants = JSON.parse((await run(['grants', 'list', '--user', 'admin', '--json'])).stdout);
  assert.ok(grants.length >= 1);
  assert.ok(grants.every((g) => g.user === 'admin'), 'each grant names its person');
  assert.equal((await run(['grants', 'revoke', '--user', 'admin', '--all'])).code, 0);
  let status = 200;
  for (let i = 0; i < 50 && status === 200; i++) { await new Promise((r) => setTimeout(r, 100)); status = (await call()).status; }
  assert.equal(status, 401, 'the running server applies the revocation within its sync period');
  // Tool calls are written as counts once per audit interval (1 s here).
  let events = [];
  for (let i = 0; i < 30; i++) {
    events = (await run(['audit', '--json', '--limit', '200'])).stdout.trim().split('\n').map((l) => JSON.parse(l));
    if (events.some((e) => e.event === 'tool_calls')) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const kinds = new Set(events.map((e) => e.event));
  for (const k of ['login_succeeded', 'consent_granted', 'token_issued', 'grant_revoked', 'tool_calls', 'client_registered']) assert.ok(kinds.has(k), `audit has ${k}`);
  const calls = events.filter((e) => e.event === 'tool_calls').map((e) => (typeof e.detail === 'string' ? JSON.parse(e.detail) : e.detail));
  assert.ok(calls.some((d) => d.operation === 'add' && d.allowed === true && d.count >= 1), JSON.stringify(calls));
  assert.ok(!JSON.stringify(events).includes(tok.access_token), 'no token in the audit trail');
});

test('scopes and clients: add, list, show, remove', async () => {
  assert.equal((await run(['scope', 'add', 'notes:read', '--description', 'Read your notes'])).code, 0);
  assert.notEqual((await run(['scope', 'add', 'two words', '--description', 'x'])).code, 0);
  const scopes = JSON.parse((await run(['scope', 'list', '--json'])).stdout);
  assert.ok(scopes.some((s) => s.name === 'notes:read'));
  const made = JSON.parse((await run(['client', 'add', '--name', 'Manual', '--redirect-uri', 'http://127.0.0.1/callback', '--confidential', '--json'])).stdout);
  assert.equal(made.client_secret.length, 43);
  const shown = JSON.parse((await run(['client', 'show', made.client_id])).stdout);
  assert.equal(shown.confidential, true);
  assert.ok(!JSON.stringify(shown).includes(made.client_secret), 'the secret is shown once');
  assert.equal((await run(['client', 'remove', made.client_id])).code, 0);
  assert.notEqual((await run(['client', 'show', made.client_id])).code, 0);
});

test('audit: tool calls counted since the last write are written when the server stops', async () => {
  // An interval far longer than the test: only the write on shutdown can record them.
  const own = await startMcpgate({ args: ['--audit-interval', '3600'], dataDir: undefined });
  const dataDir = own.dataDir;
  const tok = await obtainTokens(own, adminPassword(own.output()));
  for (let i = 0; i < 3; i++) {
    const r = await fetch(own.mcpUrl, { method: 'POST', headers: { authorization: `Bearer ${tok.access_token}`, 'content-type': 'application/json',
      accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'calculator', arguments: { operation: 'multiply', a: 6, b: 7 } } }) });
    assert.equal(r.status, 200);
  }
  const before = (await mcpgate(['audit', '--json'], { dataDir })).stdout;
  assert.ok(!before.includes('"tool_calls"'), 'nothing written before the interval ends');
  own.child.kill('SIGTERM');
  await new Promise((r) => (own.child.exitCode !== null ? r() : own.child.once('exit', r)));
  const events = (await mcpgate(['audit', '--json'], { dataDir })).stdout.trim().split('\n').map((l) => JSON.parse(l));
  const calls = events.filter((e) => e.event === 'tool_calls').map((e) => e.detail);
  assert.deepEqual(calls.map((d) => [d.operation, d.allowed, d.count]), [['multiply', true, 3]]);
  await own.stop();
});
