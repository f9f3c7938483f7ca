// mcpgate behind a TLS-terminating reverse proxy: Debian's nginx, run as this user
// with deploy/nginx.conf (the documented file, its ports filled in) and a self-signed
// certificate made by openssl now, in front of `mcpgate serve --public-url
// https://127.0.0.1:PORT`. The official TypeScript SDK client runs the whole OAuth
// flow through it, trusting the certificate through NODE_EXTRA_CA_CERTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { connect } from 'node:tls';
import { startMcpgate, freePort } from '../lib/server.mjs';
import { adminPassword } from '../lib/browser.mjs';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find(existsSync);
const CONF = resolve(import.meta.dirname, '../../deploy/nginx.conf');

let dir;
let server;
let nginx;
let tlsPort;

/** Resolves once a TLS handshake with the proxy succeeds (trusting `ca`). */
async function tlsUp(port, ca) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const ok = await new Promise((r) => {
      const s = connect({ host: '127.0.0.1', port, ca, servername: undefined }, () => { s.end(); r(true); });
      s.on('error', () => r(false));
    });
    if (ok) return;
    if (nginx.exitCode !== null) throw new Error(`nginx exited: ${readFileSync(join(dir, 'error.log'), 'utf8')}`);
    if (Date.now() > deadline) throw new Error('nginx did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  assert.ok(NGINX, "Debian's nginx is needed (scripts/test installs it)");
  dir = mkdtempSync(join(tmpdir(), 'mcpgate-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', key, '-out', cert], { stdio: 'ignore' });
  tlsPort = await freePort();
  const appPort = await freePort();
  // As documented: nginx is the one proxy whose X-Forwarded-For mcpgate believes.
  server = await startMcpgate({ port: appPort, publicUrl: `https://127.0.0.1:${tlsPort}`, args: ['--trusted-proxies', '127.0.0.1/32'] });
  // The documented server block, its values filled in as envsubst would.
  const values = {
    MCPGATE_SERVER_NAME: '127.0.0.1', MCPGATE_TLS_LISTEN: `127.0.0.1:${tlsPort}`,
    MCPGATE_TLS_CERT: cert, MCPGATE_TLS_KEY: key, MCPGATE_UPSTREAM: `127.0.0.1:${appPort}`,
  };
  const block = readFileSync(CONF, 'utf8').replace(/\$\{(MCPGATE_[A-Z_]+)\}/g, (m, k) => values[k] ?? m);
  writeFileSync(join(dir, 'mcpgate.conf'), block);
  mkdirSync(join(dir, 'tmp'));
  // The main context of a non-privileged nginx: everything under the temp prefix.
  const t = (n) => join(dir, 'tmp', n);
  writeFileSync(join(dir, 'nginx.conf'), `
${process.getuid?.() === 0 ? `user ${userInfo().username};` : ''}
worker_processes 1;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 128; }
http {
  access_log ${join(dir, 'access.log')};
  client_body_temp_path ${t('body')}; proxy_temp_path ${t('proxy')}; fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')}; scgi_temp_path ${t('scgi')};
  include ${join(dir, 'mcpgate.conf')};
}
`);
  execFileSync(NGINX, ['-t', '-q', '-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')]);
  nginx = spawn(NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
  await tlsUp(tlsPort, readFileSync(cert));
});

after(async () => {
  if (nginx && nginx.exitCode === null) {
    nginx.kill('SIGQUIT');
    await new Promise((r) => (nginx.exitCode !== null ? r() : nginx.once('exit', r)));
  }
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the TypeScript SDK client runs the whole OAuth flow through nginx with TLS; cookies are Secure and __Host- prefixed', async () => {
  const base = `https://127.0.0.1:${tlsPort}`;
  const out = execFileSync(process.execPath, [resolve(import.meta.dirname, '../lib/tls_client.mjs')], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem'), MCP_URL: `${base}/mcp`, MCPGATE_PASSWORD: adminPassword(server.output()) },
    encoding: 'utf8',
  });
  const r = JSON.parse(out.trim().split('\n').at(-1));
  assert.equal(r.status401, 401);
  assert.match(r.challenge, new RegExp(`resource_metadata="${base}/\\.well-known/oauth-protected-resource/mcp"`), 'the challenge names the https URL');
  assert.ok(r.refused, 'the first connection asked for authorization');
  assert.ok(r.authUrl.startsWith(`${base}/authorize?`), r.authUrl);
  assert.equal(new URL(r.authUrl).searchParams.get('resource'), `${base}/mcp`);
  assert.equal(r.issuer, base, 'metadata: the issuer is the public https URL');
  assert.equal(r.tokenEndpoint, `${base}/token`);
  assert.equal(r.iss, base, 'RFC 9207 iss');
  assert.deepEqual(r.result, { result: 13 });
  const names = r.setCookies.map((c) => c.split('=')[0]);
  // https at the origin's root: the __Host- prefix (RFC 6265bis §4.1.3.2), which
  // browsers accept only with Secure, Path=/ and no Domain; the session worked with it.
  assert.ok(names.includes('__Host-mcpgate_session') && names.includes('__Host-mcpgate_csrf'), names.join());
  for (const c of r.setCookies) {
    assert.ok(c.startsWith('__Host-'), `prefixed under https at the root: ${c}`);
    assert.match(c, /;\s*Secure(;|$)/i, `Secure under https: ${c}`);
    assert.match(c, /;\s*Path=\/(;|$)/i, `Path=/: ${c}`);
    assert.doesNotMatch(c, /;\s*Domain=/i, `no Domain: ${c}`);
    assert.match(c, /;\s*HttpOnly/i, c);
  }
  assert.equal(r.appsStatus, 200, 'the session works through the proxy');
  assert.equal(r.hsts, 'max-age=63072000', 'the proxy adds HSTS');
  const log = readFileSync(join(dir, 'access.log'), 'utf8');
  assert.match(log, /POST \/token /, 'the token request went through nginx');
});

test('plain http to the TLS port is refused; the app names only its https URL, whatever the Host', async () => {
  const r = await fetch(`http://127.0.0.1:${tlsPort}/login`);
  assert.equal(r.status, 400, 'nginx: plain HTTP request sent to the HTTPS port');
  // Straight to the app (as a misrouted request would reach it): absolute URLs still
  // come from --public-url, never from the request.
  const meta = await (await fetch(`http://127.0.0.1:${server.port}/.well-known/oauth-authorization-server`)).json();
  assert.equal(meta.issuer, `https://127.0.0.1:${tlsPort}`);
  assert.ok(Object.entries(meta).filter(([k]) => k.endsWith('_endpoint')).every(([, v]) => v.startsWith('https://')));
});
