// Several instances behind one URL: two `mcpgate serve` processes sharing one
// PostgreSQL database, behind a balancer. Needs TEST_DATABASE_URL (the test command
// sets it when PostgreSQL runs, or says loudly that it could not).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID, generateKeyPairSync, createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMcpgate, freePort, mcpgate } from '../lib/server.mjs';
import { startBalancer } from '../lib/balancer.mjs';
import { obtainTokens } from '../lib/flow.mjs';
import { signJws } from '../lib/oidc.mjs';

const PG = process.env.TEST_DATABASE_URL;
// Under CI a missing database fails rather than skipping: these tests must not pass vacuously.
if (!PG && process.env.CI) throw new Error('CI is set but TEST_DATABASE_URL is not: the PostgreSQL tests cannot run');
const skip = PG ? false : 'SKIPPED: TEST_DATABASE_URL is not set (no PostgreSQL)';
const KEK = randomBytes(32).toString('hex');
let a; let b; let lb; let dbUrl; let password; let pub;

before(async () => {
  if (!PG) return;
  const name = `mcpgate_e2e_${randomBytes(6).toString('hex')}`;
  execFileSync('psql', [PG, '-qc', `CREATE DATABASE ${name}`]);
  dbUrl = `${PG.slice(0, PG.lastIndexOf('/'))}/${name}`;
  const port = await freePort();
  pub = { base: `http://127.0.0.1:${port}`, mcpUrl: `http://127.0.0.1:${port}/mcp` };
  // One key-encryption key for every instance and the CLI: it seals the signing keys
  // in the shared database.
  const common = { publicUrl: pub.base, args: ['--database', dbUrl], env: { MCPGATE_KEY_ENCRYPTION_KEY: KEK } };
  [a, b] = await Promise.all([startMcpgate(common), startMcpgate(common)]);
  password = (/password: (\S+)/.exec(a.output() + b.output()) || [])[1];
  assert.ok(password, 'exactly one instance printed the first-run password');
  assert.ok(!(/password: /.test(a.output()) && /password: /.test(b.output())), 'never printed twice');
  lb = await startBalancer(port, { a: a.port, b: b.port });
});
after(async () => { await lb?.close(); await a?.stop(); await b?.stop(); });

const via = (name) => ({ 'x-mcpgate-backend': name });
async function call(token, backend) {
  return fetch(pub.mcpUrl, {
    method: 'POST',
    headers: { ...via(backend), authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'calculator', arguments: { operation: 'add', a: 5, b: 8 } } }),
  });
}
async function refresh(tok, backend) {
  const r = await fetch(`${pub.base}/token`, { method: 'POST', headers: via(backend),
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tok.refresh_token, client_id: tok.client_id }) });
  return { status: r.status, body: await r.json() };
}
async function eventually(f, ms = 6000) {
  const end = Date.now() + ms;
  for (;;) { if (await f()) return true; if (Date.now() > end) return false; await new Promise((r) => setTimeout(r, 100)); }
}

test('registered on A, authorized on B; a code issued by one instance is redeemed on the other', { skip }, async () => {
  const t1 = await obtainTokens(pub, password, { via: { register: 'a', browser: 'b', token: 'a' } });
  const t2 = await obtainTokens(pub, password, { via: { register: 'b', browser: 'a', token: 'b' } });
  for (const t of [t1, t2]) for (const backend of ['a', 'b']) assert.equal((await call(t.access_token, backend)).status, 200);
});

test('racing refreshes on A and B follow the rotation rules: one answer, one live family', { skip }, async () => {
  const tok = await obtainTokens(pub, password);
  const [ra, rb] = await Promise.all([refresh(tok, 'a'), refresh(tok, 'b')]);
  assert.equal(ra.status, 200, JSON.stringify(ra.body));
  assert.equal(rb.status, 200, JSON.stringify(rb.body));
  assert.equal(ra.body.refresh_token, rb.body.refresh_token, 'the duplicate got the grace answer, not a second family');
  const next = await refresh({ ...tok, refresh_token: ra.body.refresh_token }, 'b');
  assert.equal(next.status, 200);
});

