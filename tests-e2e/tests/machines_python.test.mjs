// Machines and enterprises with the official Python MCP client (`mcp` on PyPI, in
// tests-e2e/.venv): client_credentials with a secret and with private_key_jwt, and an
// organisation's ID-JAG (jwt-bearer grant), each ending in a calculator call; see
// machines_python.py. Secrets, keys and assertions reach the script in its environment.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { startMcpgate, mcpgate } from '../lib/server.mjs';
import { generateKeys, signJws } from '../lib/oidc.mjs';

const python = resolve(import.meta.dirname, '../.venv/bin/python');
const script = resolve(import.meta.dirname, 'machines_python.py');
const ALL = ['--scope', 'op:add', '--scope', 'op:sub', '--scope', 'op:mult', '--scope', 'op:div'];

let server; // the one most tests use
let short; // one issuing 2-second access tokens
let idp; // the organisation's provider: only its JWK Set, on loopback
let keys; // the provider's
let dir;
let agent; // a confidential client presenting the provider's ID-JAGs

/** The public half of a JWK. */
function publicJwk({ d, p, q, dp, dq, qi, ...pub }) { return pub; }

/** A one-shot CLI command against `srv`'s data directory and public URL; its output, parsed with --json. */
async function cli(srv, args) {
  const r = await mcpgate(args, { dataDir: srv.dataDir, env: { MCPGATE_PUBLIC_URL: srv.base, RUST_BACKTRACE: '0' } });
  assert.equal(r.code, 0, `mcpgate ${args.join(' ')}: ${r.stderr}`);
  return args.includes('--json') ? JSON.parse(r.stdout) : r.stdout;
}

/** Registers a machine for `srv`'s calculator. */
const machine = (srv, name, ...extra) =>
  cli(srv, ['client', 'add', '--name', name, '--machine', '--resource', srv.mcpUrl, ...extra, '--json']);

