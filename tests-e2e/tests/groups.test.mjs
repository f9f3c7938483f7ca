// Who may hold which scope, with the official TypeScript SDK client: op:div is
// restricted to the group finance; alice is in it, bob is not. Alice divides (200),
// bob gets the step-up 403 even though his browser asked for op:div; once the operator
// removes alice from the group (the command line, another process), her token is
// refused within the revocation push and her refreshed token lacks op:div while add
// keeps working.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { startMcpgate, mcpgate } from '../lib/server.mjs';
import { Browser } from '../lib/browser.mjs';
import { callbackServer, MemoryProvider } from '../lib/oauth.mjs';

const PASSWORD = 'a-long-enough-password-1';
let server;

async function cli(...args) {
  const r = await mcpgate(args, { dataDir: server.dataDir, input: PASSWORD });
  assert.equal(r.code, 0, `mcpgate ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function rawCall(token, op) {
  return fetch(server.mcpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'calculator', arguments: { operation: op, a: 6, b: 3 } } }),
  });
}

/** The SDK's whole flow for `username`, whose browser asks to keep add and divide. */
async function connect(username, cb) {
  const provider = new MemoryProvider(cb.redirectUri, `groups ${username}`);
  const url = new URL(server.mcpUrl);
  await assert.rejects(new Client({ name: 'groups', version: '1' }).connect(new StreamableHTTPClientTransport(url, { authProvider: provider })), UnauthorizedError);
  const callback = new URL(await new Browser().authorize(provider.authUrls.at(-1), { username, password: PASSWORD, approve: ['op:add', 'op:div'] }));
  await new StreamableHTTPClientTransport(url, { authProvider: provider }).finishAuth(callback.searchParams.get('code'));
  const client = new Client({ name: 'groups', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
  return { provider, client, url };
}

before(async () => {
  server = await startMcpgate();
  await cli('user', 'add', 'alice', '--password-stdin');
  await cli('user', 'add', 'bob', '--password-stdin');
  await cli('group', 'add', 'finance', '--description', 'May divide');
  await cli('group', 'member', 'add', 'finance', 'alice');
  await cli('scope', 'add', 'op:div', '--group', 'finance');
  const scopes = JSON.parse(await cli('scope', 'list', '--json'));
  assert.deepEqual(scopes.find((s) => s.name === 'op:div').groups, ['finance']);
});
after(async () => { await server?.stop(); });

test('a member divides, a non-member is refused, and removal takes effect at once', async () => {
  const cb = await callbackServer();
  try {
    const alice = await connect('alice', cb);
    const bob = await connect('bob', cb);
    assert.match(alice.provider.tokens().scope, /op:div/);
    assert.equal(bob.provider.tokens().scope, 'op:add', 'op:div was withheld from bob, the rest granted');

    const q = await alice.client.callTool({ name: 'calculator', arguments: { operation: 'divide', a: 6, b: 3 } });
    assert.deepEqual(q.structuredContent, { result: 2 });
    await assert.rejects(bob.client.callTool({ name: 'calculator', arguments: { operation: 'divide', a: 6, b: 3 } }), /403/);
    const r = await rawCall(bob.provider.tokens().access_token, 'divide');
    assert.equal(r.status, 403);
    assert.match(r.headers.get('www-authenticate'), /insufficient_scope/);

    const aliceToken = alice.provider.tokens().access_token;
    const out = await cli('group', 'member', 'remove', 'finance', 'alice');
    assert.match(out, /removed/);
    // The revocation reaches the running server (a local notification, else its poll).
    const deadline = Date.now() + 15000;
    let status;
    while ((status = (await rawCall(aliceToken, 'add')).status) !== 401 && Date.now() < deadline) {
      await new Promise((ok) => setTimeout(ok, 50));
    }
    assert.equal(status, 401, 'the token that carried op:div is refused');

    assert.equal(await auth(alice.provider, { serverUrl: alice.url }), 'AUTHORIZED', 'the refresh token still works');
    assert.equal(alice.provider.tokens().scope, 'op:add', 'the refreshed token lacks op:div');
    const client = new Client({ name: 'groups', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(alice.url, { authProvider: alice.provider }));
    const s = await client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 6, b: 3 } });
    assert.deepEqual(s.structuredContent, { result: 9 });
    assert.equal((await rawCall(alice.provider.tokens().access_token, 'divide')).status, 403);
    await Promise.all([alice.client.close(), bob.client.close(), client.close()].map((p) => p.catch(() => {})));
  } finally { await cb.close(); }
});

// The same rule for an upstream's scopes declared in the configuration file: `groups`
// on a scope restricts it there, and the gateway's per-tool policy holds it.
test('an upstream scope restricted to a group in the configuration reaches its members only, through the gateway', async () => {
  const { startEverythingHttp } = await import('../lib/gateway.mjs');
  const { obtainTokens } = await import('../lib/flow.mjs');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const upstream = await startEverythingHttp();
  const config = join(mkdtempSync(join(tmpdir(), 'mcpgate-groups-gw-')), 'mcpgate.toml');
  writeFileSync(config, `
[[upstream]]
name = "everything"
url = "${upstream.url}"
scopes = [{ name = "ev:echo", description = "Echo" },
          { name = "ev:tools", description = "Every other tool", groups = ["editors"] }]
tools = [{ name = "echo", scope = "ev:echo" }, { name = "*", scope = "ev:tools" }]
`);
  const gw = await startMcpgate({ args: ['--config', config] });
  try {
    const run = async (...args) => {
      const r = await mcpgate(args, { dataDir: gw.dataDir, input: PASSWORD, env: { MCPGATE_CONFIG: config } });
      assert.equal(r.code, 0, `mcpgate ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    await run('user', 'add', 'eve', '--password-stdin');
    await run('user', 'add', 'mallory', '--password-stdin');
    await run('group', 'member', 'add', 'editors', 'eve');
    const listed = JSON.parse(await run('scope', 'list', '--json'));
    assert.deepEqual(listed.find((s) => s.name === 'ev:tools').groups, ['editors'], 'the configuration restricted it');
    const url = `${gw.base}/mcp/everything`;
    const eve = await obtainTokens(gw, PASSWORD, { username: 'eve', resource: url });
    const mallory = await obtainTokens(gw, PASSWORD, { username: 'mallory', resource: url });
    assert.deepEqual(eve.scope.split(' ').sort(), ['ev:echo', 'ev:tools']);
    assert.equal(mallory.scope, 'ev:echo', 'withheld from a non-member, the rest granted');
    const connect = async (token) => {
      const c = new Client({ name: 'groups-gw', version: '1' });
      await c.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      return c;
    };
    const [e, m] = [await connect(eve.access_token), await connect(mallory.access_token)];
    const sum = await e.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
    assert.match(JSON.stringify(sum.content), /5/);
    await assert.rejects(m.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } }), /insufficient_scope/);
    const echo = await m.callTool({ name: 'echo', arguments: { message: 'hi' } });
    assert.match(JSON.stringify(echo.content), /hi/);
    await Promise.all([e.close(), m.close()].map((p) => p.catch(() => {})));
  } finally { await gw.stop(); await upstream.stop(); }
});
