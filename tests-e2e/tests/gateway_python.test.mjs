// Gateway mode with a Python MCP server (the official `mcp` package, gateway_server.py)
// behind mcpgate: the official Python client through the whole flow; what the upstream
// receives (never the client's token, under any method; identity headers or a JWT of
// its own audience); a stdio upstream killed mid-call, and one too slow.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { PYTHON, PY_SERVER, startUpstream, startGateway, connectClient } from '../lib/gateway.mjs';
import { obtainTokens } from '../lib/flow.mjs';
import { freePort, mcpgate } from '../lib/server.mjs';

const SCOPES = `
scopes = [{ name = "py:math", description = "Add numbers" },
          { name = "py:debug", description = "Debugging tools of the test server" }]
tools = [{ name = "add", scope = "py:math" }, { name = "slow", scope = "py:math" },
         { name = "seen_headers", scope = "py:debug" }, { name = "crash", scope = "py:debug" }]
`;

let upstream;
let server;
before(async () => {
  assert.ok(existsSync(PYTHON), 'tests-e2e/.venv is missing: run ./scripts/test, which creates it');
  const port = await freePort();
  upstream = await startUpstream(PYTHON, [PY_SERVER, 'http', String(port)], { url: `http://127.0.0.1:${port}/mcp` });
  server = await startGateway(`
[[upstream]]
name = "pyhttp"
url = "${upstream.url}"
identity = "headers"
forward_headers = ["x-e2e-run"]
${SCOPES}

[[upstream]]
name = "pyjwt"
url = "${upstream.url}"
identity = "jwt"
forward_headers = ["x-e2e-run"]
${SCOPES}

[[upstream]]
name = "pystdio"
command = "'${PYTHON}' '${PY_SERVER}' stdio"
timeout_secs = 3
${SCOPES}
`);
});
after(async () => { await server?.stop(); await upstream?.stop(); });

test('Python SDK client → gateway → Python server: OAuth flow, tools, identity headers', () => {
  const r = spawnSync(PYTHON, [resolve(import.meta.dirname, 'gateway_python_client.py')], {
    env: { ...process.env, MCPGATE_MCP_URL: `${server.base}/mcp/pyhttp`, MCPGATE_ADMIN_PASSWORD: server.password },
    cwd: import.meta.dirname, encoding: 'utf8', timeout: 120000,
  });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /all steps passed/);
});

async function raw(url, token, { method = 'POST', body, session, headers = {} } = {}) {
  return fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25',
      ...(body ? { 'content-type': 'application/json' } : {}), ...(session ? { 'mcp-session-id': session } : {}), ...headers },
    body: body && JSON.stringify(body),
  });
}

const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };

/** Every request kind a client makes, with forged identity headers and a cookie. */
let run = 0;
async function everyKindOfRequest(url, token) {
  run += 1;
  const forged = { 'x-e2e-run': String(run), 'x-forwarded-user': 'root', 'x_forwarded_user': 'root', 'x-remote-user': 'root', 'x-forwarded-email': 'root@evil.example', 'x-forwarded-scopes': 'everything', cookie: 'session=stolen', 'proxy-authorization': 'Basic eA==' };
  const init = await raw(url, token, { body: INIT, headers: forged });
  assert.equal(init.status, 200);
  const session = init.headers.get('mcp-session-id');
  await init.text();
  assert.equal((await raw(url, token, { body: { jsonrpc: '2.0', method: 'notifications/initialized' }, session, headers: forged })).status, 202);
  const get = new AbortController();
  const stream = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'mcp-session-id': session, ...forged }, signal: get.signal });
  assert.ok([200, 405].includes(stream.status), `GET ${stream.status}`);
  get.abort();
  const call = await raw(`${url}?x=1`, token, { body: { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'add', arguments: { a: 1, b: 1 } } }, session, headers: forged });
  assert.equal(call.status, 200);
  assert.match(await call.text(), /"result":2|"text":"2"/);
  const seen = await raw(url, token, { body: { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'seen_headers', arguments: {} } }, session, headers: { 'x-e2e-run': String(run) } });
  const text = await seen.text();
  assert.equal((await raw(url, token, { method: 'DELETE', session, headers: forged })).status < 300, true);
  const data = JSON.parse(text.split('\n').find((l) => l.startsWith('data: ')).slice(6));
  return data.result.structuredContent.result.filter((h) => !h['x-e2e-probe']);
}

