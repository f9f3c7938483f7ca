// A loopback reverse proxy that adds `Authorization: Bearer <token>` to each request,
// so that test tools which cannot send a token (the conformance suite) can reach a
// protected endpoint. Requests to the proxy's own Host/Origin are mapped to the
// upstream's; foreign Host/Origin values pass through untouched, so the suite's
// DNS-rebinding checks still reach mcpgate's own validation.
import http from 'node:http';

export async function startTokenProxy(upstream, token) {
  const up = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true });
  let own = [];
  const server = http.createServer((req, res) => {
    const headers = { ...req.headers };
    if (!headers.host || own.includes(headers.host)) headers.host = up.host;
    if (headers.origin && own.some((a) => headers.origin === `http://${a}`)) headers.origin = up.origin;
    if (token && !headers.authorization) headers.authorization = `Bearer ${token}`;
    const p = http.request({ hostname: up.hostname, port: up.port, method: req.method, path: req.url, headers, agent },
      (pr) => { res.writeHead(pr.statusCode, pr.statusMessage, pr.rawHeaders); pr.pipe(res); });
    p.on('error', (e) => { if (!res.headersSent) res.writeHead(502); res.end(`proxy: ${e.message}`); });
    req.pipe(p);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  own = [`127.0.0.1:${port}`, `localhost:${port}`];
  return {
    url: `http://127.0.0.1:${port}${up.pathname}`,
    close: () => new Promise((r) => { agent.destroy(); server.close(r); server.closeAllConnections?.(); }),
  };
}
