// Sign-in through an upstream OpenID provider, in a real browser (Debian's chromium):
// a real, certified provider (oidc-provider, tests-e2e/fixtures/oidc/) on loopback, the
// official MCP SDK client, and mcpgate between them.
//   MCP client → mcpgate → "Continue with …" → the provider's sign-in → mcpgate's
//   consent → token → tool call.
// "corp" (added with `mcpgate idp add`, RS256 ID tokens) creates accounts for verified
// example.com emails; "partner" (from the configuration file, ES256 ID tokens) admits
// only invited people. Refusals: unknown person, unverified email, an administrator's
// email (linked by the operator instead), cancelled sign-in, replayed or foreign
// state, a sign-in finished in another browser, disabled user.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { startMcpgate, freePort, mcpgate } from '../lib/server.mjs';
import { callbackServer, MemoryProvider } from '../lib/oauth.mjs';
import { Browser } from '../lib/browser.mjs';
import { generateKeys, startProvider } from '../lib/oidc.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = resolve(import.meta.dirname, '../../artifacts/browser');
const SECRETS = { rs: 'corp-client-secret-0123456789abcdef', es: 'partner-client-secret-0123456789abcd' };
let provider;
let server;
let browser;
let configFile;
before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM}: ./scripts/test installs Debian's chromium`);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const client = (id, secret, name, alg) => ({
    client_id: id, client_secret: secret, redirect_uris: [`${base}/login/idp/${name}/callback`],
    grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: alg,
  });
  provider = await startProvider({
    keys: generateKeys().jwks,
    clients: [client('mcpgate-rs', SECRETS.rs, 'corp', 'RS256'), client('mcpgate-es', SECRETS.es, 'partner', 'ES256')],
  });
  // "partner" comes from the configuration file; its secret from the environment.
  const dir = mkdtempSync(join(tmpdir(), 'mcpgate-idp-'));
  configFile = join(dir, 'mcpgate.toml');
  writeFileSync(configFile, `[[idp]]\nname = "partner"\ndisplay_name = "Partner SSO"\nissuer = "${provider.issuer}"\nclient_id = "mcpgate-es"\nclient_secret_env = "PARTNER_SECRET"\n`);
  server = await startMcpgate({ port, args: ['--config', configFile], env: { PARTNER_SECRET: SECRETS.es } });
  const add = await mcpgate(['idp', 'add', 'corp', '--issuer', provider.issuer, '--client-id', 'mcpgate-rs', '--client-secret-stdin',
    '--display-name', 'Corp', '--allowed-domain', 'example.com', '--auto-create', '--public-url', base,
    '--groups-claim', 'groups', '--groups-scope', 'groups'], { input: `${SECRETS.rs}\n`, dataDir: server.dataDir });
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, new RegExp(`${base}/login/idp/corp/callback`), 'the redirect URI to register is printed');
  assert.ok(!add.stdout.includes(SECRETS.rs) && !add.stderr.includes(SECRETS.rs), 'the secret is never echoed');
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
});
after(async () => { await browser?.close(); await server?.stop(); await provider?.stop(); });

const shot = (page, name) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });

/** At the provider's development sign-in page: any login, any password. */
async function signInAtProvider(page, login) {
  await page.waitForSelector('input[name="login"]');
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', 'any password');
  await page.click('button[type="submit"]');
}

