// The people's side in a real browser (Debian's chromium driven by playwright-core):
// first-run sign-in, consent with a scope unticked, a tool call from the official SDK
// client, the connected-apps page, revoke, and the client's next call refused.
// Screenshots of each page go to artifacts/browser/ at the repository root.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { startMcpgate, mcpgate } from '../lib/server.mjs';
import { adminPassword } from '../lib/browser.mjs';
import { callbackServer, MemoryProvider } from '../lib/oauth.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = resolve(import.meta.dirname, '../../artifacts/browser');
let server;
let browser;
before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await startMcpgate({ args: ['--audit-interval', '1'] });
  assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM}: ./scripts/test installs Debian's chromium`);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
});
after(async () => { await browser?.close(); await server?.stop(); });

const shot = (page, name) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });

test('first run → consent → SDK tool call → connected apps → revoke → 401', async () => {
  const password = adminPassword(server.output());
  const cb = await callbackServer();
  const provider = new MemoryProvider(cb.redirectUri, 'Browser test client');
  const url = new URL(server.mcpUrl);
  await assert.rejects(new Client({ name: 'b', version: '1' }).connect(new StreamableHTTPClientTransport(url, { authProvider: provider })), UnauthorizedError);

  const context = await browser.newContext({ viewport: { width: 420, height: 860 } }); // a phone-sized window
  const page = await context.newPage();
  const seen = [];
  page.on('response', (r) => seen.push({ url: r.url(), headers: r.headers() }));
  const callback = cb.next();
  await page.goto(provider.authUrls.at(-1));

  // sign in: the first-run administrator
  await page.waitForSelector('form[action="/login"]');
  await shot(page, '1-login');
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /Invalid username or password/);
  await shot(page, '2-login-error');
  await page.getByLabel('Password').fill(password);
  await page.keyboard.press('Enter'); // keyboard-usable

  // consent: who asks, what for; untick two scopes
  await page.waitForSelector('form[action="/consent"]');
  const text = await page.locator('main').innerText();
  assert.match(text, /Browser test client/);
  assert.match(text, /unverified/);
  assert.match(text, /127\.0\.0\.1/, 'the redirect host is shown');
  assert.match(text, /Divide numbers/, 'scopes are described in plain words');
  await page.getByLabel(/Divide numbers/).uncheck();
  await page.getByLabel(/Multiply numbers/).uncheck();
  await shot(page, '3-consent');
  await page.getByRole('button', { name: 'Allow' }).click();
  const params = await callback;
  assert.ok(params.code, 'the real callback server got the code');
  assert.equal(params.iss, server.base);

  const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  await transport.finishAuth(params.code);
  assert.equal(provider.tokens().scope, 'op:add op:sub', 'granted what the person left ticked');
  const client = new Client({ name: 'b', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
  const r = await client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 5, b: 8 } });
  assert.deepEqual(r.structuredContent, { result: 13 });

  // connected apps: the grant is listed; revoke it
  await page.goto(`${server.base}/apps`);
  await page.getByRole('heading', { name: 'Connected apps' }).waitFor();
  const row = page.getByRole('row', { name: /Browser test client/ });
  assert.match(await row.innerText(), /op:add/);
  assert.doesNotMatch(await row.innerText(), /op:div/);
  await shot(page, '4-connected-apps');
  const html = await page.content();
  const { access_token: access, refresh_token: refresh } = provider.tokens();
  for (const secret of [access, refresh, password]) {
    assert.ok(!html.includes(secret), 'no secret in the page');
  }
  await row.getByRole('button', { name: /Revoke/ }).click();
  await page.getByText('No application has access').waitFor();
  await shot(page, '5-revoked');

  const next = await fetch(server.mcpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'calculator', arguments: { operation: 'add', a: 1, b: 1 } } }),
  });
  assert.equal(next.status, 401, "the client's next call fails");
  await assert.rejects(client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 1, b: 1 } }));

  // every page refused framing and carried a strict CSP; no secret in any URL
  for (const s of seen.filter((x) => (x.headers['content-type'] || '').startsWith('text/html'))) {
    assert.equal(s.headers['x-frame-options'], 'DENY', s.url);
    assert.match(s.headers['content-security-policy'] || '', /frame-ancestors 'none'/, s.url);
    assert.ok(!s.url.includes(access) && !s.url.includes(refresh));
  }
  assert.ok(!server.logs().includes(password), 'the password is not in the logs');
  assert.ok(!server.logs().includes(refresh) && !server.logs().includes(access), 'no token in the logs');
  await cb.close();
  await context.close();
});

