// Connected accounts through the upstream's own sign-in (credentials = "oauth"): mcpgate
// (the front) puts a second mcpgate (the upstream: its own authorization server, its
// own people, the calculator, access tokens of a few seconds) behind its gateway and
// is the upstream's OAuth client. A person's first call through the official SDK gets
// the URL elicitation (-32042); Chromium follows it through both sign-ins (the front's,
// then the upstream's with its consent) and back; the retried call runs as the
// person's upstream self. Then the refresh race: twenty calls at once on an expired
// upstream token, on one instance and on two sharing PostgreSQL, and the upstream sees
// exactly one token request per expiry. A refresh the upstream refuses elicits again;
// disconnecting revokes the grant at the upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startMcpgate, mcpgate, freePort } from '../lib/server.mjs';
import { startBalancer } from '../lib/balancer.mjs';
import { obtainTokens } from '../lib/flow.mjs';
import { Browser, field } from '../lib/browser.mjs';
import { launchChromium } from '../lib/chromium.mjs';
import { generateKeys, startProvider } from '../lib/oidc.mjs';

const PASSWORD = 'a-long-enough-password-1';
/** The upstream's access-token lifetime, seconds: short, so that tokens expire here. */
const TTL = 3;
const SHOTS = resolve(import.meta.dirname, '../../artifacts/browser');
const PG = process.env.TEST_DATABASE_URL;
if (!PG && process.env.CI) throw new Error('CI is set but TEST_DATABASE_URL is not: the PostgreSQL tests cannot run');

let upstream; // the second mcpgate, on `localhost` (its cookies apart from the front's)
let metrics; // the upstream's /metrics
let front; // the gateway in front of it, on 127.0.0.1
let config; // the front's configuration file
let chromium;
const measured = [];

const configText = (mcpUrl) => `
[[upstream]]
name = "calc"
url = "${mcpUrl}"
credentials = "oauth"
credential_label = "the calculator's own server"
scopes = [{ name = "calc", description = "Use the calculator" }]
tools = [{ name = "*", scope = "calc" }]
`;

