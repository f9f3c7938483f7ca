// The original topology: the MCP server (`mcpgate mcp`) and the authorization server
// (`mcpgate serve`) are separate processes. The resource server validates tokens by
// RFC 7662 introspection with its own credentials (made with the admin CLI while the
// authorization server runs), or as JWTs against the issuer's JWKS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMcpgate, freePort, mcpgate } from '../lib/server.mjs';
import { adminPassword } from '../lib/browser.mjs';
import { obtainTokens } from '../lib/flow.mjs';

let as;
let password;
const rsPorts = {};
before(async () => {
  rsPorts.introspection = await freePort();
  rsPorts.jwks = await freePort();
  as = await startMcpgate({ args: ['--resource', `http://127.0.0.1:${rsPorts.introspection}/mcp`, '--resource', `http://127.0.0.1:${rsPorts.jwks}/mcp`] });
  password = adminPassword(as.output());
});
after(async () => { await as?.stop(); });

function call(url, token, op = 'add') {
  return fetch(url, {
    method: 'POST',
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'calculator', arguments: { operation: op, a: 5, b: 8 } } }),
  });
}

test('introspection mode: accepts, refuses scope, sees revocation, refuses foreign audience', async () => {
  const add = await mcpgate(['client', 'add', '--name', 'calculator RS', '--introspection', '--json'], { dataDir: as.dataDir });
  assert.equal(add.code, 0, add.stderr);
  const creds = JSON.parse(add.stdout);
  assert.ok(creds.client_secret);
  const port = rsPorts.introspection;
  const rs = await startMcpgate({ subcommand: 'mcp', port, args: ['--issuer', as.base, '--introspection-client-id', creds.client_id,
    '--introspection-client-secret', creds.client_secret, '--introspection-cache-secs', '0'] });
  try {
    // discovery from the resource server alone
    const challenge = await call(rs.mcpUrl);
    assert.equal(challenge.status, 401);
    assert.match(challenge.headers.get('www-authenticate'), new RegExp(`resource_metadata="http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp"`));
    const prm = await (await fetch(`http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp`)).json();
    assert.deepEqual(prm.authorization_servers, [as.base]);
    assert.equal(prm.resource, rs.mcpUrl);

    const tok = await obtainTokens(as, password, { resource: rs.mcpUrl, approve: ['op:add'] });
    const ok = await call(rs.mcpUrl, tok.access_token);
    assert.equal(ok.status, 200);
    assert.deepEqual((await ok.json()).result.structuredContent, { result: 13 });
    const denied = await call(rs.mcpUrl, tok.access_token, 'divide');
    assert.equal(denied.status, 403);
    assert.match(denied.headers.get('www-authenticate'), /error="insufficient_scope", scope="op:div"/);
    assert.equal((await call(rs.mcpUrl, 'garbage')).status, 401);
    // a token for the authorization server's own resource is not for this one
    const foreign = await obtainTokens(as, password);
    assert.equal((await call(rs.mcpUrl, foreign.access_token)).status, 401, 'wrong audience');
    // revoked at the authorization server: refused at once (cache off)
    const r = await fetch(`${as.base}/revoke`, { method: 'POST', body: new URLSearchParams({ token: tok.refresh_token, client_id: tok.client_id }) });
    assert.equal(r.status, 200);
    assert.equal((await call(rs.mcpUrl, tok.access_token)).status, 401, 'revoked');
  } finally { await rs.stop(); }
});

test('JWKS mode: verifies tokens against the issuer keys, picks up a rotated key', async () => {
  const port = rsPorts.jwks;
  const rs = await startMcpgate({ subcommand: 'mcp', port, args: ['--issuer', as.base, '--jwks', '--jwks-min-refetch-secs', '1'] });
  try {
    const tok = await obtainTokens(as, password, { resource: rs.mcpUrl });
    assert.equal((await call(rs.mcpUrl, tok.access_token)).status, 200);
    assert.equal((await call(rs.mcpUrl, tok.access_token + 'x')).status, 401);
    // rotate the signing key with the CLI while both servers run
    const rot = await mcpgate(['keys', 'rotate'], { dataDir: as.dataDir });
    assert.equal(rot.code, 0, rot.stderr);
    await new Promise((r) => setTimeout(r, 2500)); // the authorization server's sync period
    const fresh = await obtainTokens(as, password, { resource: rs.mcpUrl });
    const header = JSON.parse(Buffer.from(fresh.access_token.split('.')[0], 'base64url'));
    const oldHeader = JSON.parse(Buffer.from(tok.access_token.split('.')[0], 'base64url'));
    assert.notEqual(header.kid, oldHeader.kid, 'signed with the new key');
    assert.equal((await call(rs.mcpUrl, fresh.access_token)).status, 200, 'unknown kid: JWKS refetched');
    assert.equal((await call(rs.mcpUrl, tok.access_token)).status, 200, 'the previous key still verifies');
  } finally { await rs.stop(); }
});
