// Gateway mode with a real third-party server: @modelcontextprotocol/server-everything
// (tests-e2e/fixtures/everything) behind mcpgate, once spawned over stdio and once over
// Streamable HTTP, driven by the official TypeScript SDK client through the whole OAuth
// flow: tools, resources, prompts, progress, sampling and elicitation requests from the
// server, per-tool scopes, tools/list filtering, sessions bound to their person.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { EVERYTHING, startEverythingHttp, startGateway, connectClient } from '../lib/gateway.mjs';
import { obtainTokens } from '../lib/flow.mjs';
import { mcpgate } from '../lib/server.mjs';

const SCOPES = `
scopes = [{ name = "ev:echo", description = "Echo messages" },
          { name = "ev:tools", description = "Use the other tools of the test server" }]
tools = [{ name = "echo", scope = "ev:echo" }, { name = "*", scope = "ev:tools" }]
# Prompts and resources nobody lists would follow the tools' default (deny).
prompt_default = "ev:tools"
resource_default = "ev:tools"
timeout_secs = 20
`;

let upstream;
let server;
before(async () => {
  upstream = await startEverythingHttp();
  server = await startGateway(`
[[upstream]]
name = "stdio"
command = "'${process.execPath}' '${EVERYTHING}' stdio"
${SCOPES}

[[upstream]]
name = "http"
url = "${upstream.url}"
hide_unauthorized_tools = true
${SCOPES}
`, { args: ['--audit-interval', '1'] });
});
after(async () => { await server?.stop(); await upstream?.stop(); });

const capabilities = { sampling: {}, elicitation: { form: {} } };
const handlers = [
  [CreateMessageRequestSchema, async (req) => ({
    role: 'assistant', model: 'e2e', stopReason: 'endTurn',
    content: { type: 'text', text: `sampled ${req.params.messages.length} message(s)` },
  })],
  [ElicitRequestSchema, async () => ({ action: 'accept', content: { name: 'e2e' } })],
];

for (const name of ['stdio', 'http']) {
  test(`server-everything over ${name}: tools, resource, prompt, progress, sampling through the gateway`, async () => {
    const url = `${server.base}/mcp/${name}`;
    const { client, authUrl } = await connectClient(server, url, { capabilities, handlers });
    try {
      assert.equal(authUrl.searchParams.get('resource'), url, 'the upstream is its own resource (RFC 8707)');
      const prm = await (await fetch(`${server.base}/.well-known/oauth-protected-resource/mcp/${name}`)).json();
      assert.equal(prm.resource, url, 'RFC 9728 path-suffixed metadata');
      assert.deepEqual(prm.scopes_supported.sort(), ['ev:echo', 'ev:tools']);
      const as = await (await fetch(`${server.base}/.well-known/oauth-authorization-server`)).json();
      assert.ok(!as.scopes_supported.some((s) => s.startsWith('op:')), `no calculator scopes: ${as.scopes_supported}`);

      const tools = (await client.listTools()).tools.map((t) => t.name);
      for (const t of ['echo', 'get-sum', 'trigger-long-running-operation', 'trigger-sampling-request']) {
        assert.ok(tools.includes(t), `${t} listed: ${tools}`);
      }
      const echo = await client.callTool({ name: 'echo', arguments: { message: 'hello' } });
      assert.equal(echo.content[0].text, 'Echo: hello');
      const sum = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
      assert.match(sum.content[0].text, /is 5/);

      const resources = (await client.listResources()).resources;
      assert.ok(resources.length > 0);
      const read = await client.readResource({ uri: resources[0].uri });
      assert.equal(read.contents[0].uri, resources[0].uri);
      const prompt = await client.getPrompt({ name: 'simple-prompt' });
      assert.match(prompt.messages[0].content.text, /simple prompt/);

      const progress = [];
      const long = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } },
        undefined, { onprogress: (p) => progress.push(p) });
      assert.ok(long.content.length > 0);
      assert.ok(progress.length >= 2, `progress notifications arrived: ${JSON.stringify(progress)}`);

      const sampled = await client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hi', maxTokens: 10 } });
      assert.match(JSON.stringify(sampled.content), /sampled 1 message/, 'the server asked the client to sample, through the gateway');
    } finally { await client.close().catch(() => {}); }
  });
}

