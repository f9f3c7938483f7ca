// The whole MCP authorization flow with the official TypeScript SDK clients:
// 401 → metadata → registration → authorize → login → consent → token →
// calculator add 5 8 = 13 → 403 insufficient_scope → refresh → revocation → 401.
// v1 (@modelcontextprotocol/sdk) speaks 2025-11-25, v2 (@modelcontextprotocol/client)
// 2026-07-28.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { auth as authV1, UnauthorizedError as UnauthorizedV1 } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2, UnauthorizedError as UnauthorizedV2 } from '@modelcontextprotocol/client';
import { startMcpgate, freePort } from '../lib/server.mjs';
import { Browser, adminPassword } from '../lib/browser.mjs';
import { callbackServer, MemoryProvider } from '../lib/oauth.mjs';

let server;
let password;

async function rawCall(token, op = 'add') {
  return fetch(server.mcpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'calculator', arguments: { operation: op, a: 5, b: 8 } } }),
  });
}

async function revoke(provider) {
  const r = await fetch(`${server.base}/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: provider.tokens().refresh_token, client_id: provider.clientInformation().client_id }),
  });
  assert.equal(r.status, 200);
}

// The same flows with an issuer at the origin and with one that carries a path
// (https://auth.example.com/oauth/2.1): discovery, pages and redirects follow the path.
for (const path of ['', '/oauth/2.1']) {
describe(path ? `issuer with a path (${path})` : 'issuer at the origin', () => {
  before(async () => {
    const port = await freePort();
    server = await startMcpgate({ port, publicUrl: `http://127.0.0.1:${port}${path}` });
    password = adminPassword(server.output());
  });
  after(async () => { await server?.stop(); });

  test('v1 SDK (2025-11-25): full OAuth flow, step-up refusal, refresh, revocation', async () => {
    const cb = await callbackServer();
    try {
      const provider = new MemoryProvider(cb.redirectUri, 'e2e v1');
      const url = new URL(server.mcpUrl);
      await assert.rejects(new ClientV1({ name: 'e2e-v1', version: '1' }).connect(new TransportV1(url, { authProvider: provider })), UnauthorizedV1);
      assert.ok(provider.clientInformation()?.client_id, 'registered dynamically');
      const authUrl = new URL(provider.authUrls.at(-1));
      assert.equal(authUrl.searchParams.get('resource'), server.mcpUrl, 'RFC 8707 resource is the MCP URL');
      assert.equal(authUrl.searchParams.get('code_challenge_method'), 'S256');
      const callback = new URL(await new Browser().authorize(authUrl.toString(), { username: 'admin', password, approve: ['op:add'] }));
      assert.equal(callback.searchParams.get('iss'), server.base, 'RFC 9207 iss');
      const transport = new TransportV1(url, { authProvider: provider });
      await transport.finishAuth(callback.searchParams.get('code'));
      assert.equal(provider.tokens().scope, 'op:add', 'the person granted only op:add');

      const client = new ClientV1({ name: 'e2e-v1', version: '1' });
      await client.connect(new TransportV1(url, { authProvider: provider }));
      const r = await client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 5, b: 8 } });
      assert.deepEqual(r.structuredContent, { result: 13 });
      await assert.rejects(client.callTool({ name: 'calculator', arguments: { operation: 'divide', a: 1, b: 2 } }), /403/);

      const before = provider.tokens();
      assert.equal(await authV1(provider, { serverUrl: url }), 'AUTHORIZED', 'refreshed without a browser');
      assert.notEqual(provider.tokens().access_token, before.access_token);
      assert.notEqual(provider.tokens().refresh_token, before.refresh_token, 'refresh tokens rotate');
      assert.equal((await rawCall(before.refresh_token)).status, 401, 'a refresh token is not an access token');
      const again = await client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 1, b: 1 } });
      assert.deepEqual(again.structuredContent, { result: 2 });

      const access = provider.tokens().access_token;
      await revoke(provider);
      assert.equal((await rawCall(access)).status, 401, 'revoked: the next call is refused');
      await assert.rejects(client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 1, b: 1 } }));
      await client.close().catch(() => {});
    } finally { await cb.close(); }
  });

  test('v2 SDK (2026-07-28): full OAuth flow, step-up refusal, revocation', async () => {
    const cb = await callbackServer();
    try {
      const provider = new MemoryProvider(cb.redirectUri, 'e2e v2');
      const url = new URL(server.mcpUrl);
      const opts = { versionNegotiation: { mode: 'auto' } };
      await assert.rejects(new ClientV2({ name: 'e2e-v2', version: '2' }, opts).connect(new TransportV2(url, { authProvider: provider })), UnauthorizedV2);
      const authUrl = new URL(provider.authUrls.at(-1));
      assert.equal(authUrl.searchParams.get('resource'), server.mcpUrl);
      const callback = new URL(await new Browser().authorize(authUrl.toString(), { username: 'admin', password, approve: ['op:add', 'op:mult'] }));
      const transport = new TransportV2(url, { authProvider: provider });
      await transport.finishAuth(callback.searchParams); // validates iss (RFC 9207)

      const client = new ClientV2({ name: 'e2e-v2', version: '2' }, opts);
      const t2 = new TransportV2(url, { authProvider: provider });
      await client.connect(t2);
      assert.equal(t2.protocolVersion, '2026-07-28');
      const r = await client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 5, b: 8 } });
      assert.deepEqual(r.structuredContent, { result: 13 });
      const m = await client.callTool({ name: 'calculator', arguments: { operation: 'multiply', a: 6, b: 7 } });
      assert.deepEqual(m.structuredContent, { result: 42 });
      await assert.rejects(client.callTool({ name: 'calculator', arguments: { operation: 'subtract', a: 1, b: 2 } }));

      const access = provider.tokens().access_token;
      await revoke(provider);
      assert.equal((await rawCall(access)).status, 401);
      await client.close().catch(() => {});
    } finally { await cb.close(); }
  });
});
}