async function users() {
  const r = await mcpgate(['user', 'list', '--json'], { dataDir: server.dataDir });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function auditEvents() {
  const r = await mcpgate(['audit', '--json', '--limit', '200'], { dataDir: server.dataDir });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** Goes from mcpgate's sign-in page through a provider; resolves on mcpgate's next page. */
async function viaProvider(page, buttonName, login) {
  await page.getByRole('link', { name: `Continue with ${buttonName}` }).click();
  await signInAtProvider(page, login);
  await page.waitForURL((u) => u.origin === server.base && !u.pathname.startsWith('/login/idp/'), { timeout: 15000 }).catch(() => {});
  await page.waitForLoadState();
}

test('MCP client → mcpgate → Continue with Corp → provider sign-in → consent → tool call; the first sign-in creates the account', async () => {
  const cb = await callbackServer();
  const oauth = new MemoryProvider(cb.redirectUri, 'IdP test client');
  const url = new URL(server.mcpUrl);
  await assert.rejects(new Client({ name: 'i', version: '1' }).connect(new StreamableHTTPClientTransport(url, { authProvider: oauth })), UnauthorizedError);
  const context = await browser.newContext();
  const page = await context.newPage();
  const callback = cb.next();
  await page.goto(oauth.authUrls.at(-1));
  await page.getByRole('link', { name: 'Continue with Corp' }).waitFor();
  assert.ok(await page.getByRole('link', { name: 'Continue with Partner SSO' }).isVisible(), 'providers of the configuration file are offered');
  assert.ok(await page.locator('form[action="/login"]').isVisible(), 'password sign-in stays on by default');
  await shot(page, 'idp-1-login');
  await page.getByRole('link', { name: 'Continue with Corp' }).click();
  // the provider's own page
  await page.waitForSelector('input[name="login"]');
  assert.equal(new URL(page.url()).origin, provider.issuer);
  await shot(page, 'idp-2-provider');
  await signInAtProvider(page, 'carol@example.com');
  // back at mcpgate: its own consent
  await page.waitForSelector('form[action="/consent"]');
  assert.equal(new URL(page.url()).origin, server.base);
  assert.match(await page.locator('main').innerText(), /IdP test client/);
  await shot(page, 'idp-3-consent');
  await page.getByRole('button', { name: 'Allow' }).click();
  const params = await callback;
  assert.ok(params.code);
  const transport = new StreamableHTTPClientTransport(url, { authProvider: oauth });
  await transport.finishAuth(params.code);
  const client = new Client({ name: 'i', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(url, { authProvider: oauth }));
  const r = await client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 5, b: 8 } });
  assert.deepEqual(r.structuredContent, { result: 13 });
  await client.close();

  const carol = (await users()).find((u) => u.email === 'carol@example.com');
  assert.ok(carol, 'the account was created on first sign-in');
  assert.equal(carol.username, 'carol');
  const events = await auditEvents();
  assert.ok(events.some((e) => e.event === 'user_created' && e.user_id === carol.id));

  // The same person again, from a fresh browser: the same account, no second one.
  const again = await browser.newContext();
  const p2 = await again.newPage();
  await p2.goto(`${server.base}/login`);
  await viaProvider(p2, 'Corp', 'carol@example.com');
  assert.equal(new URL(p2.url()).pathname, '/apps');
  assert.equal((await users()).filter((u) => u.email === 'carol@example.com').length, 1);
  await again.close();
  await context.close();
});

test('without auto-create an unknown person is refused; an invited one is linked by verified email; unverified and disabled stay out', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.base}/login`);
  await viaProvider(page, 'Partner SSO', 'dave@example.com');
  await page.getByRole('alert').waitFor();
  assert.match(await page.locator('main').innerText(), /No account for you here[\s\S]*Ask an administrator to invite you/);
  await shot(page, 'idp-4-refused');
  assert.ok(!(await users()).some((u) => u.email === 'dave@example.com'), 'no account was created');
  assert.ok(!(await context.cookies()).some((c) => c.name === 'mcpgate_session'), 'no session');

  // invited by the operator (no password: this person signs in through the provider)
  const inv = await mcpgate(['user', 'add', 'dave', '--email', 'dave@example.com'], { dataDir: server.dataDir });
  assert.equal(inv.code, 0, inv.stderr);
  // The provider remembers dave's session there: no second sign-in form, straight back.
  await page.goto(`${server.base}/login`);
  await page.getByRole('link', { name: 'Continue with Partner SSO' }).click();
  await page.waitForURL((u) => u.origin === server.base && u.pathname === '/apps');
  assert.equal(new URL(page.url()).pathname, '/apps', 'signed in');
  const dave = (await users()).find((u) => u.username === 'dave');
  assert.ok((await auditEvents()).some((e) => e.event === 'idp_identity_linked' && e.user_id === dave.id), 'the link is audited');

  // an unverified email never links, even to an invited account
  await mcpgate(['user', 'add', 'erin', '--email', 'unverified-erin@example.com'], { dataDir: server.dataDir });
  const c2 = await browser.newContext();
  const p2 = await c2.newPage();
  await p2.goto(`${server.base}/login`);
  await viaProvider(p2, 'Partner SSO', 'unverified-erin@example.com');
  await p2.getByRole('alert').waitFor();
  assert.match(await p2.locator('main').innerText(), /Email address not verified/);
  await shot(p2, 'idp-5-unverified');
  assert.ok(!(await c2.cookies()).some((c) => c.name === 'mcpgate_session'));

  // disabled users stay out whichever way they sign in
  assert.equal((await mcpgate(['user', 'disable', 'dave'], { dataDir: server.dataDir })).code, 0);
  const c3 = await browser.newContext();
  const p3 = await c3.newPage();
  await p3.goto(`${server.base}/login`);
  await viaProvider(p3, 'Partner SSO', 'dave@example.com');
  await p3.getByRole('alert').waitFor();
  assert.match(await p3.locator('main').innerText(), /Account disabled/);
  await Promise.all([context.close(), c2.close(), c3.close()]);
});

test('an administrator\'s account is never linked by email: the page says an administrator must link it, the operator does', async () => {
  const add = await mcpgate(['user', 'add', 'boss', '--email', 'boss@example.com', '--admin'], { dataDir: server.dataDir });
  assert.equal(add.code, 0, add.stderr);
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.base}/login`);
  await viaProvider(page, 'Partner SSO', 'boss@example.com');
  await page.getByRole('alert').waitFor();
  assert.match(await page.locator('main').innerText(), /An administrator must link this account/);
  await shot(page, 'idp-6-administrator');
  assert.ok(!(await context.cookies()).some((c) => c.name === 'mcpgate_session'), 'no session');
  const refused = (await auditEvents()).find((e) => e.event === 'idp_login_refused' && e.detail?.reason === 'AdministratorNotLinked');
  assert.ok(refused?.detail?.subject, `the refusal is audited with the subject: ${JSON.stringify(refused)}`);
  // The operator links it by hand; then the same sign-in enters.
  const link = await mcpgate(['--config', configFile, 'idp', 'link', 'partner', '--subject', refused.detail.subject, '--user', 'boss'], { dataDir: server.dataDir });
  assert.equal(link.code, 0, link.stderr);
  await page.goto(`${server.base}/login`);
  await page.getByRole('link', { name: 'Continue with Partner SSO' }).click();
  await page.waitForURL((u) => u.origin === server.base && u.pathname === '/apps');
  const boss = (await users()).find((u) => u.username === 'boss');
  assert.ok((await auditEvents()).some((e) => e.event === 'idp_identity_linked' && e.user_id === boss.id && e.detail?.by === 'operator'));
  await context.close();
});

