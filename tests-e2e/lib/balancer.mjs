// A stand-in for an HTTP load balancer in front of several mcpgate instances. It
// forwards each request unchanged (Host included, as a balancer for the public URL
// does) to the backend named by the `x-mcpgate-backend` header, else round-robin.
import http from 'node:http';

export async function startBalancer(port, backends) {
  const names = Object.keys(backends);
  let next = 0;
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const name = req.headers['x-mcpgate-backend'] || names[next++ % names.length];
    const p = http.request({ host: '127.0.0.1', port: backends[name], method: req.method, path: req.url, headers: req.headers, agent },
      (pr) => { res.writeHead(pr.statusCode, pr.rawHeaders); pr.pipe(res); });
    p.on('error', (e) => { if (!res.headersSent) res.writeHead(502); res.end(`balancer: ${e.message}`); });
    req.pipe(p);
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { close: () => new Promise((r) => { agent.destroy(); server.closeAllConnections?.(); server.close(r); }) };
}
