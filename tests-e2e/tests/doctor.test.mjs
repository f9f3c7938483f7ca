// The connection doctor with the official TypeScript SDK client: a complete connection
// has not stopped; a client that stops after consent stopped at "token"; a client whose
// token is presented to another resource stopped at "call", the audience named.
// `mcpgate doctor --json` reads what the server wrote (it writes its notes every sync
// tick, 2 s), so each check polls with a generous deadline.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { startMcpgate, mcpgate } from '../lib/server.mjs';
import { Browser, adminPassword } from '../lib/browser.mjs';
import { callbackServer, MemoryProvider } from '../lib/oauth.mjs';

let calc;
let gw;
before(async () => {
  calc = await startMcpgate({ args: ['--audit-interval', '1'] });
  // Two upstreams the calls never reach: the guard refuses first.
  const dir = mkdtempSync(join(tmpdir(), 'mcpgate-doctor-'));
  const config = join(dir, 'mcpgate.toml');
  writeFileSync(config, ['a', 'b'].map((n) => `[[upstream]]\nname = "${n}"\nurl = "http://127.0.0.1:9/mcp"\nscopes = [{ name = "${n}:use", description = "Use ${n}" }]\ndefault = "${n}:use"\n`).join('\n'));
  gw = await startMcpgate({ args: ['--config', config] });
});
after(async () => { await calc?.stop(); await gw?.stop(); });

/** The doctor's report of `clientId` once `ready(report)` holds (or the deadline passes). */
async function doctor(server, clientId, ready) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const r = await mcpgate(['doctor', '--json', '--client', clientId], { dataDir: server.dataDir });
    assert.equal(r.code, 0, r.stderr);
    const c = JSON.parse(r.stdout).clients[0];
    if (ready(c) || Date.now() > deadline) return c;
    await new Promise((ok) => setTimeout(ok, 200));
  }
}

test('a complete connection has not stopped', async () => {
  const cb = await callbackServer();
  try {
    const provider = new MemoryProvider(cb.redirectUri, 'doctor complete');
    const url = new URL(calc.mcpUrl);
    await assert.rejects(new Client({ name: 'd', version: '1' }).connect(new StreamableHTTPClientTransport(url, { authProvider: provider })), UnauthorizedError);
    const callback = new URL(await new Browser().authorize(provider.authUrls.at(-1), { username: 'admin', password: adminPassword(calc.output()) }));
    await new StreamableHTTPClientTransport(url, { authProvider: provider }).finishAuth(callback.searchParams.get('code'));
    const client = new Client({ name: 'd', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
    await client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 1, b: 2 } });
    await client.close();
    const id = provider.clientInformation().client_id;
    const c = await doctor(calc, id, (x) => x.steps.some((s) => s.step === 'call'));
    assert.equal(c.client_name, 'doctor complete');
    assert.deepEqual([...new Set(c.steps.map((s) => s.step))], ['register', 'authorize', 'consent', 'token', 'call']);
    assert.equal(c.stopped_at, null, JSON.stringify(c));
    // What the app did, per grant: the call counted once the audit's batch is written.
    const deadline = Date.now() + 15000;
    let grant;
    for (;;) {
      const r = await mcpgate(['grants', 'list', '--json'], { dataDir: calc.dataDir });
      assert.equal(r.code, 0, r.stderr);
      grant = JSON.parse(r.stdout).find((g) => g.client_id === id);
      if (grant?.calls_30d?.allowed >= 1 || Date.now() > deadline) break;
      await new Promise((ok) => setTimeout(ok, 200));
    }
    assert.equal(grant.calls_30d.allowed, 1, JSON.stringify(grant));
    assert.equal(grant.calls_30d.refused, 0);
    assert.equal(grant.calls_per_day.length, 30, 'thirty days, [allowed, refused] each');
    assert.deepEqual(grant.calls_per_day.at(-1), [1, 0], 'today');
    assert.ok(grant.last_used_at > 0, 'last used');
    assert.equal(grant.expires_at, null, 'until revoked, the default');
  } finally { await cb.close(); }
});

test('a client that stops after consent stopped at "token"', async () => {
  const provider = new MemoryProvider('http://127.0.0.1:1/callback', 'doctor no exchange');
  await assert.rejects(new Client({ name: 'd', version: '1' }).connect(new StreamableHTTPClientTransport(new URL(calc.mcpUrl), { authProvider: provider })), UnauthorizedError);
  const browser = new Browser();
  browser.finish = async (x) => x; // the redirect never reaches the client
  await browser.authorize(provider.authUrls.at(-1), { username: 'admin', password: adminPassword(calc.output()) });
  const c = await doctor(calc, provider.clientInformation().client_id, (x) => x.steps.some((s) => s.step === 'consent' && s.ok));
  assert.equal(c.stopped_at, 'token', JSON.stringify(c));
});

test('a token presented to another resource stopped at "call", the audience named', async () => {
  const cb = await callbackServer();
  try {
    const provider = new MemoryProvider(cb.redirectUri, 'doctor wrong resource');
    const a = new URL(`${gw.base}/mcp/a`);
    await assert.rejects(new Client({ name: 'd', version: '1' }).connect(new StreamableHTTPClientTransport(a, { authProvider: provider })), UnauthorizedError);
    const callback = new URL(await new Browser().authorize(provider.authUrls.at(-1), { username: 'admin', password: adminPassword(gw.output()) }));
    assert.ok(callback.searchParams.get('code'), `a code: ${callback}`);
    await new StreamableHTTPClientTransport(a, { authProvider: provider }).finishAuth(callback.searchParams.get('code'));
    assert.ok(provider.tokens()?.access_token, 'a token for /mcp/a');
    const r = await fetch(`${gw.base}/mcp/b`, {
      method: 'POST',
      headers: { authorization: `Bearer ${provider.tokens().access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(r.status, 401);
    const c = await doctor(gw, provider.clientInformation().client_id, (x) => x.steps.some((s) => s.step === 'call'));
    assert.equal(c.stopped_at, 'call', JSON.stringify(c));
    const refused = c.steps.find((s) => s.step === 'call' && s.ok === false);
    assert.match(refused.detail, new RegExp(`audience: the token is for ${gw.base}/mcp/a`));
  } finally { await cb.close(); }
});