test('cancelled, replayed, made-up and foreign-browser callbacks give a clear page and no session', async () => {
  // cancelled at the provider: its "Cancel" link answers access_denied
  const c1 = await browser.newContext();
  const p1 = await c1.newPage();
  await p1.goto(`${server.base}/login`);
  await p1.getByRole('link', { name: 'Continue with Corp' }).click();
  await p1.waitForSelector('input[name="login"]');
  await p1.getByRole('link', { name: /cancel/i }).click();
  await p1.getByRole('alert').waitFor();
  assert.match(await p1.locator('main').innerText(), /Sign-in cancelled/);
  assert.ok(!(await c1.cookies()).some((c) => c.name === 'mcpgate_session'));

  // a state nobody issued
  const r = await fetch(`${server.base}/login/idp/corp/callback?state=made-up&code=x`);
  assert.equal(r.status, 400);
  assert.match(await r.text(), /This sign-in link has expired/);
  assert.ok(!r.headers.getSetCookie().some((c) => c.startsWith('mcpgate_session=')));

  // finished in one browser, delivered to another: refused, and the state is spent.
  // (A cookie-jar browser here, which can stop before delivering the provider's redirect.)
  const jar = new Browser();
  let res = await jar.request(`${server.base}/login/idp/corp?next=/apps`);
  let url = res.headers.get('location');
  for (let i = 0; i < 10 && !url.startsWith(`${server.base}/login/idp/corp/callback`); i++) {
    res = await jar.request(url);
    if (res.status === 200) { // the provider's sign-in form
      const action = /action="([^"]+)"/.exec(await res.text())[1];
      res = await jar.post(new URL(action, url).toString(), [['prompt', 'login'], ['login', 'carol@example.com'], ['password', 'x']]);
    }
    url = new URL(res.headers.get('location'), url).toString();
  }
  const callbackUrl = url;
  assert.match(callbackUrl, /[?&]code=/, 'the provider redirected back with a code');
  const c3 = await browser.newContext();
  const p3 = await c3.newPage();
  await p3.goto(callbackUrl);
  assert.match(await p3.locator('main').innerText(), /not started in this browser/);
  assert.ok(!(await c3.cookies()).some((c) => c.name === 'mcpgate_session'));
  // and the rightful browser cannot use it afterwards either: states work once
  const late = await jar.request(callbackUrl);
  assert.equal(late.status, 400);
  assert.match(await late.text(), /This sign-in link has expired/);
  assert.ok(!jar.cookies.has('mcpgate_session'));

  // a completed sign-in's callback, replayed in the same browser
  const c4 = await browser.newContext();
  const p4 = await c4.newPage();
  let used;
  p4.on('request', (req) => { if (req.url().startsWith(`${server.base}/login/idp/corp/callback`)) used = req.url(); });
  await p4.goto(`${server.base}/login`);
  await viaProvider(p4, 'Corp', 'carol@example.com');
  assert.equal(new URL(p4.url()).pathname, '/apps');
  await c4.clearCookies();
  await p4.goto(used);
  assert.match(await p4.locator('main').innerText(), /This sign-in link has expired/);
  assert.ok(!(await c4.cookies()).some((c) => c.name === 'mcpgate_session'), 'a replayed state opens no session');
  await Promise.all([c1.close(), c3.close(), c4.close()]);
});

