// Machines and enterprises with the official TypeScript SDK client (v2): a machine
// registered by the operator gets tokens with client_credentials, authenticating with
// a secret or with a key (private_key_jwt, RFC 7523), for its own scopes and resources
// and with no refresh token; a client presents an organisation's ID-JAG
// (jwt-bearer grant) and acts as the person it names; DPoP (RFC 9449) binds tokens to
// the client's key, with and without server nonces. Each feature runs through the
// SDK's own providers, and every refusal is checked on the wire.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Client, StreamableHTTPClientTransport, ClientCredentialsProvider, PrivateKeyJwtProvider,
  CrossAppAccessProvider, DpopSession,
} from '@modelcontextprotocol/client';
import { startMcpgate, mcpgate } from '../lib/server.mjs';
import { startEverythingHttp } from '../lib/gateway.mjs';
import { signJws, generateKeys, decodePart } from '../lib/oidc.mjs';

const ALL = ['op:add', 'op:div', 'op:mult', 'op:sub'];
const CLIENT_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const SDK_OPTIONS = { versionNegotiation: { mode: 'auto' } };

let server;   // the file's server
let nonced;   // a second one, started with --dpop-nonces
let issuer;   // the server's `issuer` (its metadata)
let corp;     // the trusted organisation: its JWKS server, key and issuer
const machines = {};

const now = () => Math.floor(Date.now() / 1000);

/** Runs an `mcpgate` command against `srv`'s data directory; its stdout, parsed when JSON. */
async function cli(srv, ...args) {
  const r = await mcpgate(args, { dataDir: srv.dataDir, env: { MCPGATE_PUBLIC_URL: srv.base } });
  assert.equal(r.code, 0, `mcpgate ${args.join(' ')}: ${r.stderr.split('\n')[0]}`);
  try { return JSON.parse(r.stdout); } catch { return r.stdout; }
}

/** `client add --machine` for `scopes` on `srv`'s MCP endpoint: { client_id, client_secret }. */
function addMachine(srv, name, scopes, extra = []) {
  return cli(srv, 'client', 'add', '--name', name, '--machine',
    ...scopes.flatMap((s) => ['--scope', s]), '--resource', srv.mcpUrl, ...extra, '--json');
}

const basic = (id, secret) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });

