// Runs the real OpenID provider of tests-e2e/fixtures/oidc/ (the `oidc-provider`
// package) on a loopback port, with keys this module generates, so tests can both use
// the provider and forge tokens with its own keys (expired ones, for instance).
import { spawn } from 'node:child_process';
import { generateKeyPairSync, createHmac, sign as cryptoSign, randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { freePort } from './server.mjs';

const FIXTURE = resolve(import.meta.dirname, '../fixtures/oidc/provider.mjs');

/** Fresh signing keys: RSA 2048 (no `alg`, so RS256 and PS256 both use it) and P-256. */
export function generateKeys() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsaJwk = { ...rsa.privateKey.export({ format: 'jwk' }), kid: `rsa-${randomUUID().slice(0, 8)}`, use: 'sig' };
  const ecJwk = { ...ec.privateKey.export({ format: 'jwk' }), kid: `ec-${randomUUID().slice(0, 8)}`, use: 'sig', alg: 'ES256' };
  return { rsa: { ...rsa, jwk: rsaJwk }, ec: { ...ec, jwk: ecJwk }, jwks: [rsaJwk, ecJwk] };
}

/** Starts the provider; resolves with { issuer, port, stop() }. */
export async function startProvider({ port, keys, clients, resources = {}, accessTokenAlgs = {} }) {
  port ||= await freePort();
  const cfg = { port, keys, clients, resources, accessTokenAlgs };
  const child = spawn(process.execPath, [FIXTURE, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const issuer = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`provider did not start: ${err}`)), 20000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening (\S+)/);
      if (m) { clearTimeout(timer); ok(m[1]); }
    });
    child.once('exit', (code) => { clearTimeout(timer); fail(new Error(`provider exited ${code}: ${err}`)); });
  });
  return {
    issuer, port,
    logs: () => err,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
    },
  };
}

/** A client_credentials token from the provider for `resource` (RFC 8707). */
export async function clientCredentialsToken(issuer, { clientId, clientSecret, resource, scope }) {
  const meta = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const r = await fetch(meta.token_endpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, ...(scope ? { scope } : {}) }),
  });
  const body = await r.json();
  if (!r.ok) throw new Error(`token request failed: ${JSON.stringify(body)}`);
  return body.access_token;
}

const b64u = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
export const decodePart = (token, i) => JSON.parse(Buffer.from(token.split('.')[i], 'base64url'));

/** Signs a JWS with a private KeyObject: RS256, PS256 or ES256. */
export function signJws(header, claims, privateKey) {
  const input = `${b64u(header)}.${b64u(claims)}`;
  const opts = { key: privateKey };
  if (header.alg === 'ES256') opts.dsaEncoding = 'ieee-p1363';
  if (header.alg === 'PS256') { opts.padding = 6; opts.saltLength = 32; } // RSA_PKCS1_PSS_PADDING
  return `${input}.${cryptoSign('sha256', Buffer.from(input), opts).toString('base64url')}`;
}

/** An HS256 JWS with `secret` as the HMAC key (the algorithm-confusion attack). */
export function signHmac(header, claims, secret) {
  const input = `${b64u(header)}.${b64u(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** An unsigned JWS (`alg: none`). */
export function unsigned(header, claims) {
  return `${b64u(header)}.${b64u(claims)}.`;
}

export { b64u };
