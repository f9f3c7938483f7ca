// A person's browser, reduced to what the OAuth pages need: cookies, forms, redirects.
// It signs in, reads the consent page, ticks the chosen scopes and follows the final
// redirect to the client's callback (a real HTTP request to the callback server).

export class Browser {
  constructor(headers = {}) { this.cookies = new Map(); this.visited = []; this.headers = headers; }

  cookieHeader() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }

  keep(res) {
    for (const c of res.headers.getSetCookie?.() ?? []) {
      const [kv] = c.split(';');
      const i = kv.indexOf('=');
      this.cookies.set(kv.slice(0, i), kv.slice(i + 1));
    }
  }

  async request(url, init = {}) {
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...this.headers, ...(init.headers || {}), cookie: this.cookieHeader() } });
    this.keep(res);
    this.visited.push(`${init.method || 'GET'} ${url} -> ${res.status}`);
    return res;
  }

  async post(url, fields) {
    const body = new URLSearchParams();
    for (const [k, v] of fields) body.append(k, v);
    return this.request(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  }

  /**
   * Plays the person from an authorization URL to the client's callback.
   * `approve`: scopes to leave ticked (all offered when undefined); `deny`: press Deny.
   * Returns the final callback URL (with code or error).
   */
  async authorize(authUrl, { username, password, approve, deny = false }) {
    let url = authUrl;
    for (let hops = 0; hops < 12; hops++) {
      const res = await this.request(url);
      if (res.status === 303 || res.status === 302) {
        const next = new URL(res.headers.get('location'), url).toString();
        if (!next.startsWith(new URL(authUrl).origin)) return this.finish(next);
        url = next;
        continue;
      }
      const html = await res.text();
      if (res.status !== 200) throw new Error(`unexpected ${res.status} at ${url}: ${html.slice(0, 500)}`);
      const csrf = field(html, 'csrf');
      // Forms are found by where they post, wherever the server is mounted.
      const actions = [...html.matchAll(/<form method="post" action="([^"]+)"/g)].map((m) => m[1]);
      const login = actions.find((a) => a.endsWith('/login'));
      const consent = actions.find((a) => a.endsWith('/consent'));
      if (login) {
        const form = [['csrf', csrf], ['username', username], ['password', password], ['next', field(html, 'next')]];
        let r = await this.post(new URL(login, url), form);
        // "Sign-in is busy right now" (503 with Retry-After: the server bounds the
        // password hashes it computes at once): a person tries again, and so does this.
        for (let tries = 0; r.status === 503 && r.headers.get('retry-after') && tries < 20; tries++) {
          await new Promise((ok) => setTimeout(ok, 1000 * Number(r.headers.get('retry-after'))));
          r = await this.post(new URL(login, url), form);
        }
        if (r.status !== 303) throw new Error(`login failed: ${r.status} ${(await r.text()).slice(0, 300)}`);
        url = new URL(r.headers.get('location'), url).toString();
        continue;
      }
      if (consent) {
        const offered = [...html.matchAll(/name="scope_choice" value="([^"]+)"/g)].map((m) => m[1]);
        const chosen = approve ?? offered;
        const fields = [['csrf', csrf], ['request', field(html, 'request')], ['decision', deny ? 'deny' : 'approve']];
        for (const s of chosen) fields.push(['scope_choice', s]);
        const r = await this.post(new URL(consent, url), fields);
        if (r.status !== 303) throw new Error(`consent failed: ${r.status}`);
        return this.finish(new URL(r.headers.get('location'), url).toString());
      }
      throw new Error(`no form at ${url}`);
    }
    throw new Error('too many redirects');
  }

  async finish(callbackUrl) {
    // Deliver the redirect to the client's callback like a browser would.
    if (callbackUrl.startsWith('http')) await fetch(callbackUrl).catch(() => {});
    return callbackUrl;
  }
}

export function field(html, name) {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no ${name} field`);
  return m[1].replace(/&amp;/g, '&').replace(/&#x2f;|&#47;/gi, '/').replace(/&#61;/g, '=').replace(/&#63;/g, '?').replace(/&#38;/g, '&');
}

/** The administrator's one-time password from mcpgate's first-run message. */
export function adminPassword(output) {
  const m = /password: (\S+)/.exec(output);
  if (!m) throw new Error(`no first-run password in: ${output}`);
  return m[1];
}