test('my OAuth clients: create one, the secret is shown once, delete it', async () => {
  const password = adminPassword(server.output());
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.base}/clients`);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'My OAuth clients' }).waitFor();
  await page.getByLabel('Name', { exact: true }).fill('My desktop agent');
  await page.getByLabel(/Redirect URIs/).fill('http://127.0.0.1/callback');
  await page.getByRole('button', { name: 'Create client' }).click();
  const secret = (await page.locator('#new-client-secret').innerText()).trim();
  assert.equal(secret.length, 43);
  await shot(page, '6-my-clients-created');
  await page.goto(`${server.base}/clients`); // a reload would re-submit the form
  assert.ok(!(await page.content()).includes(secret), 'shown exactly once');
  await page.getByRole('button', { name: /Delete My desktop agent/ }).click();
  await page.getByText('You have no clients.').waitFor();
  // a redirect outside the allow-list is refused with a clear message
  await page.getByLabel('Name', { exact: true }).fill('Bad');
  await page.getByLabel(/Redirect URIs/).fill('https://evil.example/cb');
  await page.getByRole('button', { name: 'Create client' }).click();
  assert.match(await page.getByRole('alert').innerText(), /evil\.example.*not on this server's list/);
  await context.close();
});

test('consent for an hour, a day, 30 days or until revoked; the apps page says when each ends and what each app did', async () => {
  const password = adminPassword(server.output());
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const choices = [['an hour', 'Duration hour', 3600], ['a day', 'Duration day', 86400], ['30 days', 'Duration month', 2592000], ['until I revoke it', 'Duration forever', 0]];
  const url = new URL(server.mcpUrl);
  const clients = [];
  for (const [label, name, secs] of choices) {
    const cb = await callbackServer();
    const provider = new MemoryProvider(cb.redirectUri, name);
    await assert.rejects(new Client({ name: 'd', version: '1' }).connect(new StreamableHTTPClientTransport(url, { authProvider: provider })), UnauthorizedError);
    const callback = cb.next();
    await page.goto(provider.authUrls.at(-1));
    if (await page.locator('form[action="/login"]').count()) {
      await page.getByLabel('Username').fill('admin');
      await page.getByLabel('Password').fill(password);
      await page.getByRole('button', { name: 'Sign in' }).click();
    }
    await page.waitForSelector('form[action="/consent"]');
    assert.ok(await page.getByLabel('until I revoke it').isChecked(), 'until revoked is the default');
    await page.getByLabel(label, { exact: true }).check();
    if (secs === 3600) await shot(page, '6-consent-duration');
    await page.getByRole('button', { name: 'Allow' }).click();
    const params = await callback;
    await new StreamableHTTPClientTransport(url, { authProvider: provider }).finishAuth(params.code);
    const tokens = provider.tokens();
    assert.ok(tokens.expires_in <= (secs || Infinity), `${name}: the access token does not outlive the grant`);
    const client = new Client({ name: 'd', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
    await client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 2, b: 2 } });
    clients.push({ name, secs, client, provider });
    await cb.close();
  }
  // grants list --json: each grant's end, and its calls once the audit is written
  const grants = JSON.parse((await mcpgate(['grants', 'list', '--json'], { dataDir: server.dataDir })).stdout);
  for (const { name, secs } of clients) {
    const g = grants.find((x) => x.client_name === name);
    assert.ok(g, name);
    if (secs) assert.ok(Math.abs(g.expires_at - (Date.now() / 1000 + secs)) < 120, `${name}: expires_at ${g.expires_at}`);
    else assert.equal(g.expires_at, null, `${name}: until revoked`);
  }
  // the apps page: when each ends, and a chart of its calls (the tool-call audit is
  // written every second here)
  const row = (name) => page.getByRole('row', { name: new RegExp(name) });
  const counted = async () => {
    for (const { name } of clients) if (!/\b1 allowed/.test(await row(name).innerText())) return false;
    return true;
  };
  const deadline = Date.now() + 20000;
  for (;;) {
    await page.goto(`${server.base}/apps`);
    if (await counted() || Date.now() > deadline) break;
    await page.waitForTimeout(250);
  }
  for (const { name } of clients) assert.match(await row(name).innerText(), /\b1 allowed/, `${name}: its call is counted in its own row`);
  assert.match(await row('Duration hour').innerText(), /ends in (60 minutes|1 hour)/);
  assert.match(await row('Duration day').innerText(), /ends in 24 hours/);
  assert.match(await row('Duration month').innerText(), /ends in 30 days/);
  assert.match(await row('Duration forever').innerText(), /until you revoke it/);
  assert.ok(await row('Duration hour').locator('svg rect.calls').count() > 0, 'an inline SVG chart of the calls');
  await shot(page, '7-connected-apps-activity');
  for (const c of clients) await c.client.close().catch(() => {});
  await context.close();
});