async function cli(srv, env, ...args) {
  const r = await mcpgate(args, { dataDir: srv.dataDir, input: PASSWORD, env });
  assert.equal(r.code, 0, `mcpgate ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A tool call to `url` with `token`; the JSON-RPC answer. */
async function call(url, token, headers = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { ...headers, authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'calculator', arguments: { operation: 'add', a: 5, b: 8 } } }),
  });
  assert.equal(r.status, 200);
  return r.json();
}

function elicited(answer, base) {
  assert.equal(answer.error?.code, -32042, JSON.stringify(answer));
  const [e] = answer.error.data.elicitations;
  assert.equal(e.mode, 'url');
  assert.ok(e.url.startsWith(`${base}/connections/calc?request=`), e.url);
  return e.url;
}

/** Token requests the upstream has answered, of any kind and outcome. */
async function tokenRequests() {
  const text = await (await fetch(metrics)).text();
  return [...text.matchAll(/^mcpgate_http_requests_total\{([^}]*)\} (\d+)/gm)]
    .filter(([, labels]) => /route="\/token"/.test(labels))
    .reduce((n, m) => n + Number(m[2]), 0);
}

/** The upstream's token_revoked events about `who`. */
async function revocations(who) {
  const users = JSON.parse(await cli(upstream, {}, 'user', 'list', '--json'));
  const id = users.find((u) => u.username === who)?.id;
  assert.ok(id, JSON.stringify(users));
  return (await cli(upstream, {}, 'audit', '--json', '--limit', '500')).trim().split('\n').map((l) => JSON.parse(l))
    .map((e) => ({ ...e, detail: typeof e.detail === 'string' ? JSON.parse(e.detail) : e.detail }))
    .filter((e) => e.event === 'token_revoked' && e.user_id === id);
}

/**
 * Connects `who` through the elicited `url` with plain HTTP browsers (one per site):
 * the front's connect page, the upstream's sign-in and consent, the front's callback.
 */
async function connectByHttp(frontBrowser, url, who) {
  const page = await frontBrowser.request(url);
  const html = await page.text();
  assert.equal(page.status, 200, html.slice(0, 300));
  const go = await frontBrowser.post(new URL('/connections/calc', url), [['csrf', field(html, 'csrf')], ['request', field(html, 'request')]]);
  assert.equal(go.status, 303, await go.text());
  const there = go.headers.get('location');
  assert.ok(there.startsWith(`${upstream.base}/authorize?`), there);
  const at = new URL(there);
  assert.equal(at.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(at.searchParams.get('resource'), upstream.mcpUrl);
  const upstreamBrowser = new Browser();
  upstreamBrowser.finish = async (x) => x;
  const back = await upstreamBrowser.authorize(there, { username: who, password: PASSWORD });
  assert.ok(back.startsWith(`${new URL(url).origin}/connections/callback?upstream=calc&`), back);
  return { back, done: await frontBrowser.request(back) };
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const port = await freePort();
  const mport = await freePort();
  metrics = `http://127.0.0.1:${mport}/metrics`;
  upstream = await startMcpgate({ port, publicUrl: `http://localhost:${port}`, args: ['--access-token-ttl', String(TTL), '--metrics-listen', `127.0.0.1:${mport}`] });
  config = join(mkdtempSync(join(tmpdir(), 'mcpgate-oauth-')), 'mcpgate.toml');
  writeFileSync(config, configText(upstream.mcpUrl));
  front = await startMcpgate({ args: ['--config', config] });
  assert.match(front.logs(), new RegExp(`redirect URI ${front.base}/connections/callback`), 'the redirect URI is printed at start');
  // mcpgate's Client ID Metadata Document toward each upstream: its own URL as
  // client_id, that upstream's redirect URI only, a public client (PKCE protects it).
  const doc = await (await fetch(`${front.base}/connections/client/calc`)).json();
  assert.deepEqual(
    { id: doc.client_id, redirects: doc.redirect_uris, auth: doc.token_endpoint_auth_method },
    { id: `${front.base}/connections/client/calc`, redirects: [`${front.base}/connections/callback?upstream=calc`], auth: 'none' },
  );
  assert.equal((await fetch(`${front.base}/connections/client/nothing`)).status, 404);
  // The upstream's operator allows the front's one redirect URI, as the front printed it.
  await cli(upstream, {}, 'clients', 'allowed', 'add', `${front.base}/connections/callback?upstream=calc`);
  for (const srv of [upstream, front]) {
    for (const who of ['alice', 'bob']) await cli(srv, srv === front ? { MCPGATE_CONFIG: config } : {}, 'user', 'add', who, '--password-stdin');
  }
  chromium = await launchChromium();
});
after(async () => {
  if (measured.length) console.log(`upstream token requests per expiry, twenty calls at once: ${measured.join(', ')}`);
  await chromium?.close(); await front?.stop(); await upstream?.stop();
});

