// Obtaining tokens through mcpgate's real flow, without an SDK: register (RFC 7591),
// authorize with PKCE, sign in and consent in the Browser, exchange the code.
import { createHash, randomBytes } from 'node:crypto';
import { Browser } from './browser.mjs';

export const b64url = (buf) => buf.toString('base64url');

export async function register(base, redirectUri, extra = {}, headers = {}) {
  const r = await fetch(`${base}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ redirect_uris: [redirectUri], client_name: 'e2e', token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'], ...extra }),
  });
  if (r.status !== 201) throw new Error(`registration failed: ${r.status} ${await r.text()}`);
  return r.json();
}

/** Runs the flow for the admin; returns the token response. */
export async function obtainTokens(server, password, { scope, approve, resource = server.mcpUrl, via = {}, username = 'admin' } = {}) {
  const on = (step) => (via[step] ? { 'x-mcpgate-backend': via[step] } : {});
  const redirectUri = 'http://127.0.0.1:1/callback'; // never contacted: the code is read from the redirect
  const { client_id } = await register(server.base, redirectUri, {}, on('register'));
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const u = new URL(`${server.base}/authorize`);
  u.search = new URLSearchParams({ response_type: 'code', client_id, redirect_uri: redirectUri, code_challenge: challenge,
    code_challenge_method: 'S256', resource, state: 's', ...(scope ? { scope } : {}) }).toString();
  const browser = new Browser(on('browser'));
  browser.finish = async (x) => x; // do not deliver the redirect
  const cb = new URL(await browser.authorize(u.toString(), { username, password, approve }));
  const code = cb.searchParams.get('code');
  if (!code) throw new Error(`no code: ${cb}`);
  const r = await fetch(`${server.base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...on('token') },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, client_id, resource }),
  });
  if (r.status !== 200) throw new Error(`token exchange failed: ${r.status} ${await r.text()}`);
  // The code, verifier and signed-in browser too: tests replay the code or use the pages.
  return { client_id, code, code_verifier: verifier, redirect_uri: redirectUri, resource, browser, ...(await r.json()) };
}