test('--password-login=false leaves only the providers', async () => {
  const off = await startMcpgate({ args: ['--password-login=false'] });
  try {
    const add = await mcpgate(['idp', 'add', 'corp', '--issuer', provider.issuer, '--client-id', 'mcpgate-rs', '--client-secret-stdin', '--display-name', 'Corp'],
      { input: SECRETS.rs, dataDir: off.dataDir });
    assert.equal(add.code, 0, add.stderr);
    const html = await (await fetch(`${off.base}/login`)).text();
    assert.match(html, /Continue with Corp/);
    assert.doesNotMatch(html, /action="\/login"/, 'no password form');
    const post = await fetch(`${off.base}/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: 'mcpgate_csrf=t' }, body: 'csrf=t&username=admin&password=whatever' });
    assert.equal(post.status, 403, 'password sign-in is refused');
    const list = await mcpgate(['idp', 'list', '--json'], { dataDir: off.dataDir });
    assert.equal(JSON.parse(list.stdout)[0].name, 'corp');
    assert.ok(!list.stdout.includes(SECRETS.rs), 'idp list never shows the secret');
    assert.equal((await mcpgate(['idp', 'remove', 'corp'], { dataDir: off.dataDir })).code, 0);
    assert.doesNotMatch(await (await fetch(`${off.base}/login`)).text(), /Continue with Corp/);
  } finally { await off.stop(); }
});

test('the provider\'s groups claim sets the memberships of the groups linked to it, at each sign-in', async () => {
  const run = async (...args) => {
    const r = await mcpgate(args, { dataDir: server.dataDir });
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const setGroups = async (login, groups) => {
    const r = await fetch(`${provider.issuer}/_test/groups/${encodeURIComponent(login)}`, { method: 'PUT', body: JSON.stringify(groups) });
    assert.equal(r.status, 204);
  };
  const members = async (name) => JSON.parse(await run('group', 'list', '--json')).find((g) => g.name === name).members;
  await run('group', 'add', 'finance', '--from-idp', 'corp');
  await run('group', 'add', 'staff');
  await run('scope', 'add', 'op:div', '--group', 'finance');
  const signIn = async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.base}/login`);
    await viaProvider(page, 'Corp', 'gina@example.com');
    assert.equal(new URL(page.url()).pathname, '/apps', 'signed in');
    await context.close();
  };
  // The provider lists finance (linked to corp), staff (not linked) and a name no group has.
  await setGroups('gina@example.com', ['finance', 'staff', 'never-created']);
  await signIn();
  assert.deepEqual(await members('finance'), [{ user: 'gina', source: 'provider' }]);
  assert.deepEqual(await members('staff'), [], 'a group not linked to the provider is not set by it');
  assert.ok(!JSON.parse(await run('group', 'list', '--json')).some((g) => g.name === 'never-created'), 'never created');
  // An operator adds gina to staff by hand; the provider drops finance.
  await run('group', 'member', 'add', 'staff', 'gina');
  await setGroups('gina@example.com', ['staff']);
  await signIn();
  assert.deepEqual(await members('finance'), [], 'the sign-in without the group removes it');
  assert.deepEqual(await members('staff'), [{ user: 'gina', source: 'manual' }], 'a membership added by hand stays');
  const events = await auditEvents();
  assert.ok(events.some((e) => e.event === 'member_removed' && e.detail?.by === 'idp:corp' && e.detail?.group === 'finance'), 'the provider is named as who removed it');
});