/** POST /token; { status, headers, body }. */
async function tokenRequest(srv, params, headers = {}) {
  const r = await fetch(`${srv.base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params),
  });
  return { status: r.status, headers: r.headers, body: await r.json().catch(() => null) };
}

/** A calculator call at `url` with the headers given (no initialize: /mcp is stateless). */
function mcpCall(url, { authorization, dpop, op = 'add', a = 5, b = 8 } = {}) {
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
  if (authorization) headers.authorization = authorization;
  if (dpop) headers.dpop = dpop;
  return fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'calculator', arguments: { operation: op, a, b } } }),
  });
}

async function connect(srv, authProvider, fetchImpl) {
  const client = new Client({ name: 'machines', version: '1' }, SDK_OPTIONS);
  await client.connect(new StreamableHTTPClientTransport(new URL(srv.mcpUrl), { authProvider, ...(fetchImpl ? { fetch: fetchImpl } : {}) }));
  return client;
}

/** A fetch that records each request's method, path and answer's status (and error). */
function recordingFetch() {
  const seen = [];
  const f = async (input, init) => {
    const r = await fetch(input, init);
    const entry = { method: init?.method ?? 'GET', path: new URL(String(input)).pathname, status: r.status };
    if (r.status === 400 || r.status === 401) {
      entry.challenge = r.headers.get('www-authenticate');
      entry.error = await r.clone().json().then((b) => b?.error, () => undefined);
    }
    seen.push(entry);
    return r;
  };
  return { fetch: f, seen };
}

/** A client_credentials provider that binds its tokens to a DPoP key. */
class DpopCredentialsProvider extends ClientCredentialsProvider {
  #session = DpopSession.create();
  dpop() { return this.#session; }
}

/** A private_key_jwt client assertion signed with `key` (RFC 7523 §3). */
function clientAssertion(clientId, key, kid, claims = {}) {
  const t = now();
  return signJws({ alg: 'ES256', typ: 'JWT', kid },
    { iss: clientId, sub: clientId, aud: issuer, iat: t, exp: t + 300, jti: randomUUID(), ...claims }, key);
}

/** An ID-JAG from the organisation (or another signer), for the agent client by default. */
function idJag(claims = {}, { key = corp.key, kid = corp.kid, typ = 'oauth-id-jag+jwt' } = {}) {
  const t = now();
  return signJws({ alg: 'ES256', typ, kid }, {
    iss: corp.issuer, sub: 'corp-person-1', aud: issuer, client_id: machines.agent.client_id,
    resource: server.mcpUrl, scope: 'op:add op:mult', jti: randomUUID(), iat: t, exp: t + 300,
    email: 'alice@example.com', email_verified: true, ...claims,
  }, key);
}

/** Serves `jwks` at /jwks on a loopback port, and a set that cannot be had at
 * /unavailable (503): { issuer, jwksUri, close() }. */
async function jwksServer(jwks) {
  const http = createServer((req, res) => {
    if (req.url === '/unavailable') { res.writeHead(503).end(); return; }
    if (req.url !== '/jwks') { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
  });
  await new Promise((ok) => http.listen(0, '127.0.0.1', ok));
  const base = `http://127.0.0.1:${http.address().port}`;
  return { issuer: base, jwksUri: `${base}/jwks`, close: () => new Promise((ok) => { http.closeAllConnections(); http.close(ok); }) };
}

const publicJwk = ({ kty, crv, x, y, kid, alg, use }) => ({ kty, crv, x, y, kid, alg, use });

before(async () => {
  [server, nonced] = await Promise.all([startMcpgate(), startMcpgate({ args: ['--dpop-nonces'] })]);
  issuer = (await (await fetch(`${server.base}/.well-known/oauth-authorization-server`)).json()).issuer;

  const signer = generateKeys().ec;
  const jwksFile = join(server.dataDir, 'signer-jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [publicJwk(signer.jwk)] }));

  const orgKeys = generateKeys().ec;
  const jwks = await jwksServer({ keys: [publicJwk(orgKeys.jwk)] });
  corp = { ...jwks, key: orgKeys.privateKey, kid: orgKeys.jwk.kid };

  [machines.robot, machines.narrow, machines.signer, machines.agent, machines.nonced] = await Promise.all([
    addMachine(server, 'robot', ALL),
    addMachine(server, 'narrow', ['op:add', 'op:mult']),
    addMachine(server, 'signer', ALL, ['--jwks-file', jwksFile]),
    cli(server, 'client', 'add', '--name', 'agent', '--confidential', '--json'),
    addMachine(nonced, 'nonced robot', ALL),
  ]);
  machines.signer.key = signer;
  await cli(server, 'idp', 'trust', 'corp', '--issuer', corp.issuer, '--jwks-uri', corp.jwksUri,
    '--allowed-domain', 'example.com', '--auto-create');
  await cli(server, 'idp', 'trust', 'outage', '--issuer', `${corp.issuer}/outage`, '--jwks-uri', `${corp.issuer}/unavailable`,
    '--allowed-domain', 'example.com', '--auto-create');
});
after(async () => {
  await Promise.all([server?.stop(), nonced?.stop(), corp?.close()]);
});

describe('client_credentials with a secret', () => {
  test('a machine connects with ClientCredentialsProvider, lists and calls tools, acting as itself with no refresh token', async () => {
    const { client_id, client_secret } = machines.robot;
    const provider = new ClientCredentialsProvider({ clientId: client_id, clientSecret: client_secret, expectedIssuer: issuer });
    const client = await connect(server, provider);
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'calculator'), `tools: ${tools.map((t) => t.name)}`);
    const r = await client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 5, b: 8 } });
    assert.deepEqual(r.structuredContent, { result: 13 });

    const tokens = provider.tokens();
    assert.equal(tokens.token_type, 'Bearer');
    assert.equal(tokens.refresh_token, undefined, 'client_credentials returns no refresh token');
    const claims = decodePart(tokens.access_token, 1);
    assert.equal(claims.sub, client_id, 'the machine is the subject');
    assert.equal(claims.client_id, client_id);
    assert.equal(claims.aud, server.mcpUrl, 'bound to the resource (RFC 8707)');
    assert.equal(claims.iss, issuer);
    await client.close().catch(() => {});
  });

  test('a wrong secret does not connect: the token endpoint answers 401 invalid_client', async () => {
    const { client_id } = machines.robot;
    const provider = new ClientCredentialsProvider({ clientId: client_id, clientSecret: 'not-the-secret', expectedIssuer: issuer });
    await assert.rejects(connect(server, provider), (e) => {
      assert.match(`${e.code} ${e.message}`, /invalid_client|client authentication failed/);
      return true;
    });
    assert.equal(provider.tokens(), undefined);

    const r = await tokenRequest(server, { grant_type: 'client_credentials', resource: server.mcpUrl }, basic(client_id, 'not-the-secret'));
    assert.equal(r.status, 401);
    assert.equal(r.body.error, 'invalid_client');
    assert.match(r.headers.get('www-authenticate') ?? '', /^Basic/);
  });

  test('a client that is not a machine may not use client_credentials (unauthorized_client)', async () => {
    const { client_id, client_secret } = machines.agent;
    const r = await tokenRequest(server, { grant_type: 'client_credentials', resource: server.mcpUrl }, basic(client_id, client_secret));
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'unauthorized_client');
  });
});

