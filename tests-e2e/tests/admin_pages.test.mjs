// The operator's admin pages in a real browser (Debian's chromium driven by
// playwright-core): the first-run administrator signs in, creates a user, disables
// them (a token they obtained through the real flow stops at once), revokes a grant,
// filters the audit log and sees the activity chart; a person without the role gets
// 403. No page breaks the CSP (the chart is inline SVG). Screenshots go to
// tests-e2e/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { startMcpgate } from '../lib/server.mjs';
import { adminPassword } from '../lib/browser.mjs';
import { obtainTokens } from '../lib/flow.mjs';
import { launchChromium } from '../lib/chromium.mjs';

const SHOTS = resolve(import.meta.dirname, '../screenshots');
const ERIN_PASSWORD = 'erin-has-a-long-password';
let server;
let browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await startMcpgate();
  browser = await launchChromium();
});
after(async () => { await browser?.close(); await server?.stop(); });

const shot = (page, name) => page.screenshot({ path: `${SHOTS}/admin-${name}.png`, fullPage: true });

/** One calculator call with `token`; resolves with the HTTP status. */
async function call(token) {
  const r = await fetch(server.mcpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'calculator', arguments: { operation: 'add', a: 2, b: 3 } } }),
  });
  return r.status;
}

/** A browser page that records CSP violations and every response's headers. */
async function newPage(viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.violations = [];
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) page.violations.push(m.text()); });
  return page;
}

async function signIn(page, username, password) {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test('admin: create a user, disable them (their token stops), revoke a grant, filter the audit', async () => {
  const password = adminPassword(server.output());
  const page = await newPage();
  await page.goto(`${server.base}/admin`);
  await page.waitForSelector('form[action="/login"]');
  await signIn(page, 'admin', password);
  await page.waitForURL(`${server.base}/admin`);
  assert.equal(await page.locator('h1').innerText(), 'Activity');
  assert.equal(await page.locator('svg rect').count() > 0, true, 'the chart is drawn');

  // create a user
  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByLabel('User name', { exact: true }).fill('erin');
  await page.getByLabel(/^Password/).fill(ERIN_PASSWORD);
  await page.getByRole('button', { name: 'Create user' }).click();
  await page.getByRole('status').waitFor();
  assert.match(await page.getByRole('status').innerText(), /erin: created/);
  await shot(page, '1-users');

  // erin obtains a token through the real flow (register, authorize, sign in, consent, token)
  const erin = await obtainTokens(server, ERIN_PASSWORD, { username: 'erin' });
  assert.equal(await call(erin.access_token), 200, 'erin can call the tool');

  // disable erin: her token stops at once
  await page.getByRole('button', { name: 'Disable erin' }).click();
  await page.getByRole('status').waitFor();
  assert.match(await page.getByRole('status').innerText(), /erin: disabled/);
  assert.equal(await call(erin.access_token), 401, 'a disabled person\'s token stops at once');
  assert.match(await page.locator('tr[data-user="erin"]').innerText(), /disabled/);
  const refreshed = await fetch(`${server.base}/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: erin.refresh_token, client_id: erin.client_id }),
  });
  assert.equal(refreshed.status, 400, 'and so does her refresh token');

  // revoke a grant: the administrator's own, made to another client
  const mine = await obtainTokens(server, password);
  assert.equal(await call(mine.access_token), 200);
  await page.getByRole('link', { name: 'Grants' }).click();
  await page.getByLabel('Client ID').fill(mine.client_id);
  await page.getByRole('button', { name: 'Search' }).click();
  const rows = page.locator('tr[data-grant]');
  assert.equal(await rows.count(), 1, 'the search finds the one grant');
  await shot(page, '2-grants');
  await rows.getByRole('button', { name: /Revoke/ }).click();
  await page.waitForURL(`${server.base}/admin/grants`);
  assert.equal(await call(mine.access_token), 401, 'the revoked grant\'s token stops at once');

  // the audit, filtered by event, then by user
  await page.getByRole('link', { name: 'Audit' }).click();
  await page.getByLabel('Event').selectOption('user_disabled');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/event=user_disabled/);
  const events = await page.locator('tr[data-event]').evaluateAll((trs) => trs.map((t) => t.dataset.event));
  assert.deepEqual(events, ['user_disabled']);
  assert.match(await page.locator('tr[data-event]').innerText(), /erin[\s\S]*admin:admin/);
  await page.getByLabel('Event').selectOption('');
  await page.getByLabel('User name or id').fill('erin');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/user=erin/);
  const erinEvents = await page.locator('tr[data-event]').evaluateAll((trs) => trs.map((t) => t.dataset.event));
  for (const e of ['user_created', 'login_succeeded', 'user_disabled', 'grant_revoked']) assert.ok(erinEvents.includes(e), `${e} in ${erinEvents}`);
  assert.ok(!erinEvents.includes('key_retired'));
  const caption = await page.locator('figcaption').innerText();
  assert.match(caption, /[1-9]\d* sign-ins/, `the chart counts the sign-ins: ${caption}`);
  await shot(page, '3-audit');

  // the other pages render, on a phone too
  for (const p of ['clients', 'allowed', 'scopes']) {
    await page.getByRole('link', { name: { clients: 'Clients', allowed: 'Allowed AI clients', scopes: 'Scopes' }[p], exact: true }).click();
    await page.waitForURL(`${server.base}/admin/${p}`);
  }
  await page.setViewportSize({ width: 420, height: 860 });
  await page.goto(`${server.base}/admin`);
  await shot(page, '4-overview-phone');
  assert.deepEqual(page.violations, [], 'no CSP violation on any admin page');
});

test('a signed-in person without the admin role gets 403 on the admin pages', async () => {
  const password = adminPassword(server.output());
  const admin = await newPage();
  await admin.goto(`${server.base}/admin/users`);
  await signIn(admin, 'admin', password);
  await admin.waitForURL(`${server.base}/admin/users`);
  await admin.getByLabel('User name', { exact: true }).fill('frank');
  await admin.getByLabel(/^Password/).fill('frank-has-a-long-password');
  await admin.getByRole('button', { name: 'Create user' }).click();
  await admin.getByRole('status').waitFor();

  const page = await newPage();
  await page.goto(`${server.base}/admin`);
  await signIn(page, 'frank', 'frank-has-a-long-password');
  await page.waitForURL(`${server.base}/admin`);
  assert.match(await page.locator('h1').innerText(), /Administrators only/);
  for (const p of ['users', 'clients', 'allowed', 'scopes', 'grants', 'audit']) {
    const r = await page.goto(`${server.base}/admin/${p}`);
    assert.equal(r.status(), 403, p);
  }
  await shot(page, '5-forbidden');
});