test('a person connects through both sign-ins in a browser; calls then run as their upstream self, refreshed once per expiry', async () => {
  const calcUrl = `${front.base}/mcp/calc`;
  const alice = await obtainTokens(front, PASSWORD, { username: 'alice', resource: calcUrl });
  const bob = await obtainTokens(front, PASSWORD, { username: 'bob', resource: calcUrl });

  // The official SDK client sees the elicitation as the MCP error it is.
  const sdk = new Client({ name: 'connected', version: '1' });
  await assert.rejects(
    sdk.connect(new StreamableHTTPClientTransport(new URL(calcUrl), { requestInit: { headers: { authorization: `Bearer ${alice.access_token}` } } })),
    (e) => e.code === -32042 && e.data?.elicitations?.[0]?.mode === 'url',
  );
  const url = elicited(await call(calcUrl, alice.access_token), front.base);
  // Bob cannot use the page made for Alice's call.
  const foreign = await bob.browser.request(url);
  assert.equal(foreign.status, 403);

  // Chromium: the front's sign-in, the connect page, the upstream's sign-in and
  // consent, and back.
  const ctx = await chromium.newContext();
  const page = await ctx.newPage();
  await page.goto(url);
  await page.getByLabel('Username').fill('alice');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Continue to calc' }).waitFor();
  await page.screenshot({ path: `${SHOTS}/connect-oauth.png`, fullPage: true });
  await page.getByRole('button', { name: 'Continue to calc' }).click();
  await page.waitForURL((u) => u.origin === upstream.base);
  await page.getByLabel('Username').fill('alice');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL((u) => u.pathname === '/connections/callback');
  assert.match(await page.content(), /Your account at calc is connected/);
  await page.screenshot({ path: `${SHOTS}/connected-oauth.png`, fullPage: true });

  const ok = await call(calcUrl, alice.access_token);
  assert.deepEqual(ok.result?.structuredContent, { result: 13 }, JSON.stringify(ok));
  const client = new Client({ name: 'connected', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(calcUrl), { requestInit: { headers: { authorization: `Bearer ${alice.access_token}` } } }));
  assert.deepEqual((await client.callTool({ name: 'calculator', arguments: { operation: 'multiply', a: 6, b: 7 } })).structuredContent, { result: 42 });
  await client.close();
  // The upstream's own record: Alice's grant, to mcpgate's client.
  const grants = JSON.parse(await cli(upstream, {}, 'grants', 'list', '--user', 'alice', '--json'));
  assert.ok(grants.some((g) => g.user === 'alice' && /^mcpgate at /.test(g.client_name)), JSON.stringify(grants));

  // The connected-apps page lists the account, when it was connected and used.
  await page.goto(`${front.base}/apps`);
  const row = page.locator('tr[data-upstream="calc"]');
  assert.match(await row.innerText(), /calc[\s\S]*Disconnect/);
  await page.screenshot({ path: `${SHOTS}/connected-apps-oauth.png`, fullPage: true });
  assert.ok(!(await page.content()).includes(alice.access_token));
  await ctx.close();

  // Bob is asked for his own, and his calls act as Bob.
  const bobUrl = elicited(await call(calcUrl, bob.access_token), front.base);
  const { done } = await connectByHttp(bob.browser, bobUrl, 'bob');
  assert.equal(done.status, 200, await done.text());
  assert.deepEqual((await call(calcUrl, bob.access_token)).result?.structuredContent, { result: 13 });
  const bobs = JSON.parse(await cli(upstream, {}, 'grants', 'list', '--user', 'bob', '--json'));
  assert.equal(bobs.length, 1, 'one grant at the upstream for Bob, his own');

  // The refresh race: three expiries, twenty calls at once on each.
  for (let round = 0; round < 3; round++) {
    await new Promise((r) => setTimeout(r, (TTL + 1) * 1000));
    const before = await tokenRequests();
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 20 }, () => call(calcUrl, alice.access_token)));
    for (const a of answers) assert.deepEqual(a.result?.structuredContent, { result: 13 }, JSON.stringify(a));
    const refreshes = await tokenRequests() - before;
    measured.push(refreshes);
    // One expiry, unless a busy machine made the twenty calls outlast the new token too.
    const expiries = 1 + Math.floor((Date.now() - started) / (TTL * 1000));
    assert.ok(refreshes >= 1 && refreshes <= expiries, `${refreshes} refreshes for ${expiries} expiries: one refresh per expiry`);
  }
});