describe('client_credentials with private_key_jwt', () => {
  test('PrivateKeyJwtProvider with an ES256 key registered by --jwks-file calls a tool', async () => {
    const { client_id, key } = machines.signer;
    const provider = new PrivateKeyJwtProvider({ clientId: client_id, privateKey: key.jwk, algorithm: 'ES256', expectedIssuer: issuer });
    const client = await connect(server, provider);
    const r = await client.callTool({ name: 'calculator', arguments: { operation: 'multiply', a: 6, b: 7 } });
    assert.deepEqual(r.structuredContent, { result: 42 });
    assert.equal(provider.tokens().refresh_token, undefined);
    assert.equal(decodePart(provider.tokens().access_token, 1).sub, client_id);
    await client.close().catch(() => {});
  });

  test('an assertion replayed, for another audience, or expired is refused with 401 invalid_client', async () => {
    const { client_id, key } = machines.signer;
    const form = (assertion) => ({ grant_type: 'client_credentials', resource: server.mcpUrl, client_assertion_type: CLIENT_ASSERTION, client_assertion: assertion });
    const refused = async (assertion, why) => {
      const r = await tokenRequest(server, form(assertion));
      assert.equal(r.status, 401, `${why}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error, 'invalid_client', why);
    };

    const once = clientAssertion(client_id, key.privateKey, key.jwk.kid);
    const first = await tokenRequest(server, form(once));
    assert.equal(first.status, 200, JSON.stringify(first.body));
    await refused(once, 'the same assertion (same jti) again');

    await refused(clientAssertion(client_id, key.privateKey, key.jwk.kid, { aud: `${server.base}/token` }), 'aud is the token endpoint, not the issuer');
    await refused(clientAssertion(client_id, key.privateKey, key.jwk.kid, { aud: 'http://127.0.0.1:9/elsewhere' }), 'aud is another server');
    await refused(clientAssertion(client_id, key.privateKey, key.jwk.kid, { iat: now() - 900, exp: now() - 600 }), 'expired');
    await refused(clientAssertion(client_id, key.privateKey, key.jwk.kid, { exp: now() + 7200 }), 'valid for more than an hour');
    const stranger = generateKeys().ec;
    await refused(clientAssertion(client_id, stranger.privateKey, key.jwk.kid), 'signed by a key not registered');
  });
});

describe('what a machine may get', () => {
  test('a scope the machine was not given is never in its token; a resource it was not given is invalid_target', async () => {
    const { client_id, client_secret } = machines.narrow;
    const auth = basic(client_id, client_secret);
    const ask = (extra) => tokenRequest(server, { grant_type: 'client_credentials', resource: server.mcpUrl, ...extra }, auth);

    const all = await ask({});
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.equal(all.body.scope, 'op:add op:mult', 'no scope asked: all the machine may have');
    assert.equal(all.body.refresh_token, undefined);
    const own = await ask({ scope: 'op:add' });
    assert.equal(own.status, 200);
    assert.equal(own.body.scope, 'op:add');

    for (const scope of ['op:add op:div', 'op:div', 'op:add no-such-scope']) {
      const r = await ask({ scope });
      if (r.status === 200) {
        const granted = r.body.scope.split(' ');
        assert.ok(!granted.includes('op:div') && !granted.includes('no-such-scope'), `asked ${scope}, got ${r.body.scope}`);
        assert.ok(!decodePart(r.body.access_token, 1).scope.split(' ').includes('op:div'));
      } else {
        assert.equal(r.status, 400, `asked ${scope}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error, 'invalid_scope', `asked ${scope}`);
      }
    }

    const withDiv = await mcpCall(server.mcpUrl, { authorization: `Bearer ${all.body.access_token}`, op: 'divide' });
    assert.equal(withDiv.status, 403, 'op:div is not the machine\'s');
    assert.match(withDiv.headers.get('www-authenticate') ?? '', /insufficient_scope/);

    for (const resource of [`${server.base}/elsewhere`, 'http://127.0.0.1:9/mcp', nonced.mcpUrl]) {
      const r = await ask({ resource });
      assert.equal(r.status, 400, `resource ${resource}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error, 'invalid_target', `resource ${resource}`);
    }
  });

  // The SDK asks for the scope of the resource's first challenge (every scope the
  // calculator has), the MCP scope-selection rule; the provider's own `scope` option
  // is not used then. A machine holding some of those scopes must still connect, with
  // a token narrowed to what it may have (RFC 6749 §3.3), never more.
  test('a machine holding some of the scopes connects with the SDK and gets a token narrowed to them', async () => {
    const { client_id, client_secret } = machines.narrow;
    const rec = recordingFetch();
    const provider = new ClientCredentialsProvider({ clientId: client_id, clientSecret: client_secret, expectedIssuer: issuer, scope: 'op:add op:mult' });
    let client;
    try {
      client = await connect(server, provider, rec.fetch);
    } catch (e) {
      assert.fail(`the SDK could not connect: ${e.code ?? ''} ${e.message}; requests: ${JSON.stringify(rec.seen)}`);
    }
    assert.deepEqual(provider.tokens().scope.split(' ').sort(), ['op:add', 'op:mult']);
    const r = await client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 1, b: 2 } });
    assert.deepEqual(r.structuredContent, { result: 3 });
    await client.close().catch(() => {});
  });
});

describe('ID-JAG (enterprise-managed authorization)', () => {
  test('CrossAppAccessProvider gets a token with the organisation\'s ID-JAG and calls a tool as the person', async () => {
    const { client_id, client_secret } = machines.agent;
    const contexts = [];
    const provider = new CrossAppAccessProvider({
      clientId: client_id, clientSecret: client_secret, expectedIssuer: issuer,
      assertion: (ctx) => {
        contexts.push(ctx);
        return idJag({ aud: ctx.authorizationServerUrl, resource: ctx.resourceUrl });
      },
    });
    const client = await connect(server, provider);
    const r = await client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 5, b: 8 } });
    assert.deepEqual(r.structuredContent, { result: 13 });
    assert.equal(contexts.length, 1);
    assert.equal(contexts[0].authorizationServerUrl, issuer, 'the audience the SDK gives is the issuer');
    assert.equal(contexts[0].resourceUrl, server.mcpUrl);

    const tokens = provider.tokens();
    assert.equal(tokens.refresh_token, undefined, 'an ID-JAG gets no refresh token');
    assert.deepEqual(tokens.scope.split(' ').sort(), ['op:add', 'op:mult'], 'asked all, asserted add and mult: the intersection');
    const users = await cli(server, 'user', 'list', '--json');
    const alice = users.find((u) => u.email === 'alice@example.com');
    assert.ok(alice, `an account was created for the person: ${JSON.stringify(users)}`);
    const claims = decodePart(tokens.access_token, 1);
    assert.equal(claims.sub, alice.id, 'the token\'s subject is the person\'s account');
    assert.notEqual(claims.sub, client_id);
    assert.equal(claims.client_id, client_id);
    assert.equal(claims.aud, server.mcpUrl);

    const divide = await mcpCall(server.mcpUrl, { authorization: `Bearer ${tokens.access_token}`, op: 'divide' });
    assert.equal(divide.status, 403, 'op:div was not asserted');
    await client.close().catch(() => {});
  });

  test('an ID-JAG for another audience, replayed, untrusted, expired or issued to another client is invalid_grant', async () => {
    const { client_id, client_secret } = machines.agent;
    const present = (assertion, extra = {}, auth = basic(client_id, client_secret)) =>
      tokenRequest(server, { grant_type: JWT_BEARER, assertion, ...extra }, auth);
    const refused = async (assertion, why, auth) => {
      const r = await present(assertion, {}, auth);
      assert.equal(r.status, 400, `${why}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error, 'invalid_grant', `${why}: ${JSON.stringify(r.body)}`);
    };

    await refused(idJag({ aud: `${server.base}/token` }), 'aud is the token endpoint');
    await refused(idJag({ aud: 'http://127.0.0.1:9' }), 'aud is another server');
    await refused(idJag({ aud: [issuer, 'http://127.0.0.1:9'] }), 'aud has another value beside the issuer');

    const once = idJag();
    const first = await present(once);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    await refused(once, 'the same ID-JAG (same jti) again');

    const rogue = generateKeys().ec;
    await refused(idJag({}, { key: rogue.privateKey }), 'signed by a key not in the trusted JWKS (same kid)');
    await refused(idJag({}, { key: rogue.privateKey, kid: rogue.jwk.kid }), 'signed by a key not in the trusted JWKS');
    await refused(idJag({ iss: 'http://127.0.0.1:9' }), 'an issuer that is not trusted');
    await refused(idJag({ iat: now() - 900, exp: now() - 600 }), 'expired');
    await refused(idJag({ exp: now() + 7200 }), 'valid for more than an hour');
    await refused(idJag({}, { typ: 'JWT' }), 'typ is not oauth-id-jag+jwt');
    await refused(idJag({ client_id: machines.robot.client_id }), 'issued to another client');
    await refused(idJag(), 'presented by another client than the one it names', basic(machines.robot.client_id, machines.robot.client_secret));
    await refused(idJag({ resource: 'http://127.0.0.1:9/mcp' }), 'for a resource this server does not protect');
    await refused(idJag({ email: 'mallory@elsewhere.test', sub: 'corp-person-2' }), 'a person outside the allowed domain');

    const narrowed = await present(idJag({ scope: 'op:add' }), { scope: 'op:add op:div' });
    assert.equal(narrowed.status, 200, JSON.stringify(narrowed.body));
    assert.equal(narrowed.body.scope, 'op:add', 'a scope beyond the assertion is not granted');
    assert.equal(decodePart(narrowed.body.access_token, 1).scope, 'op:add');
    assert.equal(narrowed.body.refresh_token, undefined);
  });

  // The client authenticated; what failed is the provider's key set. Blaming the client
  // (invalid_client) would make the SDK discard its credentials (auth() does so on
  // invalid_client) for an outage at the provider.
  test('an ID-JAG whose provider\'s keys cannot be fetched is refused without blaming the client', async () => {
    const { client_id, client_secret } = machines.agent;
    const r = await tokenRequest(server, { grant_type: JWT_BEARER, assertion: idJag({ iss: `${corp.issuer}/outage` }) }, basic(client_id, client_secret));
    assert.notEqual(r.body?.error, 'invalid_client', `the client authenticated: ${r.status} ${JSON.stringify(r.body)}`);
    assert.ok(
      (r.status === 400 && r.body.error === 'invalid_grant') || (r.status === 503 && r.body.error === 'temporarily_unavailable'),
      `${r.status} ${JSON.stringify(r.body)}`,
    );
  });
});

