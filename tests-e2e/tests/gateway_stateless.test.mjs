// Gateway mode, 2026-07-28 (stateless) requests to a stdio upstream: the real
// server-everything (which speaks the initialize revisions) served from the gateway's
// bounded pool of processes, to the official v2 TypeScript client pinned to 2026-07-28
// and to raw requests in the stateless shape; the pool's bound (a clear 503, not a
// hang); and the prompts and resources policy (403 step-up, denials, list filtering).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { EVERYTHING, startEverythingHttp, startGateway } from '../lib/gateway.mjs';
import { obtainTokens } from '../lib/flow.mjs';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTokenProxy } from '../lib/token-proxy.mjs';
import { runConformance } from '../lib/conformance.mjs';

const MODERN = '2026-07-28';
const POLICY = `
scopes = [{ name = "ev:tools", description = "Use the tools of the test server" },
          { name = "ev:prompts", description = "Get the simple prompt" },
          { name = "ev:docs", description = "Read the static documents" }]
default = "ev:tools"
prompts = [{ name = "simple-prompt", scope = "ev:prompts" }]
prompt_default = "deny"
hide_unauthorized_prompts = true
resources = [{ uri = "demo://resource/static/document/*", scope = "ev:docs" }]
resource_default = "deny"
hide_unauthorized_resources = true
timeout_secs = 20
`;

let upstream;
let server;
let all; // a token with every scope
before(async () => {
  upstream = await startEverythingHttp();
  server = await startGateway(`
[[upstream]]
name = "stdio"
command = "'${process.execPath}' '${EVERYTHING}' stdio"
pool_size = 1
pool_wait_ms = 500
${POLICY}

[[upstream]]
name = "http"
url = "${upstream.url}"
${POLICY}

[[upstream]]
name = "plain"
command = "'${process.execPath}' '${EVERYTHING}' stdio"
scopes = [{ name = "ev:plain", description = "Use the test server" }]
default = "ev:plain"
`);
  all = (await obtainTokens(server, server.password, { resource: `${server.base}/mcp/stdio` })).access_token;
});
after(async () => { await server?.stop(); await upstream?.stop(); });

let seq = 0;
/** One request in the 2026-07-28 shape: `_meta` and the standard headers, no session. */
async function modern(url, token, method, params = {}, { headers = {}, version = MODERN } = {}) {
  const id = `c-${++seq}`;
  const name = method === 'resources/read' ? params.uri : params.name;
  const r = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream',
      'mcp-protocol-version': version, 'mcp-method': method, ...(name ? { 'mcp-name': name } : {}), ...headers,
    },
    body: JSON.stringify({ jsonrpc: '2.0', id, method, params: { ...params,
      _meta: { 'io.modelcontextprotocol/protocolVersion': version, 'io.modelcontextprotocol/clientCapabilities': {} } } }),
  });
  const text = await r.text();
  const msgs = (r.headers.get('content-type') ?? '').startsWith('text/event-stream')
    ? text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)))
    : text ? [JSON.parse(text)] : [];
  const answer = msgs.find((m) => m.id !== undefined && !m.method);
  if (answer) assert.equal(answer.id, id, 'the answer carries the id the client sent');
  return { status: r.status, answer, msgs, headers: r.headers };
}

