// The official MCP conformance suite (@modelcontextprotocol/conformance,
// `authorization` command) against Drawbridge's authorization server. It
// prints an authorization URL and waits for the browser at its own
// callback; browser.mjs plays the browser.
import { spawn } from 'node:child_process';
import { browse } from './browser.mjs';

const BASE = process.env.DRAWBRIDGE_URL;
const NODE22 = process.env.NODE22;
const CLI = process.env.CONFORMANCE_CLI;
const PORT = process.env.CALLBACK_PORT;

const reg = await fetch(`${BASE}/oauth/register`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    client_name: 'MCP conformance suite',
    redirect_uris: [`http://localhost:${PORT}/callback`, `http://127.0.0.1:${PORT}/callback`],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'none',
  }),
}).then((r) => r.json());

let failed = 0;
const summaries = [];
for (const scenario of ['all authorization-server scenarios']) {
  const child = spawn(NODE22, [CLI, 'authorization', '--url', BASE, '--client-id', reg.client_id, '--port', PORT], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let browsing = null;
  const onData = (d) => {
    out += d;
    for (const line of d.toString().split('\n')) {
      if (!browsing && line.startsWith(`${BASE}/oauth/authorize?`)) {
        browsing = browse(line.trim()).catch((e) => { out += `\nbrowser: ${e}`; });
      }
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const code = await new Promise((resolve) => child.on('close', resolve));
  if (browsing) await browsing;
  const summary = (out.match(/Total: \d+ passed, \d+ failed/) || out.match(/Passed: \d+\/\d+, \d+ failed, \d+ warnings/) || ['(no summary)'])[0];
  summaries.push(`${scenario}: ${summary}`);
  console.log(`conformance ${scenario}: ${summary}`);
  for (const line of out.split('\n').filter((l) => /WARNING|✓|✗/.test(l) && !/oidc-provider/.test(l))) console.log(`  ${line.replace(/\x1b\[[0-9;]*m/g, '').trim()}`);
  if (code !== 0 || !/, 0 failed/.test(summary)) {
    failed++;
    console.log(out.slice(-3000));
  }
}
console.log(`${failed === 0 ? 'ok  ' : 'FAIL'} MCP conformance suite (authorization): ${summaries.join('; ')}`);
process.exit(failed === 0 ? 0 : 1);