test('per-tool scopes: a token with ev:echo only calls echo; tools/list filtered where enabled', async () => {
  for (const name of ['stdio', 'http']) {
    const url = `${server.base}/mcp/${name}`;
    const { client, provider } = await connectClient(server, url, { approve: ['ev:echo'] });
    try {
      assert.equal(provider.tokens().scope, 'ev:echo');
      const echo = await client.callTool({ name: 'echo', arguments: { message: 'x' } });
      assert.equal(echo.content[0].text, 'Echo: x');
      await assert.rejects(client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }), /403|insufficient_scope/);
      const tools = (await client.listTools()).tools.map((t) => t.name);
      if (name === 'http') assert.deepEqual(tools, ['echo'], 'hide_unauthorized_tools');
      else assert.ok(tools.includes('get-sum'), 'stdio upstream lists every tool (filtering off)');
    } finally { await client.close().catch(() => {}); }
  }
});

test('a session is bound to the person who opened it; tokens are not accepted across upstreams', async () => {
  const add = await mcpgate(['user', 'add', 'bob', '--password-stdin'], { input: 'bob password 123\n', dataDir: server.dataDir });
  assert.equal(add.code, 0, add.stderr);
  for (const name of ['stdio', 'http']) {
    const url = `${server.base}/mcp/${name}`;
    const { client, transport } = await connectClient(server, url, { approve: ['ev:echo'] });
    try {
      const sid = transport.sessionId;
      assert.ok(sid, 'the upstream session id passes through');
      const bob = await obtainTokens(server, 'bob password 123', { resource: url, username: 'bob', approve: ['ev:echo'] });
      const r = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${bob.access_token}`, 'content-type': 'application/json',
          accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } } }),
      });
      assert.equal(r.status, 403, `another person's token cannot use the session (${name})`);
      assert.equal((await r.json()).id, 7);
      const other = name === 'stdio' ? 'http' : 'stdio';
      const cross = await fetch(`${server.base}/mcp/${other}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bob.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
      });
      assert.equal(cross.status, 401, 'a token for one upstream is refused by another (audience)');
      const echo = await client.callTool({ name: 'echo', arguments: { message: 'still mine' } });
      assert.equal(echo.content[0].text, 'Echo: still mine');
    } finally { await client.close().catch(() => {}); }
  }
});

test('the audit counts tool calls per upstream, tool and outcome', async () => {
  const deadline = Date.now() + 10000;
  let rows = [];
  for (;;) {
    const r = await mcpgate(['audit', '--json', '--limit', '1000'], { dataDir: server.dataDir });
    assert.equal(r.code, 0, r.stderr);
    rows = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.event === 'tool_calls');
    if (rows.some((e) => e.detail.tool === 'http/get-sum' && !e.detail.allowed)) break;
    if (Date.now() > deadline) assert.fail(`no per-upstream counts: ${JSON.stringify(rows)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const count = (tool, allowed) => rows.filter((e) => e.detail.tool === tool && e.detail.allowed === allowed).reduce((n, e) => n + e.detail.count, 0);
  assert.ok(count('stdio/echo', true) >= 2, 'allowed echo calls of the stdio upstream');
  assert.ok(count('http/echo', true) >= 2, 'allowed echo calls of the HTTP upstream');
  assert.ok(count('stdio/get-sum', false) >= 1 && count('http/get-sum', false) >= 1, 'refusals, per upstream');
});

test('a configuration that uses an undeclared scope is refused at start', async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'mcpgate-gw-bad-'));
  writeFileSync(join(dir, 'bad.toml'), '[[upstream]]\nname = "x"\nurl = "http://127.0.0.1:9/mcp"\ntools = [{ name = "t", scope = "nope" }]\n');
  const r = await mcpgate(['serve', '--config', join(dir, 'bad.toml'), '--listen', '127.0.0.1:0'], { dataDir: dir });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /scope "nope" is used but not declared/);
});