test('a refresh the upstream refuses, or a callback for someone else, asks the person again; disconnecting revokes at the upstream', async () => {
  const calcUrl = `${front.base}/mcp/calc`;
  const alice = await obtainTokens(front, PASSWORD, { username: 'alice', resource: calcUrl });
  const bob = await obtainTokens(front, PASSWORD, { username: 'bob', resource: calcUrl });
  // Connected from the first test; the upstream ends her grant: the token is refused,
  // the refresh too (invalid_grant), and the next call elicits.
  assert.deepEqual((await call(calcUrl, alice.access_token)).result?.structuredContent, { result: 13 });
  await cli(upstream, {}, 'grants', 'revoke', '--user', 'alice', '--all');
  const deadline = Date.now() + 15000;
  let again;
  while (!(again = await call(calcUrl, alice.access_token)).error && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const url = elicited(again, front.base);
  assert.deepEqual((await call(calcUrl, bob.access_token)).result?.structuredContent, { result: 13 }, "Bob's connection is his own");
  const audit = await cli(front, { MCPGATE_CONFIG: config }, 'audit', '--json', '--limit', '100');
  assert.match(audit, /account_needs_consent/);

  // A callback carrying Alice's state, opened by Bob, fails and spends nothing of his.
  const page = await alice.browser.request(url);
  const html = await page.text();
  const go = await alice.browser.post(`${front.base}/connections/calc`, [['csrf', field(html, 'csrf')], ['request', field(html, 'request')]]);
  const state = new URL(go.headers.get('location')).searchParams.get('state');
  const stolen = await bob.browser.request(`${front.base}/connections/callback?upstream=calc&state=${state}&code=x&iss=${encodeURIComponent(upstream.base)}`);
  assert.equal(stolen.status, 403);
  assert.match(await stolen.text(), /another person/);
  // The answer to this attempt, sent back to another upstream's redirect URI (another
  // authorization server answering: a mix-up), is refused and spends the attempt.
  const page2 = await alice.browser.request(url);
  const html2 = await page2.text();
  const go2 = await alice.browser.post(`${front.base}/connections/calc`, [['csrf', field(html2, 'csrf')], ['request', field(html2, 'request')]]);
  const state2 = new URL(go2.headers.get('location')).searchParams.get('state');
  const mixed = await alice.browser.request(`${front.base}/connections/callback?upstream=other&state=${state2}&code=x&iss=${encodeURIComponent(upstream.base)}`);
  assert.equal(mixed.status, 502);
  assert.match(await mixed.text(), /another server/);
  // A forged state is refused without a redirect anywhere.
  const forged = await alice.browser.request(`${front.base}/connections/callback?upstream=calc&state=nope&code=x`);
  assert.equal(forged.status, 410);
  assert.equal(forged.headers.get('location'), null);

  // Connected again (the elicited page was not spent by the failed attempt).
  const { done } = await connectByHttp(alice.browser, url, 'alice');
  assert.equal(done.status, 200, await done.text());
  assert.deepEqual((await call(calcUrl, alice.access_token)).result?.structuredContent, { result: 13 });
  assert.equal(JSON.parse(await cli(upstream, {}, 'grants', 'list', '--user', 'alice', '--json')).length, 1);

  // Disconnecting on the connected-apps page revokes the tokens at the upstream too
  // (RFC 7009): the upstream records the refresh token's family ended by its client.
  const revokedBefore = await revocations('alice');
  const apps = await (await alice.browser.request(`${front.base}/apps`)).text();
  const off = await alice.browser.post(`${front.base}/connections/calc/disconnect`, [['csrf', field(apps, 'csrf')]]);
  assert.equal(off.status, 303);
  elicited(await call(calcUrl, alice.access_token), front.base);
  const seen = Math.max(0, ...revokedBefore.map((e) => e.seq));
  const revoked = (await revocations('alice')).filter((e) => e.seq > seen);
  assert.ok(revoked.some((e) => e.detail.kind === 'refresh_token'), JSON.stringify(revoked));
});

test('two instances sharing PostgreSQL refresh an expired upstream token once between them', { skip: PG ? false : 'SKIPPED: TEST_DATABASE_URL is not set (no PostgreSQL)' }, async () => {
  const name = `mcpgate_e2e_${randomBytes(6).toString('hex')}`;
  execFileSync('psql', [PG, '-qc', `CREATE DATABASE ${name}`]);
  const dbUrl = `${PG.slice(0, PG.lastIndexOf('/'))}/${name}`;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { MCPGATE_KEY_ENCRYPTION_KEY: randomBytes(32).toString('hex'), MCPGATE_CONFIG: config };
  const common = { publicUrl: base, args: ['--database', dbUrl, '--config', config], env };
  const a = await startMcpgate(common);
  const b = await startMcpgate(common);
  const lb = await startBalancer(port, { a: a.port, b: b.port });
  try {
    const r = await mcpgate(['user', 'add', 'carol', '--password-stdin', '--database', dbUrl], { input: PASSWORD, env: { ...env, MCPGATE_PUBLIC_URL: base } });
    assert.equal(r.code, 0, r.stderr);
    await cli(upstream, {}, 'user', 'add', 'carol', '--password-stdin');
    await cli(upstream, {}, 'clients', 'allowed', 'add', `${base}/connections/callback?upstream=calc`);
    const calcUrl = `${base}/mcp/calc`;
    const carol = await obtainTokens({ base, mcpUrl: calcUrl }, PASSWORD, { username: 'carol', resource: calcUrl, via: { register: 'a', browser: 'a', token: 'a' } });
    const onA = { 'x-mcpgate-backend': 'a' };
    const url = elicited(await call(calcUrl, carol.access_token, onA), base);
    const { done } = await connectByHttp(carol.browser, url, 'carol');
    assert.equal(done.status, 200, await done.text());
    assert.deepEqual((await call(calcUrl, carol.access_token, { 'x-mcpgate-backend': 'b' })).result?.structuredContent, { result: 13 }, 'B uses what A connected');
    const both = [];
    for (let round = 0; round < 2; round++) {
      await new Promise((r) => setTimeout(r, (TTL + 1) * 1000));
      const before = await tokenRequests();
      const started = Date.now();
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => call(calcUrl, carol.access_token, { 'x-mcpgate-backend': i % 2 ? 'a' : 'b' })));
      for (const x of answers) assert.deepEqual(x.result?.structuredContent, { result: 13 }, JSON.stringify(x));
      const refreshes = await tokenRequests() - before;
      both.push(refreshes);
      const expiries = 1 + Math.floor((Date.now() - started) / (TTL * 1000));
      assert.ok(refreshes >= 1 && refreshes <= expiries, `${refreshes} refreshes for ${expiries} expiries, two instances`);
    }
    console.log(`two instances: upstream token requests per expiry, twenty calls at once split between them: ${both.join(', ')}`);
  } finally {
    await lb.close(); await a.stop(); await b.stop();
  }
});

