// `mcpgate mcp --issuer <provider> --jwks` in front of a real, certified OpenID
// provider (oidc-provider, tests-e2e/fixtures/oidc/): the provider's own RS256, PS256
// and ES256 JWT access tokens (RFC 9068, issued for this resource through RFC 8707
// resource indicators) are accepted; tokens for another audience, expired, altered,
// `alg: none` and HMAC-with-the-public-key are refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMcpgate, freePort } from '../lib/server.mjs';
import {
  generateKeys, startProvider, clientCredentialsToken, decodePart, signJws, signHmac, unsigned,
} from '../lib/oidc.mjs';

let provider;
let rs;
let keys;
const secret = 'client-secret-for-tests-0123456789';
const other = 'http://127.0.0.1:9/elsewhere/mcp';
before(async () => {
  keys = generateKeys();
  const port = await freePort();
  const resource = `http://127.0.0.1:${port}/mcp`;
  const client = (id) => ({
    client_id: id, client_secret: secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  provider = await startProvider({
    keys: keys.jwks,
    clients: [client('rs256'), client('ps256'), client('es256')],
    resources: { [resource]: 'op:add op:sub op:mult op:div', [other]: 'op:add' },
    accessTokenAlgs: { rs256: 'RS256', ps256: 'PS256', es256: 'ES256' },
  });
  rs = await startMcpgate({ subcommand: 'mcp', port, args: ['--issuer', provider.issuer, '--jwks', '--jwks-min-refetch-secs', '1'] });
});
after(async () => { await rs?.stop(); await provider?.stop(); });

function call(token, op = 'add') {
  return fetch(rs.mcpUrl, {
    method: 'POST',
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'calculator', arguments: { operation: op, a: 5, b: 8 } } }),
  });
}
const token = (clientId, resource = rs.mcpUrl, scope = 'op:add op:sub') =>
  clientCredentialsToken(provider.issuer, { clientId, clientSecret: secret, resource, scope });

test('the provider\'s RS256, PS256 and ES256 access tokens for this resource are accepted, scopes enforced', async () => {
  const prm = await (await fetch(`http://127.0.0.1:${rs.port}/.well-known/oauth-protected-resource/mcp`)).json();
  assert.deepEqual(prm.authorization_servers, [provider.issuer]);
  for (const [client, alg] of [['rs256', 'RS256'], ['ps256', 'PS256'], ['es256', 'ES256']]) {
    const t = await token(client);
    const h = decodePart(t, 0);
    assert.equal(h.alg, alg, 'the provider signed with the configured algorithm');
    assert.equal(h.typ, 'at+jwt');
    assert.equal(decodePart(t, 1).aud, rs.mcpUrl);
    const ok = await call(t);
    assert.equal(ok.status, 200, `${alg}: ${await ok.clone().text()}`);
    assert.deepEqual((await ok.json()).result.structuredContent, { result: 13 });
    const denied = await call(t, 'divide');
    assert.equal(denied.status, 403, `${alg}: op:div was not granted`);
    assert.match(denied.headers.get('www-authenticate'), /error="insufficient_scope", scope="op:div"/);
  }
});

test('tokens for another audience, expired, altered, alg none or HMAC-signed with the public key are refused', async () => {
  const foreign = await token('rs256', other, 'op:add');
  assert.equal(decodePart(foreign, 1).aud, other);
  assert.equal((await call(foreign)).status, 401, 'another audience');

  const good = await token('es256');
  const header = decodePart(good, 0);
  const claims = decodePart(good, 1);
  const now = Math.floor(Date.now() / 1000);
  // Signed with the provider's own key, but expired (beyond the 30 s leeway).
  const expired = signJws(header, { ...claims, iat: now - 600, exp: now - 120 }, keys.ec.privateKey);
  assert.equal((await call(expired)).status, 401, 'expired');
  // Our forged-but-valid twin passes, so the refusals above are about the claims.
  assert.equal((await call(signJws(header, claims, keys.ec.privateKey))).status, 200, 'control: a token the key signs');
  const parts = good.split('.');
  const altered = `${parts[0]}.${Buffer.from(JSON.stringify({ ...claims, scope: 'op:add op:sub op:mult op:div' })).toString('base64url')}.${parts[2]}`;
  assert.equal((await call(altered)).status, 401, 'altered payload');
  assert.equal((await call(good.slice(0, -2) + (good.endsWith('AA') ? 'BB' : 'AA'))).status, 401, 'altered signature');
  assert.equal((await call(unsigned({ ...header, alg: 'none' }, claims))).status, 401, 'alg none');
  assert.equal((await call(unsigned({ alg: 'none', typ: 'at+jwt' }, claims))).status, 401, 'alg none without kid');
  // HS256 with the public key as the HMAC secret, in the forms an attacker would try.
  const rsaHeader = { alg: 'HS256', typ: 'at+jwt', kid: keys.rsa.jwk.kid };
  const ecHeader = { alg: 'HS256', typ: 'at+jwt', kid: keys.ec.jwk.kid };
  const pubJwk = (k) => { const { d, p, q, dp, dq, qi, ...pub } = k; return pub; };
  for (const [h, secretKey] of [
    [rsaHeader, keys.rsa.publicKey.export({ type: 'spki', format: 'pem' })],
    [rsaHeader, keys.rsa.publicKey.export({ type: 'pkcs1', format: 'pem' })],
    [rsaHeader, JSON.stringify(pubJwk(keys.rsa.jwk))],
    [ecHeader, keys.ec.publicKey.export({ type: 'spki', format: 'pem' })],
    [ecHeader, JSON.stringify(pubJwk(keys.ec.jwk))],
  ]) {
    assert.equal((await call(signHmac(h, claims, secretKey))).status, 401, 'HMAC with the public key');
  }
  // An access token from the provider with no typ at+jwt (an ID-token-like JWT) is refused
  // unless --accept-jwt-typ is given.
  const plain = signJws({ ...header, typ: 'JWT' }, claims, keys.ec.privateKey);
  assert.equal((await call(plain)).status, 401, 'typ JWT refused by default');
});

test('--accept-jwt-typ admits typ JWT; --audience and --audience-claim name another resource claim', async () => {
  const port = await freePort();
  const lenient = await startMcpgate({ subcommand: 'mcp', port, args: ['--issuer', provider.issuer, '--jwks', '--accept-jwt-typ', '--audience', 'api://calculator', '--audience-claim', 'resource'] });
  try {
    const good = await token('es256');
    const header = decodePart(good, 0);
    const claims = decodePart(good, 1);
    const callAt = (t) => fetch(lenient.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'calculator', arguments: { operation: 'add', a: 1, b: 2 } } }),
    });
    const plain = signJws({ ...header, typ: 'JWT' }, { ...claims, resource: 'api://calculator' }, keys.ec.privateKey);
    assert.equal((await callAt(plain)).status, 200, 'typ JWT with the configured resource claim');
    const wrong = signJws({ ...header, typ: 'JWT' }, { ...claims, resource: 'api://other' }, keys.ec.privateKey);
    assert.equal((await callAt(wrong)).status, 401, 'another value of the resource claim');
    const idType = signJws({ ...header, typ: 'logout+jwt' }, { ...claims, resource: 'api://calculator' }, keys.ec.privateKey);
    assert.equal((await callAt(idType)).status, 401, 'other JWT types stay refused');
  } finally { await lenient.stop(); }
});