test('a grant revoked on B ends the token on A', { skip }, async () => {
  const tok = await obtainTokens(pub, password);
  assert.equal((await call(tok.access_token, 'a')).status, 200);
  const r = await fetch(`${pub.base}/revoke`, { method: 'POST', headers: via('b'), body: new URLSearchParams({ token: tok.refresh_token, client_id: tok.client_id }) });
  assert.equal(r.status, 200);
  assert.ok(await eventually(async () => (await call(tok.access_token, 'a')).status === 401), 'A refuses the token within its sync period');
});

test('a key rotated through A verifies on B', { skip }, async () => {
  const before = await obtainTokens(pub, password, { via: { token: 'a' } });
  const rot = await mcpgate(['keys', 'rotate', '--database', dbUrl], { env: { MCPGATE_KEY_ENCRYPTION_KEY: KEK } });
  assert.equal(rot.code, 0, rot.stderr);
  const kid = (t) => JSON.parse(Buffer.from(t.split('.')[0], 'base64url')).kid;
  let fresh;
  assert.ok(await eventually(async () => { fresh = await obtainTokens(pub, password, { via: { token: 'a' } }); return kid(fresh.access_token) !== kid(before.access_token); }));
  assert.ok(await eventually(async () => (await call(fresh.access_token, 'b')).status === 200), 'B verifies the new key');
  assert.equal((await call(before.access_token, 'b')).status, 200, 'the previous key still verifies');
});

test('the shared database holds the signing keys sealed, and a CLI without the key is refused', { skip }, async () => {
  const clear = execFileSync('psql', [dbUrl, '-tAc', "SELECT count(*) FROM signing_keys WHERE seed NOT LIKE 'sealed:v1:%'"]).toString().trim();
  assert.equal(clear, '0');
  const r = await mcpgate(['keys', 'list', '--database', dbUrl], { env: { MCPGATE_KEY_ENCRYPTION_KEY: '' } });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /not configured/);
});

/** An ES256 key pair: { privateKey, jwk (public, with kid) }. */
function ecKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid: randomUUID().slice(0, 8), alg: 'ES256', use: 'sig' } };
}

