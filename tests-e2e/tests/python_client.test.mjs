// The official Python MCP client (`mcp` on PyPI, in tests-e2e/.venv, installed by the
// test command) through the whole flow; see python_client.py.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { startMcpgate, freePort } from '../lib/server.mjs';
import { adminPassword } from '../lib/browser.mjs';

const python = resolve(import.meta.dirname, '../.venv/bin/python');
let server;
// With an issuer at the origin and with one that carries a path.
for (const path of ['', '/oauth/2.1']) {
  describe(path ? `issuer with a path (${path})` : 'issuer at the origin', () => {
    before(async () => {
      const port = await freePort();
      server = await startMcpgate({ port, publicUrl: `http://127.0.0.1:${port}${path}`, args: ['--access-token-ttl', '2'] });
    });
    after(async () => { await server?.stop(); });

    test('Python SDK: OAuth flow, calculator, refresh, 403, revocation', () => {
      assert.ok(existsSync(python), 'tests-e2e/.venv is missing: run ./scripts/test, which creates it');
      const r = spawnSync(python, [resolve(import.meta.dirname, 'python_client.py')], {
        env: { ...process.env, MCPGATE_MCP_URL: server.mcpUrl, MCPGATE_ADMIN_PASSWORD: adminPassword(server.output()) },
        encoding: 'utf8', timeout: 120000,
      });
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /all steps passed/);
    });
  });
}