test('the v2 SDK client pinned to 2026-07-28 is served by the stdio pool', async () => {
  const url = new URL(`${server.base}/mcp/stdio`);
  const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${all}` } } });
  const client = new Client({ name: 'e2e-v2', version: '2' }, { versionNegotiation: { mode: { pin: MODERN } } });
  await client.connect(transport);
  try {
    assert.equal(transport.protocolVersion, MODERN);
    assert.ok(client.getServerCapabilities()?.tools, 'capabilities from server/discover');
    const tools = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(tools.includes('echo') && tools.includes('get-sum'), `${tools}`);
    const echo = await client.callTool({ name: 'echo', arguments: { message: 'stateless' } });
    assert.match(echo.content[0].text, /stateless/);
    const sum = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
    assert.match(JSON.stringify(sum.content), /5/);
    const prompt = await client.getPrompt({ name: 'simple-prompt' });
    assert.match(prompt.messages[0].content.text, /simple prompt/);
  } finally { await client.close().catch(() => {}); }
});

test('stateless requests: modern result fields, header and version checks, removed methods', async () => {
  const url = `${server.base}/mcp/stdio`;
  const d = await modern(url, all, 'server/discover');
  assert.equal(d.status, 200);
  assert.deepEqual(d.answer.result.supportedVersions, [MODERN]);
  assert.ok(d.answer.result._meta['io.modelcontextprotocol/serverInfo'].name);
  const list = await modern(url, all, 'tools/list');
  assert.equal(list.answer.result.resultType, 'complete');
  assert.equal(typeof list.answer.result.ttlMs, 'number');
  assert.ok(['public', 'private'].includes(list.answer.result.cacheScope));
  const call = await modern(url, all, 'tools/call', { name: 'echo', arguments: { message: 'hi' } });
  assert.equal(call.answer.result.resultType, 'complete');
  assert.match(call.answer.result.content[0].text, /hi/);
  // A header that disagrees with the body, an unknown version, a removed method.
  const mismatch = await modern(url, all, 'tools/call', { name: 'echo', arguments: { message: 'x' } }, { headers: { 'mcp-name': 'get-sum' } });
  assert.equal(mismatch.status, 400);
  assert.equal(mismatch.answer.error.code, -32020);
  const old = await modern(url, all, 'tools/list', {}, { version: '2099-01-01' });
  assert.equal(old.status, 400);
  assert.equal(old.answer.error.code, -32022);
  assert.deepEqual(old.answer.error.data.supported, [MODERN]);
  for (const removed of ['ping', 'initialize']) {
    const r = await modern(url, all, removed);
    assert.equal(r.status, 404, removed);
    assert.equal(r.answer.error.code, -32601);
  }
  // A method the upstream does not know: its -32601 becomes a 404, as a modern server's.
  const unknown = await modern(url, all, 'unknown/method');
  assert.equal(unknown.status, 404);
  assert.equal(unknown.answer.error.code, -32601);
  // The modern header without _meta: the modern error, not a demand for a session.
  const bare = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${all}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/list' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }) });
  assert.equal(bare.status, 400);
  const bareBody = await bare.json();
  assert.equal(bareBody.error.code, -32602);
  assert.equal(bareBody.id, 9);
  // A request of the initialize revisions without a session still needs one.
  const legacy = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${all}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) });
  assert.equal(legacy.status, 400);
  // No token, no pool: the guard answers first.
  const anon = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(anon.status, 401);
});

test('the pool is bounded: a request beyond it gets a 503 JSON-RPC error within the wait, and the pool recovers', async () => {
  const url = `${server.base}/mcp/stdio`;
  const slow = modern(url, all, 'tools/call', { name: 'trigger-long-running-operation', arguments: { duration: 3, steps: 3 } });
  await new Promise((r) => setTimeout(r, 700)); // the one pooled process is now lent out
  const t0 = Date.now();
  const busy = await modern(url, all, 'tools/call', { name: 'echo', arguments: { message: 'queued' } });
  const waited = Date.now() - t0;
  assert.equal(busy.status, 503);
  assert.equal(busy.headers.get('retry-after'), '5');
  assert.equal(busy.answer.error.code, -32603);
  assert.match(busy.answer.error.message, /busy/i);
  assert.ok(waited >= 400 && waited < 2500, `answered after the pool wait, not a hang (${waited} ms)`);
  const done = await slow;
  assert.equal(done.status, 200);
  assert.match(JSON.stringify(done.answer.result), /completed|Long running/i);
  assert.ok(done.msgs.some((m) => m.method === 'notifications/progress') || done.msgs.length >= 1);
  const again = await modern(url, all, 'tools/call', { name: 'echo', arguments: { message: 'after' } });
  assert.equal(again.status, 200);
  assert.match(again.answer.result.content[0].text, /after/);
});

test('prompts and resources policy: step-up for a missing scope, denial outside the table, filtered lists', async () => {
  for (const name of ['stdio', 'http']) {
    const url = `${server.base}/mcp/${name}`;
    const narrow = (await obtainTokens(server, server.password, { resource: url, approve: ['ev:tools'] })).access_token;
    const wide = (await obtainTokens(server, server.password, { resource: url })).access_token;
    // Refusals come from the gateway, before the upstream, whatever the revision.
    for (const token of [narrow]) {
      const r = await modern(url, token, 'prompts/get', { name: 'simple-prompt' });
      assert.equal(r.status, 403, name);
      const challenge = r.headers.get('www-authenticate');
      assert.match(challenge, /error="insufficient_scope"/);
      assert.match(challenge, /scope="ev:prompts"/);
      assert.match(challenge, new RegExp(`resource_metadata=".*/.well-known/oauth-protected-resource/mcp/${name}"`));
      const doc = await modern(url, token, 'resources/read', { uri: 'demo://resource/static/document/architecture.md' });
      assert.equal(doc.status, 403);
      assert.match(doc.headers.get('www-authenticate'), /scope="ev:docs"/);
    }
    const denied = await modern(url, wide, 'prompts/get', { name: 'args-prompt', arguments: { city: 'x' } });
    assert.equal(denied.status, 403, 'a prompt the table does not name is denied, whatever the scopes');
    assert.equal(denied.answer.error.code, -32001);
    const dyn = await modern(url, wide, 'resources/read', { uri: 'demo://resource/dynamic/text/1' });
    assert.equal(dyn.status, 403);
    assert.equal(dyn.answer.error.code, -32001);
    if (name !== 'stdio') continue; // lists and successes below go through the pool
    const ok = await modern(url, wide, 'prompts/get', { name: 'simple-prompt' });
    assert.equal(ok.status, 200);
    assert.match(ok.answer.result.messages[0].content.text, /simple prompt/);
    const prompts = async (t) => (await modern(url, t, 'prompts/list')).answer.result.prompts.map((p) => p.name);
    assert.deepEqual(await prompts(wide), ['simple-prompt']);
    assert.deepEqual(await prompts(narrow), []);
    const resources = async (t) => (await modern(url, t, 'resources/list')).answer.result;
    const w = await resources(wide);
    assert.ok(w.resources.length > 0 && w.resources.every((r) => r.uri.startsWith('demo://resource/static/document/')), JSON.stringify(w.resources.map((r) => r.uri)));
    assert.equal(w.cacheScope, 'private', 'a narrowed list is not for shared caches');
    assert.deepEqual((await resources(narrow)).resources, []);
    const read = await modern(url, wide, 'resources/read', { uri: w.resources[0].uri });
    assert.equal(read.status, 200);
    assert.equal(read.answer.result.contents[0].uri, w.resources[0].uri);
  }
});

// The official suite's stateless scenario, through the pool. Its checks that call the
// suite's own diagnostic tool (`test_missing_capability`), which server-everything does
// not have, cannot pass against it; every other check must.
const FIXTURE_ONLY = new Set([
  'sep-2575-server-rejects-undeclared-capability',
  'sep-2575-missing-capability-http-400',
]);

test('conformance server-stateless (2026-07-28) through the stdio pool', { timeout: 300000 }, async () => {
  const url = `${server.base}/mcp/plain`;
  const { access_token } = await obtainTokens(server, server.password, { resource: url });
  const proxy = await startTokenProxy(url, access_token);
  try {
    const dir = mkdtempSync(join(tmpdir(), 'mcpgate-gw-stateless-'));
    await runConformance(['server', '--url', proxy.url, '--scenario', 'server-stateless', '--spec-version', MODERN, '-o', dir], 240000);
    const checks = new Map();
    const walk = (d) => {
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (statSync(p).isDirectory()) walk(p);
        else if (e === 'checks.json') for (const c of JSON.parse(readFileSync(p, 'utf8'))) checks.set(c.id ?? c.name, c.status);
      }
    };
    walk(dir);
    assert.ok(checks.size >= 15, `checks ran: ${checks.size}`);
    const failed = [...checks].filter(([id, st]) => !['SUCCESS', 'SKIPPED', 'INFO'].includes(st) && !FIXTURE_ONLY.has(id));
    assert.deepEqual(failed, [], "every check passes but those needing the suite's own fixture");
    for (const id of ['sep-2575-server-implements-discover', 'sep-2575-http-server-method-not-found-404',
      'sep-2575-request-meta-invalid-missing-meta', 'sep-2575-http-server-header-mismatch-400']) {
      assert.equal(checks.get(id), 'SUCCESS', id);
    }
  } finally { await proxy.close(); }
});
