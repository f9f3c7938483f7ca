// Connected accounts, the per-person token kind: mcpgate (the front) puts a second
// mcpgate (the upstream: its own users, its own tokens, the calculator) behind its
// gateway with credentials = "per_person_token". A person's first call is answered with
// the MCP URL elicitation (-32042) naming a connect page bound to them; another person
// cannot use that page; once they give their own upstream token, their calls reach the
// upstream as themselves, and nobody else's do. A token the upstream refuses is
// forgotten and elicited again; disconnecting on the connected-apps page removes it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startMcpgate, mcpgate } from '../lib/server.mjs';
import { obtainTokens } from '../lib/flow.mjs';
import { field } from '../lib/browser.mjs';

const PASSWORD = 'a-long-enough-password-1';
let upstream; // the second mcpgate, with its own people
let front; // the gateway in front of it
let calcUrl; // the front's resource for the upstream

async function cli(srv, env, ...args) {
  const r = await mcpgate(args, { dataDir: srv.dataDir, input: PASSWORD, env });
  assert.equal(r.code, 0, `mcpgate ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A tool call through the front with `token`; the JSON-RPC answer. */
async function call(token, op = 'add') {
  const r = await fetch(calcUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'calculator', arguments: { operation: op, a: 5, b: 8 } } }),
  });
  assert.equal(r.status, 200);
  return r.json();
}

/** The URL the elicitation of `answer` names (it must be one). */
function elicited(answer) {
  assert.equal(answer.error?.code, -32042, JSON.stringify(answer));
  const [e] = answer.error.data.elicitations;
  assert.equal(e.mode, 'url');
  assert.ok(e.elicitationId);
  assert.ok(e.url.startsWith(`${front.base}/connections/calc?request=`), e.url);
  return e.url;
}

/** Gives `token` on the connect page at `url` in `browser` (signed in at the front). */
async function give(browser, url, token) {
  const page = await browser.request(url);
  const html = await page.text();
  assert.equal(page.status, 200, html.slice(0, 300));
  assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  return browser.post(`${front.base}/connections/calc`, [['csrf', field(html, 'csrf')], ['request', field(html, 'request')], ['token', token]]);
}

/** A stdio server whose one tool tells the SHA-256 of its TRACKER_TOKEN. */
const ENV_TOOL = `
import hashlib, json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m:
        continue
    r = {"content": []}
    if m.get("method") == "initialize":
        r = {"protocolVersion": m["params"]["protocolVersion"], "capabilities": {"tools": {}}, "serverInfo": {"name": "env", "version": "1"}}
    elif m.get("method") == "tools/list":
        r = {"tools": [{"name": "whose", "inputSchema": {"type": "object"}}]}
    elif m.get("method") == "tools/call":
        t = os.environ.get("TRACKER_TOKEN", "")
        r = {"content": [{"type": "text", "text": hashlib.sha256(t.encode()).hexdigest()}]}
    print(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": r}), flush=True)
`;
const sha = (t) => createHash('sha256').update(t).digest('hex');

before(async () => {
  upstream = await startMcpgate();
  const dir = mkdtempSync(join(tmpdir(), 'mcpgate-connected-'));
  const config = join(dir, 'mcpgate.toml');
  writeFileSync(join(dir, 'env_tool.py'), ENV_TOOL);
  writeFileSync(config, `
[[upstream]]
name = "tracker"
command = "python3 ${join(dir, 'env_tool.py')}"
credentials = "per_person_token"
credential_label = "a personal access token of the tracker"
env_from_person = { TRACKER_TOKEN = "tracker" }
scopes = [{ name = "tracker", description = "Use the tracker as yourself" }]
tools = [{ name = "*", scope = "tracker" }]

[[upstream]]
name = "calc"
url = "${upstream.mcpUrl}"
credentials = "per_person_token"
credential_label = "an access token of the calculator's own server"
scopes = [{ name = "calc", description = "Use the calculator" }]
tools = [{ name = "*", scope = "calc" }]
`);
  front = await startMcpgate({ args: ['--config', config] });
  front.config = config;
  calcUrl = `${front.base}/mcp/calc`;
  assert.match(front.logs(), /connections\/calc/, 'the connect page is printed at start');
  for (const srv of [upstream, front]) {
    for (const who of ['alice', 'bob']) await cli(srv, srv === front ? { MCPGATE_CONFIG: config } : {}, 'user', 'add', who, '--password-stdin');
  }
});
after(async () => { await front?.stop(); await upstream?.stop(); });

test('each person connects their own upstream account through the elicited page, and only they use it', async () => {
  const alice = await obtainTokens(front, PASSWORD, { username: 'alice', resource: calcUrl });
  const bob = await obtainTokens(front, PASSWORD, { username: 'bob', resource: calcUrl });
  const aliceUp = await obtainTokens(upstream, PASSWORD, { username: 'alice' });
  const bobUp = await obtainTokens(upstream, PASSWORD, { username: 'bob' });

  // The official SDK client sees the elicitation as the MCP error it is.
  const sdk = new Client({ name: 'connected', version: '1' });
  await assert.rejects(
    sdk.connect(new StreamableHTTPClientTransport(new URL(calcUrl), { requestInit: { headers: { authorization: `Bearer ${alice.access_token}` } } })),
    (e) => e.code === -32042 && e.data?.elicitations?.[0]?.mode === 'url',
  );

  const url = elicited(await call(alice.access_token));
  // Bob, signed in, cannot use the page made for Alice's call.
  const foreign = await bob.browser.request(url);
  assert.equal(foreign.status, 403);
  assert.match(await foreign.text(), /another person/);

  const done = await give(alice.browser, url, aliceUp.access_token);
  assert.equal(done.status, 200);
  assert.match(await done.text(), /connected/);
  // Good once: the page and its form refuse a spent request.
  assert.equal((await alice.browser.request(url)).status, 410);
  const form = await (await alice.browser.request(`${front.base}/connections/calc`)).text();
  const spent = await alice.browser.post(`${front.base}/connections/calc`,
    [['csrf', field(form, 'csrf')], ['request', new URL(url).searchParams.get('request')], ['token', aliceUp.access_token]]);
  assert.equal(spent.status, 410);

  const ok = await call(alice.access_token);
  assert.deepEqual(ok.result?.structuredContent, { result: 13 }, JSON.stringify(ok));
  // The official SDK client now connects and calls as Alice.
  const client = new Client({ name: 'connected', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(calcUrl), { requestInit: { headers: { authorization: `Bearer ${alice.access_token}` } } }));
  const r = await client.callTool({ name: 'calculator', arguments: { operation: 'multiply', a: 6, b: 7 } });
  assert.deepEqual(r.structuredContent, { result: 42 });
  await client.close();

  // Bob is asked for his own, never served with Alice's.
  const bobUrl = elicited(await call(bob.access_token));
  assert.notEqual(bobUrl, url);
  assert.equal((await give(bob.browser, bobUrl, bobUp.access_token)).status, 200);
  assert.deepEqual((await call(bob.access_token)).result?.structuredContent, { result: 13 });

  // The upstream is where Alice's calls act as Alice: ending her grant there refuses
  // them (and only them); the front forgets the refused token and asks again.
  await cli(upstream, {}, 'grants', 'revoke', '--user', 'alice', '--all');
  const deadline = Date.now() + 15000;
  let again;
  while (!(again = await call(alice.access_token)).error && Date.now() < deadline) await new Promise((ok2) => setTimeout(ok2, 100));
  const newUrl = elicited(again);
  assert.deepEqual((await call(bob.access_token)).result?.structuredContent, { result: 13 }, "Bob's account is his own");

  // Connected again with a fresh upstream token, listed on the connected-apps page,
  // then disconnected there: the next call asks again.
  const fresh = await obtainTokens(upstream, PASSWORD, { username: 'alice' });
  assert.equal((await give(alice.browser, newUrl, fresh.access_token)).status, 200);
  assert.deepEqual((await call(alice.access_token)).result?.structuredContent, { result: 13 });
  const apps = await alice.browser.request(`${front.base}/apps`);
  const html = await apps.text();
  assert.match(html, /Your accounts at other servers/);
  assert.match(html, /data-upstream="calc"[\s\S]*Disconnect/);
  assert.ok(!html.includes(fresh.access_token), 'the token is never shown');
  const off = await alice.browser.post(`${front.base}/connections/calc/disconnect`, [['csrf', field(html, 'csrf')]]);
  assert.equal(off.status, 303);
  elicited(await call(alice.access_token));
  // A disconnect without the form's CSRF token is refused.
  const forged = await bob.browser.post(`${front.base}/connections/calc/disconnect`, []);
  assert.equal(forged.status, 403);
  assert.deepEqual((await call(bob.access_token)).result?.structuredContent, { result: 13 });
});

test('a stdio upstream starts each person\'s own process with their own secret in its environment', async () => {
  const trackerUrl = `${front.base}/mcp/tracker`;
  const sdk = (token) => new StreamableHTTPClientTransport(new URL(trackerUrl), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  const alice = await obtainTokens(front, PASSWORD, { username: 'alice', resource: trackerUrl });
  const bob = await obtainTokens(front, PASSWORD, { username: 'bob', resource: trackerUrl });
  // No secret yet: the first request (initialize) is elicited, before any process starts.
  let url;
  await assert.rejects(new Client({ name: 'env', version: '1' }).connect(sdk(alice.access_token)), (e) => {
    url = e.data?.elicitations?.[0]?.url;
    return e.code === -32042;
  });
  assert.ok(url.startsWith(`${front.base}/connections/tracker?request=`), url);
  const page = await alice.browser.request(url);
  const html = await page.text();
  const given = await alice.browser.post(`${front.base}/connections/tracker`, [['csrf', field(html, 'csrf')], ['request', field(html, 'request')], ['token', 'alices-tracker-secret']]);
  assert.equal(given.status, 200);
  const form = await (await bob.browser.request(`${front.base}/connections/tracker`)).text();
  assert.equal((await bob.browser.post(`${front.base}/connections/tracker`, [['csrf', field(form, 'csrf')], ['token', 'bobs-tracker-secret']])).status, 200);

  const whose = async (token) => {
    const c = new Client({ name: 'env', version: '1' });
    await c.connect(sdk(token));
    const r = await c.callTool({ name: 'whose', arguments: {} });
    await c.close();
    return r.content[0].text;
  };
  // Each person's process has their own secret, whatever order they come in.
  assert.equal(await whose(alice.access_token), sha('alices-tracker-secret'));
  assert.equal(await whose(bob.access_token), sha('bobs-tracker-secret'));
  assert.equal(await whose(alice.access_token), sha('alices-tracker-secret'));
  // 2026-07-28 requests (the pool) too.
  const modern = async (token) => {
    const r = await fetch(trackerUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'whose' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'whose', arguments: {},
        _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
    });
    const text = await r.text();
    const last = text.includes('data:') ? text.trim().split('\n').filter((l) => l.startsWith('data:')).pop().slice(5) : text;
    return JSON.parse(last).result?.content?.[0]?.text;
  };
  assert.equal(await modern(bob.access_token), sha('bobs-tracker-secret'));
  assert.equal(await modern(alice.access_token), sha('alices-tracker-secret'));
  // Alice gives a new secret: her processes with the old one are not used again.
  const again = await (await alice.browser.request(`${front.base}/connections/tracker`)).text();
  assert.equal((await alice.browser.post(`${front.base}/connections/tracker`, [['csrf', field(again, 'csrf')], ['token', 'alices-new-secret']])).status, 200);
  assert.equal(await modern(alice.access_token), sha('alices-new-secret'));
  assert.equal(await whose(alice.access_token), sha('alices-new-secret'));
});

test('a 2026-07-28 client is asked in its own revision: an input_required result, then its retry goes through', async () => {
  const trackerUrl = `${front.base}/mcp/tracker`;
  await cli(front, { MCPGATE_CONFIG: front.config }, 'user', 'add', 'carol', '--password-stdin');
  const carol = await obtainTokens(front, PASSWORD, { username: 'carol', resource: trackerUrl });
  const send = async (caps, extra = {}) => {
    const r = await fetch(trackerUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${carol.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'whose' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'whose', arguments: {}, ...extra,
        _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': caps } } }),
    });
    const text = await r.text();
    const last = text.includes('data:') ? text.trim().split('\n').filter((l) => l.startsWith('data:')).pop().slice(5) : text;
    return { status: r.status, body: JSON.parse(last) };
  };
  // No URL elicitation declared: the capability is named, HTTP 400, never -32042.
  const formOnly = await send({ elicitation: {} });
  assert.equal(formOnly.status, 400);
  assert.equal(formOnly.body.error.code, -32021);
  assert.deepEqual(formOnly.body.error.data.requiredCapabilities, { elicitation: { url: {} } });
  // Declared: a result asking for one URL interaction (MRTR).
  const asked = await send({ elicitation: { url: {} } });
  assert.equal(asked.status, 200);
  assert.equal(asked.body.result.resultType, 'input_required', JSON.stringify(asked.body));
  const [[key, request]] = Object.entries(asked.body.result.inputRequests);
  assert.equal(request.method, 'elicitation/create');
  assert.equal(request.params.mode, 'url');
  assert.ok(request.params.url.startsWith(`${front.base}/connections/tracker?request=`));
  // The retry before connecting asks again; after, it goes through.
  const early = await send({ elicitation: { url: {} } }, { inputResponses: { [key]: { action: 'accept' } } });
  assert.equal(early.body.result.resultType, 'input_required');
  const html = await (await carol.browser.request(request.params.url)).text();
  assert.equal((await carol.browser.post(`${front.base}/connections/tracker`, [['csrf', field(html, 'csrf')], ['request', field(html, 'request')], ['token', 'carols-secret']])).status, 200);
  const done = await send({ elicitation: { url: {} } }, { inputResponses: { [key]: { action: 'accept' } } });
  assert.equal(done.body.result?.content?.[0]?.text, sha('carols-secret'), JSON.stringify(done.body));
});