/** Runs the script in `mode` without blocking this process (the provider's JWK Set is served from here). */
function runPython(mode, env) {
  assert.ok(existsSync(python), 'tests-e2e/.venv is missing: run ./scripts/test, which creates it');
  return new Promise((ok, fail) => {
    const child = spawn(python, [script, mode], {
      env: {
        ...process.env, MCPGATE_MCP_URL: server.mcpUrl, MCPGATE_ISSUER: server.base,
        MCPGATE_AGENT_ID: agent.client_id, MCPGATE_AGENT_SECRET: agent.client_secret, ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
    child.once('error', fail);
    child.once('close', (code) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      ok({ code, stdout, stderr, result: line ? JSON.parse(line) : null });
    });
  });
}

function passed(r, mode) {
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, new RegExp(`${mode}: all steps passed`));
  return r.result;
}

/** ID-JAGs as the organisation's provider issues them for bea and the agent: op:add
 * and op:mult, each with its own jti (each is good for one exchange). */
function idJags(n, forClient = agent) {
  const now = Math.floor(Date.now() / 1000);
  return JSON.stringify(Array.from({ length: n }, () => signJws(
    { alg: 'ES256', typ: 'oauth-id-jag+jwt', kid: keys.ec.jwk.kid },
    {
      iss: idp.base, sub: 'employee-42', aud: server.base, client_id: forClient.client_id, resource: server.mcpUrl,
      scope: 'op:add op:mult', jti: randomUUID(), iat: now, exp: now + 300,
      email: 'bea@example.com', email_verified: true,
    },
    keys.ec.privateKey)));
}

/** A machine authenticating with the keys of `jwks` (a JWK Set file; no secret). */
async function keyMachine(name, jwks) {
  const file = join(dir, `${randomUUID()}.json`);
  writeFileSync(file, JSON.stringify({ keys: jwks.map(publicJwk) }));
  const m = await machine(server, name, ...ALL, '--jwks-file', file);
  assert.ok(m.client_id);
  assert.equal(m.client_secret, null, 'a machine with keys has no secret');
  return m.client_id;
}
const pem = (key) => key.export({ type: 'pkcs8', format: 'pem' });

before(async () => {
  keys = generateKeys();
  dir = mkdtempSync(join(tmpdir(), 'mcpgate-e2e-machines-py-'));
  const jwks = JSON.stringify({ keys: [publicJwk(keys.ec.jwk)] });
  idp = createServer((req, res) => {
    if (req.url === '/jwks') { res.writeHead(200, { 'content-type': 'application/json' }); res.end(jwks); return; }
    res.writeHead(404); res.end();
  });
  await new Promise((r) => idp.listen(0, '127.0.0.1', r));
  idp.base = `http://127.0.0.1:${idp.address().port}`;
  [server, short] = await Promise.all([startMcpgate(), startMcpgate({ args: ['--access-token-ttl', '2'] })]);
  await cli(server, ['idp', 'trust', 'corp', '--issuer', idp.base, '--jwks-uri', `${idp.base}/jwks`,
    '--allowed-domain', 'example.com', '--auto-create']);
  agent = await cli(server, ['client', 'add', '--name', 'Agent', '--confidential', '--json']);
  assert.ok(agent.client_id && agent.client_secret);
});
after(async () => {
  await Promise.all([server?.stop(), short?.stop()]);
  await new Promise((r) => (idp ? idp.close(r) : r()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('ClientCredentialsOAuthProvider (client_secret_basic): a machine calls the calculator as itself; no refresh token, a new token once one ends', async () => {
  const m = await machine(server, 'Nightly job', ...ALL);
  assert.ok(m.client_id && m.client_secret, 'a machine without keys gets a secret');
  const s = await machine(short, 'Nightly job', ...ALL);
  const result = passed(await runPython('secret-basic', {
    MCPGATE_CLIENT_ID: m.client_id, MCPGATE_CLIENT_SECRET: m.client_secret,
    MCPGATE_SHORT_MCP_URL: short.mcpUrl, MCPGATE_SHORT_ISSUER: short.base,
    MCPGATE_SHORT_CLIENT_ID: s.client_id, MCPGATE_SHORT_CLIENT_SECRET: s.client_secret,
  }), 'secret-basic');
  assert.equal(result.token_requests.basic[0].basic, true);
  assert.equal(result.token_requests.expiry.length, 2, 'asked again, with no refresh token to use');
});

test('client_secret_post, which the metadata advertises: ClientCredentialsOAuthProvider asked for it, IdentityAssertionOAuthProvider by default', async () => {
  const meta = await (await fetch(`${server.base}/.well-known/oauth-authorization-server`)).json();
  assert.ok(meta.token_endpoint_auth_methods_supported.includes('client_secret_post'));
  // A client uses the one method it was registered with: these two send the secret in the form.
  const post = ['--auth-method', 'client_secret_post'];
  const m = await machine(server, 'Posting job', ...ALL, ...post);
  const poster = await cli(server, ['client', 'add', '--name', 'Posting agent', '--confidential', ...post, '--json']);
  const result = passed(await runPython('secret-post', {
    MCPGATE_CLIENT_ID: m.client_id, MCPGATE_CLIENT_SECRET: m.client_secret, MCPGATE_ID_JAGS: idJags(1, poster),
    MCPGATE_AGENT_ID: poster.client_id, MCPGATE_AGENT_SECRET: poster.client_secret,
  }), 'secret-post');
  assert.equal(result.token_requests.client_credentials[0].client_secret_in_body, true);
  assert.equal(result.token_requests.id_jag[0].client_secret_in_body, true);
});

test('ClientCredentialsOAuthProvider: a machine allowed fewer scopes than the resource challenges for still connects, with what it may have', async () => {
  // The SDK asks for the scopes of the 401 challenge (all the resource's), whatever
  // `scope` it was given: a machine limited to op:add gets a token for op:add alone.
  const m = await machine(server, 'Adder', '--scope', 'op:add');
  const result = passed(await runPython('narrow', { MCPGATE_CLIENT_ID: m.client_id, MCPGATE_CLIENT_SECRET: m.client_secret }), 'narrow');
  assert.equal(result.token_requests[0].status, 200);
  assert.ok(result.divide, 'divide refused');
});

test('PrivateKeyJWTOAuthProvider: machines with registered keys sign their own assertions (SignedJWTParameters, RS256 and ES256) and call the calculator', async () => {
  const machineKeys = generateKeys();
  const signers = [
    { client_id: await keyMachine('RSA job', [machineKeys.rsa.jwk]), alg: 'RS256', key: pem(machineKeys.rsa.privateKey) },
    { client_id: await keyMachine('EC job', [machineKeys.ec.jwk]), alg: 'ES256', key: pem(machineKeys.ec.privateKey) },
  ];
  const result = passed(await runPython('private-key-jwt', { MCPGATE_SIGNERS: JSON.stringify(signers) }), 'private-key-jwt');
  for (const alg of ['RS256', 'ES256']) {
    assert.equal(result.token_requests[alg][0].client_assertion_type, 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    assert.equal(result.token_requests[alg][0].basic, false);
  }
});

test('PrivateKeyJWTOAuthProvider: with an RSA and an EC key registered, an assertion without kid is verified by the one key its alg fits', async () => {
  // SignedJWTParameters puts no kid in its assertions; the header's alg names one key.
  const machineKeys = generateKeys();
  const id = await keyMachine('Two-key job', machineKeys.jwks);
  const signers = [
    { client_id: id, alg: 'RS256', key: pem(machineKeys.rsa.privateKey) },
    { client_id: id, alg: 'ES256', key: pem(machineKeys.ec.privateKey) },
  ];
  passed(await runPython('private-key-jwt', { MCPGATE_SIGNERS: JSON.stringify(signers) }), 'private-key-jwt');
});

test('IdentityAssertionOAuthProvider: an ID-JAG from a trusted provider gets a person a token, steps up within what it asserts, and calls the calculator', async () => {
  const result = passed(await runPython('id-jag', { MCPGATE_ID_JAGS: idJags(3) }), 'id-jag');
  assert.deepEqual(result.token_requests.map((t) => t.status), [200, 200, 200]);
  // The person was created for the verified email of an allowed domain, and holds a
  // grant to the agent they can see and revoke.
  const users = await cli(server, ['user', 'list', '--json']);
  const bea = users.find((u) => u.email === 'bea@example.com');
  assert.ok(bea, `an account for bea: ${JSON.stringify(users)}`);
  assert.equal(result.steps.subject, bea.id, 'the token names the person');
  const grants = await cli(server, ['grants', 'list', '--json']);
  assert.ok(grants.some((g) => g.client_id === agent.client_id), `a grant of bea to the agent: ${JSON.stringify(grants)}`);
});