describe('DPoP', () => {
  test('the SDK\'s DPoP support gets a DPoP-bound token with client_credentials and calls tools', async () => {
    const { client_id, client_secret } = machines.robot;
    const provider = new DpopCredentialsProvider({ clientId: client_id, clientSecret: client_secret, expectedIssuer: issuer });
    const client = await connect(server, provider);
    const r = await client.callTool({ name: 'calculator', arguments: { operation: 'subtract', a: 8, b: 5 } });
    assert.deepEqual(r.structuredContent, { result: 3 });
    const tokens = provider.tokens();
    assert.equal(tokens.token_type, 'DPoP');
    const session = await provider.dpop();
    assert.equal(decodePart(tokens.access_token, 1).cnf?.jkt, session.thumbprint, 'bound to the SDK\'s key (cnf.jkt)');
    // The same token without its proof is refused.
    const bare = await mcpCall(server.mcpUrl, { authorization: `Bearer ${tokens.access_token}` });
    assert.equal(bare.status, 401);
    await client.close().catch(() => {});
  });

  test('a bound token is refused without a proof, with a proof for another request, a replayed proof, or as Bearer', async () => {
    const { client_id, client_secret } = machines.robot;
    const session = await DpopSession.create();
    const got = await tokenRequest(server, { grant_type: 'client_credentials', resource: server.mcpUrl },
      { ...basic(client_id, client_secret), dpop: await session.buildProof({ htm: 'POST', htu: `${server.base}/token` }) });
    assert.equal(got.status, 200, JSON.stringify(got.body));
    assert.equal(got.body.token_type, 'DPoP');
    const token = got.body.access_token;
    assert.equal(decodePart(token, 1).cnf?.jkt, session.thumbprint);
    const proof = (over = {}) => session.buildProof({ htm: 'POST', htu: server.mcpUrl, accessToken: token, ...over });
    const refusedAs = async (headers, error, why) => {
      const r = await mcpCall(server.mcpUrl, headers);
      assert.equal(r.status, 401, why);
      const challenge = r.headers.get('www-authenticate') ?? '';
      assert.match(challenge, new RegExp(`error="${error}"`), `${why}: ${challenge}`);
      if (error === 'invalid_dpop_proof') assert.match(challenge, /^DPoP /, `${why}: ${challenge}`);
    };

    await refusedAs({ authorization: `DPoP ${token}` }, 'invalid_dpop_proof', 'no proof');
    await refusedAs({ authorization: `DPoP ${token}`, dpop: await proof({ htu: `${server.base}/token` }) }, 'invalid_dpop_proof', 'a proof for another URL');
    await refusedAs({ authorization: `DPoP ${token}`, dpop: await proof({ htm: 'GET' }) }, 'invalid_dpop_proof', 'a proof for another method');
    await refusedAs({ authorization: `DPoP ${token}`, dpop: await proof({ accessToken: 'another-token' }) }, 'invalid_dpop_proof', 'a proof for another token (ath)');
    const other = await DpopSession.create();
    await refusedAs({ authorization: `DPoP ${token}`, dpop: await other.buildProof({ htm: 'POST', htu: server.mcpUrl, accessToken: token }) }, 'invalid_dpop_proof', 'a proof signed by another key');

    const good = await proof();
    const ok = await mcpCall(server.mcpUrl, { authorization: `DPoP ${token}`, dpop: good });
    assert.equal(ok.status, 200);
    assert.deepEqual((await ok.json()).result.structuredContent, { result: 13 });
    await refusedAs({ authorization: `DPoP ${token}`, dpop: good }, 'invalid_dpop_proof', 'the same proof again');

    await refusedAs({ authorization: `Bearer ${token}` }, 'invalid_token', 'the bound token sent as Bearer');
    await refusedAs({ authorization: `Bearer ${token}`, dpop: await proof() }, 'invalid_token', 'the bound token sent as Bearer, with a proof');

    // At the token endpoint too, a proof is used once.
    const tokenProof = await session.buildProof({ htm: 'POST', htu: `${server.base}/token` });
    const t1 = await tokenRequest(server, { grant_type: 'client_credentials', resource: server.mcpUrl }, { ...basic(client_id, client_secret), dpop: tokenProof });
    assert.equal(t1.status, 200);
    const t2 = await tokenRequest(server, { grant_type: 'client_credentials', resource: server.mcpUrl }, { ...basic(client_id, client_secret), dpop: tokenProof });
    assert.equal(t2.status, 400);
    assert.equal(t2.body.error, 'invalid_dpop_proof');
  });

  test('with --dpop-nonces, the SDK takes the nonce from the use_dpop_nonce answers and succeeds', async () => {
    const { client_id, client_secret } = machines.nonced;
    const base = nonced.base;
    const nonceIssuer = (await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json()).issuer;

    // On the wire: a proof without the nonce is answered with one, at both ends.
    const session = await DpopSession.create();
    const without = await tokenRequest(nonced, { grant_type: 'client_credentials', resource: nonced.mcpUrl },
      { ...basic(client_id, client_secret), dpop: await session.buildProof({ htm: 'POST', htu: `${base}/token` }) });
    assert.equal(without.status, 400, JSON.stringify(without.body));
    assert.equal(without.body.error, 'use_dpop_nonce');
    const nonce = without.headers.get('dpop-nonce');
    assert.ok(nonce, 'a DPoP-Nonce header comes with use_dpop_nonce');
    const withNonce = await tokenRequest(nonced, { grant_type: 'client_credentials', resource: nonced.mcpUrl },
      { ...basic(client_id, client_secret), dpop: await session.buildProof({ htm: 'POST', htu: `${base}/token`, nonce }) });
    assert.equal(withNonce.status, 200, JSON.stringify(withNonce.body));
    const token = withNonce.body.access_token;
    const rs = await mcpCall(nonced.mcpUrl, { authorization: `DPoP ${token}`, dpop: await session.buildProof({ htm: 'POST', htu: nonced.mcpUrl, accessToken: token, nonce: 'not-a-nonce-of-this-server' }) });
    assert.equal(rs.status, 401);
    assert.match(rs.headers.get('www-authenticate') ?? '', /^DPoP .*error="use_dpop_nonce"/);
    const rsNonce = rs.headers.get('dpop-nonce');
    assert.ok(rsNonce);
    const rsOk = await mcpCall(nonced.mcpUrl, { authorization: `DPoP ${token}`, dpop: await session.buildProof({ htm: 'POST', htu: nonced.mcpUrl, accessToken: token, nonce: rsNonce }) });
    assert.equal(rsOk.status, 200);

    // The SDK does the same by itself.
    const provider = new DpopCredentialsProvider({ clientId: client_id, clientSecret: client_secret, expectedIssuer: nonceIssuer });
    const rec = recordingFetch();
    const client = await connect(nonced, provider, rec.fetch);
    const r = await client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 20, b: 22 } });
    assert.deepEqual(r.structuredContent, { result: 42 });
    assert.equal(provider.tokens().token_type, 'DPoP');
    assert.ok(rec.seen.some((s) => s.path === '/token' && s.error === 'use_dpop_nonce'),
      `the token endpoint asked for a nonce first: ${JSON.stringify(rec.seen)}`);
    assert.ok(rec.seen.some((s) => s.path === '/token' && s.status === 200));
    await client.close().catch(() => {});
  });
});

