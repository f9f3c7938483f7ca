// The calculator through the official TypeScript SDK clients, on both protocol revisions:
// v1 (@modelcontextprotocol/sdk, 2025-11-25 initialize handshake) and
// v2 (@modelcontextprotocol/client, 2026-07-28 stateless).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { startMcpgate } from '../lib/server.mjs';

let server;
before(async () => { server = await startMcpgate(); });
after(async () => { await server?.stop(); });

test('v1 SDK (2025-11-25): calculator add 5 8 = 13', async () => {
  const client = new ClientV1({ name: 'e2e-v1', version: '1.0.0' });
  const transport = new TransportV1(new URL(server.mcpUrl));
  await client.connect(transport);
  assert.equal(transport.protocolVersion, '2025-11-25');
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name), ['calculator']);
  const r = await client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 5, b: 8 } });
  assert.equal(r.isError, false);
  assert.deepEqual(r.structuredContent, { result: 13 });
  assert.equal(r.content[0].text, '13');
  const bad = await client.callTool({ name: 'calculator', arguments: { operation: 'divide', a: 1, b: 0 } });
  assert.equal(bad.isError, true);
  await client.close();
});

test('v2 SDK (2026-07-28): calculator add 5 8 = 13', async () => {
  const client = new ClientV2({ name: 'e2e-v2', version: '2.0.0' }, { versionNegotiation: { mode: 'auto' } });
  const transport = new TransportV2(new URL(server.mcpUrl));
  await client.connect(transport);
  assert.equal(transport.protocolVersion, '2026-07-28');
  const r = await client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 5, b: 8 } });
  assert.deepEqual(r.structuredContent, { result: 13 });
  await client.close();
});
