// The official MCP conformance suite (@modelcontextprotocol/conformance,
// `authorization` command) against Drawbridge's authorization server at the
// issuer DRAWBRIDGE_URL (the root one, or one with a path behind
// path-proxy.mjs; ISSUER_LABEL names it in the output). It prints an
// authorization URL and waits for the browser at its own callback;
// browser.mjs plays the browser. The suite's summary leaves warnings out,
// so its per-check results (checks.json, one per scenario) are read back:
// every WARNING is printed, and one about Client ID Metadata Document
// support (`client_id_metadata_document_supported`, check id
// authorization-server-metadata-cimd) fails the run.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { browse } from './browser.mjs';

const BASE = process.env.DRAWBRIDGE_URL;
const LABEL = process.env.ISSUER_LABEL || 'root issuer';
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

const results = mkdtempSync(join(tmpdir(), 'conformance-'));
const child = spawn(NODE22, [CLI, 'authorization', '--url', BASE, '--client-id', reg.client_id, '--port', PORT, '--output-dir', results], { stdio: ['ignore', 'pipe', 'pipe'] });
let out = '';
let browsing = null;
const onData = (d) => {
  out += d;
  for (const line of d.toString().split('\n')) {
    if (!browsing && line.startsWith(`${BASE}/oauth/authorize?`)) {
      // A failed sign-in ends the run (the suite would wait minutes for its callback).
      browsing = browse(line.trim()).catch((e) => { out += `\nbrowser: ${e}\n`; child.kill(); });
    }
  }
};
child.stdout.on('data', onData);
child.stderr.on('data', onData);
const code = await new Promise((resolve) => child.on('close', resolve));
if (browsing) await browsing;

const summary = (out.match(/Total: \d+ passed, \d+ failed/) || ['(no summary)'])[0];
console.log(`conformance ${LABEL} ${BASE}: ${summary}`);
for (const line of out.split('\n').filter((l) => /✓|✗/.test(l) && !/oidc-provider/.test(l))) console.log(`  ${line.replace(/\x1b\[[0-9;]*m/g, '').trim()}`);
const checks = readdirSync(results).flatMap((dir) => {
  try { return JSON.parse(readFileSync(join(results, dir, 'checks.json'), 'utf8')); } catch { return []; }
});
rmSync(results, { recursive: true, force: true });
const warnings = checks.filter((c) => c.status === 'WARNING');
for (const w of warnings) console.log(`  WARNING [${w.id}] ${w.description}${w.errorMessage ? `: ${w.errorMessage}` : ''}`);
const cimd = warnings.filter((w) => /cimd|client_id_metadata_document/i.test(`${w.id} ${w.description} ${w.errorMessage || ''}`));
// The metadata scenario must have checked CIMD support at all.
const cimdChecked = checks.some((c) => c.id === 'authorization-server-metadata-cimd' && c.status === 'SUCCESS');

const passed = code === 0 && /, 0 failed/.test(summary) && checks.length > 0;
if (!passed) console.log(out.slice(-3000));
console.log(`${passed ? 'ok  ' : 'FAIL'} MCP conformance suite (authorization), ${LABEL}: ${summary}, ${warnings.length} warnings`);
const noCimdWarning = cimd.length === 0 && cimdChecked;
console.log(`${noCimdWarning ? 'ok  ' : 'FAIL'} the conformance suite (authorization), ${LABEL}, has no warning about Client ID Metadata Documents${cimdChecked || cimd.length ? '' : ' (authorization-server-metadata-cimd did not pass)'}`);
process.exit(passed && noCimdWarning ? 0 : 1);