describe('scope hierarchies', () => {
  // The operator declares op:arith to include op:add and op:mult (MCP 2026-07-28: a
  // server accounts for scope hierarchies). Its own server, so that the other tests'
  // scopes stay as they are.
  let srv;
  before(async () => {
    srv = await startMcpgate();
    await cli(srv, 'scope', 'add', 'op:arith', '--description', 'Add and multiply', '--includes', 'op:add', '--includes', 'op:mult');
    const listed = await cli(srv, 'scope', 'list', '--json');
    assert.deepEqual(listed.find((s) => s.name === 'op:arith').includes, ['op:add', 'op:mult']);
    const cycle = await mcpgate(['scope', 'add', 'op:add', '--includes', 'op:arith'],
      { dataDir: srv.dataDir, env: { MCPGATE_PUBLIC_URL: srv.base } });
    assert.notEqual(cycle.code, 0, 'a scope cannot include one that includes it');
  });
  after(async () => { await srv?.stop(); });

  test('a machine allowed the broader scope is served for the narrower ones, and the guard agrees', async () => {
    const m = await addMachine(srv, 'arith', ['op:arith']);
    const auth = basic(m.client_id, m.client_secret);
    // Asking for a narrower scope: granted.
    const narrow = await tokenRequest(srv, { grant_type: 'client_credentials', scope: 'op:add', resource: srv.mcpUrl }, auth);
    assert.equal(narrow.status, 200, JSON.stringify(narrow.body));
    assert.equal(narrow.body.scope, 'op:add');
    // Asking for the broader one: the token carries what it includes, so the
    // calculator's per-tool check (which knows no hierarchy) admits multiply.
    const broad = await tokenRequest(srv, { grant_type: 'client_credentials', scope: 'op:arith', resource: srv.mcpUrl }, auth);
    assert.deepEqual(broad.body.scope.split(' ').sort(), ['op:add', 'op:arith', 'op:mult']);
    const bearer = `Bearer ${broad.body.access_token}`;
    assert.equal((await mcpCall(srv.mcpUrl, { authorization: bearer, op: 'multiply' })).status, 200);
    // Divide is not included: the step-up names exactly what the call needs.
    const div = await mcpCall(srv.mcpUrl, { authorization: bearer, op: 'divide' });
    assert.equal(div.status, 403);
    assert.match(div.headers.get('www-authenticate'), /error="insufficient_scope", scope="op:div"/);
  });
});