test('token exchange between two deployments: the person\'s token here becomes theirs there, with no pop-up', async () => {
  // A third mcpgate in front of the same upstream, with credentials = "token_exchange":
  // a confidential client there, whose issuer the upstream trusts for tokens meant for
  // the front's resource.
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const exUrl = `${base}/mcp/calc`;
  const client = JSON.parse((await cli(upstream, {}, 'client', 'add', '--name', 'front-gateway', '--confidential', '--json')).trim().split('\n').pop());
  const cfg = join(mkdtempSync(join(tmpdir(), 'mcpgate-exchange-')), 'mcpgate.toml');
  writeFileSync(cfg, `
[[upstream]]
name = "calc"
url = "${upstream.mcpUrl}"
credentials = "token_exchange"
oauth_client_id = "${client.client_id}"
oauth_client_secret_env = "CALC_CLIENT_SECRET"
oauth_issuer = "${upstream.base}"
scopes = [{ name = "calc", description = "Use the calculator" }]
tools = [{ name = "*", scope = "calc" }]
`);
  const env = { CALC_CLIENT_SECRET: client.client_secret, MCPGATE_CONFIG: cfg };
  const ex = await startMcpgate({ port, args: ['--config', cfg], env });
  try {
    assert.ok(!ex.logs().includes(client.client_secret), 'the secret is never logged');
    for (const who of ['dave', 'erin']) await cli(ex, env, 'user', 'add', who, '--password-stdin');
    await cli(upstream, {}, 'user', 'add', 'dave', '--password-stdin');
    const trust = (audience) => cli(upstream, {}, 'idp', 'trust', 'exfront', '--issuer', base, '--jwks-uri', `${base}/jwks.json`,
      '--exchange-audience', audience, '--exchange-client', client.client_id);
    await trust(exUrl);
    const daveHere = JSON.parse(await cli(ex, env, 'user', 'list', '--json')).find((u) => u.username === 'dave');
    await cli(upstream, {}, 'idp', 'link', 'exfront', '--subject', daveHere.id, '--user', 'dave');

    const dave = await obtainTokens({ base, mcpUrl: exUrl }, PASSWORD, { username: 'dave', resource: exUrl });
    const before = await tokenRequests();
    const started = Date.now();
    for (let i = 0; i < 5; i++) assert.deepEqual((await call(exUrl, dave.access_token)).result?.structuredContent, { result: 13 });
    // One exchange per lifetime of the upstream's tokens (TTL seconds here): on a busy
    // machine the five calls may outlast one.
    const lifetimes = 1 + Math.floor((Date.now() - started) / (TTL * 1000));
    const exchanges = await tokenRequests() - before;
    assert.ok(exchanges >= 1 && exchanges <= lifetimes, `${exchanges} exchanges over ${lifetimes} lifetime(s): kept for its lifetime`);
    // At the upstream, Dave's own grant, to the front's client; no refresh token.
    const grants = JSON.parse(await cli(upstream, {}, 'grants', 'list', '--user', 'dave', '--json'));
    assert.ok(grants.some((g) => g.client_name === 'front-gateway'), JSON.stringify(grants));
    const audit = await cli(upstream, {}, 'audit', '--json', '--limit', '500');
    assert.match(audit, /"event":"token_exchanged"/);

    // Erin is nobody at the upstream: refused, with the gateway's error, not a pop-up.
    const erin = await obtainTokens({ base, mcpUrl: exUrl }, PASSWORD, { username: 'erin', resource: exUrl });
    const r = await fetch(exUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${erin.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'calculator', arguments: { operation: 'add', a: 1, b: 1 } } }),
    });
    assert.equal(r.status, 403);
    assert.match((await r.json()).error.message, /does not accept you/);

    // At the upstream's token endpoint directly: what the exchange refuses.
    const exchange = (subject, { id = client.client_id, secret = client.client_secret, extra = {} } = {}) => fetch(`${upstream.base}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: subject,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', resource: upstream.mcpUrl, ...extra }),
    }).then(async (x) => ({ status: x.status, body: await x.json() }));
    const ok = await exchange(dave.access_token);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token');
    assert.equal(ok.body.refresh_token, undefined);
    // A token of an issuer not trusted for exchange (the upstream's own).
    const own = await obtainTokens(upstream, PASSWORD, { username: 'dave' });
    assert.equal((await exchange(own.access_token)).body.error, 'invalid_grant');
    // A token of the trusted issuer, but for an audience not allowed: not laundered.
    await trust('http://127.0.0.1:1/elsewhere');
    assert.equal((await exchange(dave.access_token)).body.error, 'invalid_grant');
    await trust(exUrl);
    // Another confidential client (any app that got hold of Dave's token and registered)
    // may not exchange it: only the client the operator named.
    const stranger = await (await fetch(`${upstream.base}/register`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'stranger', redirect_uris: ['http://127.0.0.1:1/callback'], token_endpoint_auth_method: 'client_secret_basic' }) })).json();
    assert.ok(stranger.client_secret, JSON.stringify(stranger));
    assert.equal((await exchange(dave.access_token, { id: stranger.client_id, secret: stranger.client_secret })).body.error, 'invalid_grant');
    // Delegation is not offered; a wrong secret is not a client.
    assert.equal((await exchange(dave.access_token, { extra: { actor_token: dave.access_token, actor_token_type: 'urn:ietf:params:oauth:token-type:access_token' } })).body.error, 'invalid_request');
    assert.equal((await exchange(dave.access_token, { secret: 'wrong' })).status, 401);
    // The metadata says it.
    const meta = await (await fetch(`${upstream.base}/.well-known/oauth-authorization-server`)).json();
    assert.ok(meta.grant_types_supported.includes('urn:ietf:params:oauth:grant-type:token-exchange'));
  } finally {
    await ex.stop();
  }
});

test('an upstream whose authorization server is a real OpenID provider: the person signs in there, and the call runs with its token', async () => {
  const keys = generateKeys();
  const rsPort = await freePort();
  const resource = `http://127.0.0.1:${rsPort}/mcp`;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const secret = 'gateway-secret-at-the-provider-0123456789';
  const provider = await startProvider({
    keys: keys.jwks,
    clients: [{ client_id: 'gateway', client_secret: secret, redirect_uris: [`${base}/connections/callback?upstream=calc`],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }],
    resources: { [resource]: 'op:add op:sub op:mult op:div' },
  });
  // The calculator, trusting the provider's JWT access tokens for its resource.
  const rs = await startMcpgate({ subcommand: 'mcp', port: rsPort, args: ['--issuer', provider.issuer, '--jwks'] });
  const cfg = join(mkdtempSync(join(tmpdir(), 'mcpgate-oidc-up-')), 'mcpgate.toml');
  writeFileSync(cfg, `
[[upstream]]
name = "calc"
url = "${resource}"
credentials = "oauth"
oauth_client_id = "gateway"
oauth_client_secret_env = "PROVIDER_CLIENT_SECRET"
oauth_scopes = ["op:add"]
scopes = [{ name = "calc", description = "Use the calculator" }]
tools = [{ name = "*", scope = "calc" }]
`);
  const env = { PROVIDER_CLIENT_SECRET: secret, MCPGATE_CONFIG: cfg };
  const fr = await startMcpgate({ port, args: ['--config', cfg], env });
  const ctx = await chromium.newContext();
  try {
    await cli(fr, env, 'user', 'add', 'alice', '--password-stdin');
    const calcUrl = `${base}/mcp/calc`;
    const alice = await obtainTokens({ base, mcpUrl: calcUrl }, PASSWORD, { username: 'alice', resource: calcUrl });
    const url = elicited(await call(calcUrl, alice.access_token), base);
    const page = await ctx.newPage();
    await page.goto(url);
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Continue to calc' }).click();
    // The provider's own sign-in (its development interactions: any login), then its
    // consent for the resource's scope, then back.
    await page.waitForSelector('input[name="login"]');
    await page.fill('input[name="login"]', 'alice@example.com');
    await page.fill('input[name="password"]', 'any password');
    await page.click('button[type="submit"]');
    for (let i = 0; i < 3 && !page.url().startsWith(`${base}/connections/callback`); i++) {
      await page.waitForLoadState();
      if (page.url().startsWith(`${base}/connections/callback`)) break;
      const next = page.locator('button[type="submit"]');
      if (await next.count()) await next.first().click();
    }
    await page.waitForURL((u) => u.pathname === '/connections/callback');
    assert.match(await page.content(), /Your account at calc is connected/);
    const ok = await call(calcUrl, alice.access_token);
    assert.deepEqual(ok.result?.structuredContent, { result: 13 }, JSON.stringify(ok));
    // The provider's scope for the call is what the person consented to there (op:add):
    // a tool needing more (op:mult) is refused by the upstream's own guard with
    // insufficient_scope, and the person is asked to allow it there (a step-up), not
    // told their token here lacks it.
    const multiply = async () => (await fetch(calcUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'calculator', arguments: { operation: 'multiply', a: 6, b: 7 } } }),
    })).json();
    const more = await multiply();
    const stepUrl = elicited(more, base);
    assert.match(more.error.message, /op:mult/);
    await page.goto(stepUrl);
    await page.getByRole('button', { name: 'Continue to calc' }).click();
    for (let i = 0; i < 4 && !page.url().startsWith(`${base}/connections/callback`); i++) {
      await page.waitForLoadState();
      if (page.url().startsWith(`${base}/connections/callback`)) break;
      if (await page.locator('input[name="login"]').count()) {
        await page.fill('input[name="login"]', 'alice@example.com');
        await page.fill('input[name="password"]', 'any password');
      }
      const next = page.locator('button[type="submit"]');
      if (await next.count()) await next.first().click();
    }
    await page.waitForURL((u) => u.pathname === '/connections/callback');
    assert.match(await page.content(), /Your account at calc is connected/);
    assert.deepEqual((await multiply()).result?.structuredContent, { result: 42 });
    assert.deepEqual((await call(calcUrl, alice.access_token)).result?.structuredContent, { result: 13 });
  } finally {
    await ctx.close(); await fr.stop(); await rs.stop(); await provider.stop();
  }
});
