// The reverse proxy an operator puts in front of Drawbridge when its issuer
// has a path (BASE_URL=https://host/drawbridge): `/drawbridge/*` goes to
// Drawbridge with the prefix stripped; `/.well-known/*` goes through
// unchanged (RFC 8414 / RFC 9728 put a path issuer's metadata at the
// origin's root, with the path after the well-known segment); anything else
// is 404. Method, headers, body and status pass unchanged; nothing is
// rewritten. Each request is logged: `METHOD url -> forwarded path status`.
import http from 'node:http';

const PORT = Number(process.env.PROXY_PORT);
const PREFIX = process.env.PROXY_PREFIX; // e.g. /drawbridge
const TARGET = new URL(process.env.PROXY_TARGET); // Drawbridge, e.g. http://127.0.0.1:8002

/** The path to ask Drawbridge for, or null when the proxy does not route `url`. */
function route(url) {
  if (url === PREFIX || url.startsWith(`${PREFIX}/`) || url.startsWith(`${PREFIX}?`)) {
    const rest = url.slice(PREFIX.length);
    return rest.startsWith('/') ? rest : `/${rest}`;
  }
  if (url.startsWith('/.well-known/')) return url;
  return null;
}

http.createServer((req, res) => {
  const path = route(req.url);
  if (path === null) {
    console.log(`${req.method} ${req.url} -> (not routed) 404`);
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not routed by the path proxy\n');
    return;
  }
  const upstream = http.request({ hostname: TARGET.hostname, port: TARGET.port, method: req.method, path, headers: req.headers }, (answer) => {
    console.log(`${req.method} ${req.url} -> ${path} ${answer.statusCode}`);
    res.writeHead(answer.statusCode, answer.statusMessage, answer.rawHeaders);
    answer.pipe(res);
  });
  upstream.on('error', (e) => {
    console.log(`${req.method} ${req.url} -> ${path} failed: ${e.message}`);
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end();
  });
  req.pipe(upstream);
}).listen(PORT, '127.0.0.1', () => console.log(`path proxy on http://127.0.0.1:${PORT}${PREFIX} -> ${TARGET.origin}`));