describe('DPoP at the gateway', () => {
  // The gateway's upstreams sit behind the same guard: a bound token needs its proof
  // there too (server-everything over Streamable HTTP as the upstream).
  let upstream;
  let gw;
  let config;
  before(async () => {
    upstream = await startEverythingHttp();
    config = join(mkdtempSync(join(tmpdir(), 'mcpgate-gw-dpop-')), 'mcpgate.toml');
    writeFileSync(config, `
[[upstream]]
name = "everything"
url = "${upstream.url}"
scopes = [{ name = "everything", description = "Use everything" }]
tools = [{ name = "*", scope = "everything" }]
`);
    gw = await startMcpgate({ args: ['--config', config] });
  });
  after(async () => { await gw?.stop(); await upstream?.stop(); });

  test('a bound token reaches the upstream with its proof, and never without it or as Bearer', async () => {
    const url = `${gw.base}/mcp/everything`;
    // The command reads the same configuration as the server (its upstreams and scopes).
    const r = await mcpgate(['client', 'add', '--name', 'gateway robot', '--machine', '--scope', 'everything', '--resource', url, '--json'],
      { dataDir: gw.dataDir, env: { MCPGATE_PUBLIC_URL: gw.base, MCPGATE_CONFIG: config } });
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout);
    const session = await DpopSession.create();
    const got = await tokenRequest(gw, { grant_type: 'client_credentials', resource: url },
      { ...basic(m.client_id, m.client_secret), dpop: await session.buildProof({ htm: 'POST', htu: `${gw.base}/token` }) });
    assert.equal(got.status, 200, JSON.stringify(got.body));
    assert.equal(got.body.token_type, 'DPoP');
    const token = got.body.access_token;
    const list = (headers) => fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25', ...headers },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'dpop', version: '1' } } }),
    });
    const proof = () => session.buildProof({ htm: 'POST', htu: url, accessToken: token });
    const ok = await list({ authorization: `DPoP ${token}`, dpop: await proof() });
    assert.equal(ok.status, 200, await ok.text());
    const none = await list({ authorization: `DPoP ${token}` });
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate'), /^DPoP .*error="invalid_dpop_proof"/);
    const bearer = await list({ authorization: `Bearer ${token}` });
    assert.equal(bearer.status, 401);
    assert.match(bearer.headers.get('www-authenticate'), /error="invalid_token"/);
  });
});