test('the upstream never receives the client token, cookies or forged identity; it gets ours', async () => {
  const pw = server.password;
  const headersUrl = `${server.base}/mcp/pyhttp`;
  const t1 = (await obtainTokens(server, pw, { resource: headersUrl })).access_token;
  const seen = (await everyKindOfRequest(headersUrl, t1)).filter((h) => h['x-e2e-run'] === '1');
  assert.ok(seen.length >= 4);
  for (const h of seen) {
    assert.equal(h.authorization, undefined, 'no Authorization header reaches the upstream');
    assert.equal(h.cookie, undefined);
    assert.equal(h['proxy-authorization'], undefined);
    assert.ok(!JSON.stringify(h).includes(t1), 'the token appears nowhere');
    assert.equal(h['x-forwarded-user'], 'admin', 'forged identity headers are replaced by ours');
    assert.equal(h['x-forwarded-email'], undefined, 'the admin has no email: a forged one is dropped, none is made up');
    assert.equal(h['x_forwarded_user'], undefined, 'headers are forwarded by allow-list');
    assert.equal(h['x-remote-user'], undefined);
  }

  const jwtUrl = `${server.base}/mcp/pyjwt`;
  const t2 = (await obtainTokens(server, pw, { resource: jwtUrl })).access_token;
  const all = await everyKindOfRequest(jwtUrl, t2);
  const methods = new Set(all.map((h) => h[':method']));
  for (const m of ['POST', 'GET', 'DELETE']) assert.ok(methods.has(m), `the upstream saw a ${m}`);
  for (const h of all) {
    assert.ok(!JSON.stringify(h).includes(t1) && !JSON.stringify(h).includes(t2), 'no client token, any method');
  }
  const jwtSeen = all.filter((h) => h['x-e2e-run'] === '2');
  assert.ok(jwtSeen.length >= 4);
  for (const h of jwtSeen) {
    assert.ok(h.authorization?.startsWith('Bearer '), 'a JWT of our own');
    const jwt = h.authorization.slice(7);
    assert.notEqual(jwt, t2, 'never the client token');
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url'));
    assert.equal(claims.aud, 'urn:mcpgate:upstream:pyjwt');
    assert.equal(claims.iss, server.base);
    assert.equal(claims.exp - claims.iat, 60);
    assert.equal(h['x-forwarded-user'], undefined);
    // The identity JWT is for the upstream only: mcpgate itself refuses it.
    assert.equal((await raw(headersUrl, jwt, { body: INIT })).status, 401);
  }
  const keys = await (await fetch(`${server.base}/jwks.json`)).json();
  const kid = JSON.parse(Buffer.from(jwtSeen[0].authorization.slice(7).split('.')[0], 'base64url')).kid;
  assert.ok(keys.keys.some((k) => k.kid === kid), 'signed by a key the JWKS publishes');
});

test('X-Forwarded-Email carries the email of the person, looked up by the token\'s subject', async () => {
  const add = await mcpgate(['user', 'add', 'carol', '--email', 'carol@example.com', '--password-stdin'],
    { input: 'carol password 123\n', dataDir: server.dataDir });
  assert.equal(add.code, 0, add.stderr);
  const url = `${server.base}/mcp/pyhttp`;
  const t = (await obtainTokens(server, 'carol password 123', { resource: url, username: 'carol' })).access_token;
  const mine = String(run + 1);
  const seen = (await everyKindOfRequest(url, t)).filter((h) => h['x-e2e-run'] === mine);
  assert.ok(seen.length >= 4);
  for (const h of seen) {
    assert.equal(h['x-forwarded-user'], 'carol');
    assert.equal(h['x-forwarded-email'], 'carol@example.com', 'ours, not the forged one');
    assert.ok(h['x-forwarded-subject'] && h['x-forwarded-subject'] !== 'carol', 'the subject is the stable user id');
  }
});

test('a stdio upstream killed mid-call: an error within the timeout, and the next call works', async () => {
  const { client } = await connectClient(server, `${server.base}/mcp/pystdio`, {});
  try {
    assert.deepEqual((await client.callTool({ name: 'add', arguments: { a: 2, b: 2 } })).structuredContent, { result: 4 });
    let t = Date.now();
    await assert.rejects(client.callTool({ name: 'crash', arguments: {} }), /gateway|upstream|-32603/i);
    assert.ok(Date.now() - t < 3000, `error within the timeout (${Date.now() - t} ms)`);
    assert.deepEqual((await client.callTool({ name: 'add', arguments: { a: 3, b: 4 } })).structuredContent, { result: 7 },
      'a new process, with the session replayed');
    t = Date.now();
    await assert.rejects(client.callTool({ name: 'slow', arguments: { seconds: 30 } }), /timeout|504|-32603/i);
    const waited = Date.now() - t;
    assert.ok(waited >= 2900 && waited < 6000, `the configured 3 s timeout (${waited} ms)`);
    assert.deepEqual((await client.callTool({ name: 'add', arguments: { a: 1, b: 1 } })).structuredContent, { result: 2 });
  } finally { await client.close().catch(() => {}); }
  const lines = server.logs().split('\n').filter((l) => l.includes('pystdio'));
  assert.ok(lines.some((l) => l.includes('started stdio upstream')), 'the upstream\'s lifecycle is in our log');
  assert.ok(lines.some((l) => l.includes('gateway-python: serving over stdio')), 'the upstream\'s stderr is in our log, with its name');
});

test('a tool the policy does not name is denied, and a missing scope is a step-up, before the upstream sees either', async () => {
  const url = `${server.base}/mcp/pyhttp`;
  const token = (await obtainTokens(server, server.password, { resource: url, scope: 'py:math', approve: ['py:math'] })).access_token;
  const init = await raw(url, token, { body: INIT });
  const session = init.headers.get('mcp-session-id');
  await init.text();
  const marker = { 'x-e2e-run': 'deny' };
  const denied = await raw(url, token, { body: { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'rm_everything', arguments: {} } }, session, headers: marker });
  assert.equal(denied.status, 403);
  assert.equal(denied.headers.get('www-authenticate'), null, 'no scope would help: no step-up challenge');
  const body = await denied.json();
  assert.equal(body.id, 5);
  assert.equal(body.error.code, -32001);
  const stepUp = await raw(url, token, { body: { jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'seen_headers', arguments: {} } }, session, headers: marker });
  assert.equal(stepUp.status, 403);
  assert.match(stepUp.headers.get('www-authenticate'), /error="insufficient_scope", scope="py:debug"/);
  // Ask with a token that may: the upstream never saw the refused calls.
  const debug = (await obtainTokens(server, server.password, { resource: url })).access_token;
  const i2 = await raw(url, debug, { body: INIT });
  const s2 = i2.headers.get('mcp-session-id');
  await i2.text();
  const r = await raw(url, debug, { body: { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'seen_headers', arguments: {} } }, session: s2 });
  const data = JSON.parse((await r.text()).split('\n').find((l) => l.startsWith('data: ')).slice(6));
  assert.equal(data.result.structuredContent.result.filter((h) => h['x-e2e-run'] === 'deny').length, 0);
});
