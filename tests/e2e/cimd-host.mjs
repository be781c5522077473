// Where a client publishes its Client ID Metadata Document (CIMD): an https
// server on localhost with the test certificate from tests/fixtures/tls
// (Drawbridge trusts its CA through DRAWBRIDGE_OAUTH__CIMD__EXTRA_CA_FILE).
// It serves one document at /oauth/client-metadata.json, whose client_id is
// that URL, and counts how often it was fetched.
import https from 'node:https';
import { readFileSync } from 'node:fs';

const tls = (name) => readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url));

/** Starts the host on a free port; answers { url, fetches(), close() }. */
export async function serveMetadataDocument(fields) {
  let fetches = 0, url;
  const server = https.createServer({ cert: tls('localhost.pem'), key: tls('localhost.key') }, (req, res) => {
    if (req.method === 'GET' && req.url === '/oauth/client-metadata.json') {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
      res.end(JSON.stringify({ client_id: url, ...fields }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://localhost:${server.address().port}/oauth/client-metadata.json`;
  return { url, fetches: () => fetches, close: () => server.close() };
}
