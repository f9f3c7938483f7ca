// Transparency, measured: the official conformance suite's server scenarios (revision
// 2025-11-25, the one server-everything speaks) run once directly against
// server-everything over Streamable HTTP and once through the gateway (a token added by
// a loopback proxy, as in conformance.test.mjs). Every check that passes directly must
// pass through the gateway; checks the gateway passes on top are its own protections
// (DNS-rebinding refusal, 404 for an unknown session), listed below.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEverythingHttp, startGateway } from '../lib/gateway.mjs';
import { startTokenProxy } from '../lib/token-proxy.mjs';
import { runConformance } from '../lib/conformance.mjs';
import { obtainTokens } from '../lib/flow.mjs';

const GATEWAY_ONLY = new Set([
  'server-dns-rebinding-protection/localhost-host-rebinding-rejected',
  'server-server-session-lifecycle/server-session-terminated-returns-404',
]);

let upstream;
let server;
let proxy;
before(async () => {
  upstream = await startEverythingHttp();
  server = await startGateway('', { args: ['--upstream', upstream.url] });
  const { access_token } = await obtainTokens(server, server.password);
  proxy = await startTokenProxy(server.mcpUrl, access_token);
});
after(async () => { await proxy?.close(); await server?.stop(); await upstream?.stop(); });

/** Every check of a run: "scenario/check" → status. */
function checks(dir) {
  const out = new Map();
  const walk = (d) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (e === 'checks.json') {
        const scenario = d.split('/').at(-1).replace(/-\d{4}-\d\d-\d\dT.*$/, '');
        for (const c of JSON.parse(readFileSync(p, 'utf8'))) out.set(`${scenario}/${c.id ?? c.name}`, c.status);
      }
    }
  };
  walk(dir);
  return out;
}

async function suite(url) {
  const dir = mkdtempSync(join(tmpdir(), 'mcpgate-gw-conf-'));
  await runConformance(['server', '--url', url, '--suite', 'all', '--spec-version', '2025-11-25', '-o', dir], 600000);
  return checks(dir);
}

test('conformance server scenarios: the same checks pass directly and through the gateway', { timeout: 1200000 }, async () => {
  const direct = await suite(upstream.url);
  const gateway = await suite(proxy.url);
  const passing = (m) => new Set([...m].filter(([, s]) => s === 'SUCCESS').map(([k]) => k));
  const [d, g] = [passing(direct), passing(gateway)];
  console.log(`conformance, server-everything: ${d.size} passing directly, ${g.size} through the gateway ` +
    `(of ${direct.size} and ${gateway.size} checks)`);
  assert.ok(d.size >= 40, `the direct run ran (${d.size} passing)`);
  const lost = [...d].filter((k) => !g.has(k));
  assert.deepEqual(lost, [], 'every check passing directly passes through the gateway');
  const gained = [...g].filter((k) => !d.has(k) && !GATEWAY_ONLY.has(k));
  assert.deepEqual(gained, [], 'the only extra passes are the gateway\'s own protections');
});
