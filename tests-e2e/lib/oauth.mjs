// An OAuthClientProvider (the interface both TypeScript SDK generations use) backed by
// memory, with a real HTTP callback server on a loopback port.
import http from 'node:http';

export async function callbackServer() {
  const codes = [];
  const waiting = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://127.0.0.1');
    const result = Object.fromEntries(u.searchParams);
    codes.push(result);
    waiting.splice(0).forEach((w) => w(result));
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('You can close this window.');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    redirectUri: `http://127.0.0.1:${port}/callback`,
    codes,
    next: () => new Promise((r) => waiting.push(r)),
    close: () => new Promise((r) => server.close(r)),
  };
}

export class MemoryProvider {
  constructor(redirectUri, name = 'mcpgate e2e') {
    this.redirectUri = redirectUri;
    this.name = name;
    this.authUrls = [];
    this._tokens = undefined;
    this._client = undefined;
    this._verifier = undefined;
  }
  get redirectUrl() { return this.redirectUri; }
  get clientMetadata() {
    return {
      client_name: this.name,
      redirect_uris: [this.redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() { return this._client; }
  saveClientInformation(info) { this._client = info; }
  tokens() { return this._tokens; }
  saveTokens(t) { this._tokens = t; }
  redirectToAuthorization(url) { this.authUrls.push(url.toString()); }
  saveCodeVerifier(v) { this._verifier = v; }
  codeVerifier() { return this._verifier; }
  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'client') this._client = undefined;
  }
}