test('a jti is spent on every instance: a client assertion, an ID-JAG and a DPoP proof used on A are refused on B', { skip }, async () => {
  const env = { MCPGATE_KEY_ENCRYPTION_KEY: KEK, MCPGATE_PUBLIC_URL: pub.base };
  const cli = async (...args) => {
    const r = await mcpgate([...args, '--database', dbUrl], { env });
    assert.equal(r.code, 0, `mcpgate ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const issuer = (await (await fetch(`${pub.base}/.well-known/oauth-authorization-server`)).json()).issuer;
  const token = async (backend, params, headers = {}) => {
    const r = await fetch(`${pub.base}/token`, { method: 'POST', headers: { ...via(backend), ...headers }, body: new URLSearchParams(params) });
    return { status: r.status, body: await r.json() };
  };
  const now = () => Math.floor(Date.now() / 1000);

  // A machine authenticating with private_key_jwt.
  const signer = ecKey();
  const jwksFile = join(a.dataDir, 'machine-jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [signer.jwk] }));
  const m = JSON.parse(await cli('client', 'add', '--name', 'replayed robot', '--machine', '--scope', 'op:add',
    '--resource', pub.mcpUrl, '--jwks-file', jwksFile, '--json'));
  const assertion = signJws({ alg: 'ES256', typ: 'JWT', kid: signer.jwk.kid },
    { iss: m.client_id, sub: m.client_id, aud: issuer, iat: now(), exp: now() + 300, jti: randomUUID() }, signer.privateKey);
  const byAssertion = { grant_type: 'client_credentials', resource: pub.mcpUrl,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion };
  assert.equal((await token('a', byAssertion)).status, 200);
  const again = await token('b', byAssertion);
  assert.equal(again.status, 401, JSON.stringify(again.body));
  assert.equal(again.body.error, 'invalid_client');

  // An ID-JAG from a trusted organisation, for a confidential client.
  const org = ecKey();
  const http = createServer((req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [org.jwk] })));
  await new Promise((ok) => http.listen(0, '127.0.0.1', ok));
  try {
    const orgIssuer = `http://127.0.0.1:${http.address().port}`;
    await cli('idp', 'trust', 'corp', '--issuer', orgIssuer, '--jwks-uri', `${orgIssuer}/jwks`, '--allowed-domain', 'example.com', '--auto-create');
    const agent = JSON.parse(await cli('client', 'add', '--name', 'agent', '--confidential', '--json'));
    const jag = signJws({ alg: 'ES256', typ: 'oauth-id-jag+jwt', kid: org.jwk.kid }, {
      iss: orgIssuer, sub: 'p-1', aud: issuer, client_id: agent.client_id, resource: pub.mcpUrl, scope: 'op:add',
      jti: randomUUID(), iat: now(), exp: now() + 300, email: 'carol@example.com', email_verified: true }, org.privateKey);
    const basicAgent = { authorization: `Basic ${Buffer.from(`${agent.client_id}:${agent.client_secret}`).toString('base64')}` };
    const jwtBearer = { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: jag };
    const first = await token('a', jwtBearer, basicAgent);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const replay = await token('b', jwtBearer, basicAgent);
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error, 'invalid_grant');
  } finally { http.closeAllConnections(); http.close(); }

  // A DPoP-bound token; one proof used at A's MCP endpoint is refused at B's.
  const holder = ecKey();
  const proof = (htm, htu, extra = {}) => signJws({ typ: 'dpop+jwt', alg: 'ES256', jwk: (({ kty, crv, x, y }) => ({ kty, crv, x, y }))(holder.jwk) },
    { htm, htu, iat: now(), jti: randomUUID(), ...extra }, holder.privateKey);
  const fresh = signJws({ alg: 'ES256', typ: 'JWT', kid: signer.jwk.kid },
    { iss: m.client_id, sub: m.client_id, aud: issuer, iat: now(), exp: now() + 300, jti: randomUUID() }, signer.privateKey);
  const bound = await token('a', { ...byAssertion, client_assertion: fresh }, { dpop: proof('POST', `${pub.base}/token`) });
  assert.equal(bound.status, 200, JSON.stringify(bound.body));
  assert.equal(bound.body.token_type, 'DPoP');
  const ath = createHash('sha256').update(bound.body.access_token).digest('base64url');
  const callProof = proof('POST', pub.mcpUrl, { ath });
  const dpopCall = (backend) => fetch(pub.mcpUrl, {
    method: 'POST',
    headers: { ...via(backend), authorization: `DPoP ${bound.body.access_token}`, dpop: callProof, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'calculator', arguments: { operation: 'add', a: 5, b: 8 } } }),
  });
  assert.equal((await dpopCall('a')).status, 200);
  const replayed = await dpopCall('b');
  assert.equal(replayed.status, 401);
  assert.match(replayed.headers.get('www-authenticate'), /^DPoP .*error="invalid_dpop_proof"/);
});

test('SIGKILL of an instance under refresh load loses no acknowledged token', { skip }, async () => {
  const chains = await Promise.all(Array.from({ length: 6 }, () => obtainTokens(pub, password)));
  let stop = false;
  const acknowledged = chains.map((c) => ({ ...c }));
  const loops = chains.map(async (_, i) => {
    while (!stop) {
      try {
        const r = await refresh(acknowledged[i], 'a');
        if (r.status === 200) acknowledged[i] = { ...acknowledged[i], ...r.body };
      } catch { /* the instance died mid-request: nothing was acknowledged */ }
    }
  });
  await new Promise((r) => setTimeout(r, 800));
  a.child.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  stop = true;
  await Promise.all(loops);
  acknowledged.forEach((t, i) => assert.notEqual(t.refresh_token, chains[i].refresh_token, 'the load ran: each chain rotated'));
  for (const t of acknowledged) {
    assert.equal((await call(t.access_token, 'b')).status, 200, 'every access token handed out still works');
    const r = await refresh(t, 'b');
    assert.equal(r.status, 200, `every acknowledged refresh token still refreshes: ${JSON.stringify(r.body)}`);
  }
  const live = execFileSync('psql', [dbUrl, '-qAtc', "SELECT count(*) FROM token_families WHERE revoked_at IS NOT NULL"]).toString().trim();
  assert.equal(live, '1', 'only the family revoked by the earlier test; no reuse was detected');
});
