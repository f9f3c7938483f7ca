// The official TypeScript SDK client's whole OAuth flow against an https URL, run as
// its own process so that Node trusts the test's self-signed certificate the way an
// operator's clients would trust theirs: through NODE_EXTRA_CA_CERTS, read at start.
// Input: MCP_URL and MCPGATE_PASSWORD (environment). Output: one JSON line.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Browser } from './browser.mjs';
import { callbackServer, MemoryProvider } from './oauth.mjs';

const url = new URL(process.env.MCP_URL);
const cb = await callbackServer();
try {
  const provider = new MemoryProvider(cb.redirectUri, 'e2e behind TLS');
  const first = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' });
  const challenge = first.headers.get('www-authenticate');
  let refused = false;
  try {
    await new Client({ name: 'e2e-tls', version: '1' }).connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    refused = true;
  }
  const authUrl = new URL(provider.authUrls.at(-1));
  const browser = new Browser();
  const setCookies = [];
  const keep = browser.keep.bind(browser);
  browser.keep = (res) => { setCookies.push(...(res.headers.getSetCookie?.() ?? [])); keep(res); };
  const callback = new URL(await browser.authorize(authUrl.toString(), { username: 'admin', password: process.env.MCPGATE_PASSWORD }));
  await new StreamableHTTPClientTransport(url, { authProvider: provider }).finishAuth(callback.searchParams.get('code'));
  const client = new Client({ name: 'e2e-tls', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
  const result = await client.callTool({ name: 'calculator', arguments: { operation: 'add', a: 5, b: 8 } });
  await client.close();
  const meta = await (await fetch(new URL('/.well-known/oauth-authorization-server', url))).json();
  const apps = await browser.request(new URL('/apps', url).toString());
  console.log(JSON.stringify({
    status401: first.status, challenge, refused, authUrl: authUrl.toString(), iss: callback.searchParams.get('iss'),
    issuer: meta.issuer, tokenEndpoint: meta.token_endpoint, result: result.structuredContent,
    setCookies, hsts: apps.headers.get('strict-transport-security'), appsStatus: apps.status,
    tokenScope: provider.tokens()?.scope,
  }));
} finally {
  await cb.close();
}
