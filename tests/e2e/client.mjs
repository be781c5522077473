// A real MCP client: the official TypeScript SDK's client with its OAuth
// support (discovery from the 401, PKCE, resource), connecting through
// Drawbridge's gateway twice: once with dynamic registration, once with a
// Client ID Metadata Document served by cimd-host.mjs (checks prefixed
// `CIMD:`). The "browser" is a small user agent that follows redirects,
// keeps cookies and approves the consent page.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, refreshAuthorization } from '@modelcontextprotocol/sdk/client/auth.js';
import { browse } from './browser.mjs';
import { serveMetadataDocument } from './cimd-host.mjs';

const GATEWAY = new URL(process.env.GATEWAY_URL);
const BASE = process.env.DRAWBRIDGE_URL;
const ADMIN = process.env.ADMIN_TOKEN;
const EMAIL = process.env.EXPECTED_EMAIL;
const REDIRECT = 'http://127.0.0.1:9/mcp-client-callback';

let passed = 0, failed = 0;
function check(name, ok, detail = '') {
  if (ok) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name} ${detail}`); }
}

/**
 * The SDK's OAuth client provider. With `clientMetadataUrl`, the SDK uses that
 * URL as client_id (a Client ID Metadata Document) when the authorization
 * server supports it; without, it registers dynamically.
 */
class Provider {
  constructor(check, clientMetadataUrl = undefined) {
    this.check = check; this.clientMetadataUrl = clientMetadataUrl;
    this.info = undefined; this.saved = undefined; this.verifier = undefined; this.code = undefined;
    this.savedClients = []; this.consentPage = undefined;
  }
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return { client_name: 'Drawbridge e2e MCP client', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  clientInformation() { return this.info; }
  saveClientInformation(info) { this.info = info; this.savedClients.push(info); }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; }
  async redirectToAuthorization(url) {
    this.check('the authorization request carries PKCE S256 and the resource', url.searchParams.get('code_challenge_method') === 'S256' && !!url.searchParams.get('resource'), url.href);
    this.code = await browse(url, REDIRECT, this.check, (html) => { this.consentPage = html; });
  }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
}

async function connect(provider) {
  const client = new Client({ name: 'drawbridge-e2e-client', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(GATEWAY, { authProvider: provider }));
  return client;
}

async function whoami(client) {
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  return result.content?.[0]?.text;
}

const admin = (path, method = 'GET') => fetch(`${BASE}/admin/v1${path}`, { method, headers: { authorization: `Bearer ${ADMIN}` } });

/**
 * One sign-in through the gateway with the SDK, then tool calls, a refresh,
 * and revocation through the admin API. `signedUp(provider, check)` checks
 * how the client got its client_id (registration or metadata document);
 * `listed(provider, check)` runs after the first calls, before revocation.
 */
async function run(check, provider, signedUp, listed = async () => {}) {
  let client;
  const transport = new StreamableHTTPClientTransport(GATEWAY, { authProvider: provider });
  try {
    client = new Client({ name: 'drawbridge-e2e-client', version: '1.0.0' });
    await client.connect(transport);
    check('the first connection is refused before sign-in', false);
  } catch (e) {
    check('the gateway answers 401 and the SDK starts OAuth', e instanceof UnauthorizedError, String(e));
    signedUp(provider, check);
    await transport.finishAuth(provider.code);
    check('the code exchange gave Drawbridge tokens', provider.saved?.access_token?.startsWith('mcp_at_') && provider.saved?.refresh_token?.startsWith('mcp_rt_'));
    client = await connect(provider);
  }
  const tools = await client.listTools();
  check('tools/list through the gateway', tools.tools.some((t) => t.name === 'whoami'), JSON.stringify(tools));
  check('the MCP server got the user\'s upstream token', (await whoami(client)) === EMAIL);
  await client.close();

  const fresh = await refreshAuthorization(BASE, { clientInformation: provider.info, refreshToken: provider.saved.refresh_token, resource: GATEWAY });
  check('refresh rotates the tokens', fresh.refresh_token && fresh.refresh_token !== provider.saved.refresh_token);
  provider.saveTokens(fresh);
  client = await connect(provider);
  check('a call with the refreshed token works', (await whoami(client)) === EMAIL);
  await client.close();
  await listed(provider, check);

  // The client id is a URL for a metadata-document client: one path segment.
  const revoke = await admin(`/clients/${encodeURIComponent(provider.info.client_id)}`, 'DELETE');
  check('the admin API revokes the client', revoke.status === 200, String(revoke.status));
  const after = await fetch(GATEWAY, {
    method: 'POST',
    headers: { authorization: `Bearer ${provider.saved.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  check('the next call after revocation is 401', after.status === 401, String(after.status));
  check('the 401 names the resource metadata', (after.headers.get('www-authenticate') || '').includes('resource_metadata='));
}

// Dynamic client registration (RFC 7591).
try {
  await run(check, new Provider(check), (provider) => {
    check('dynamic registration gave an mcp_ client id', provider.info?.client_id?.startsWith('mcp_'), JSON.stringify(provider.info));
  });
} catch (e) {
  check('the MCP client flow completed', false, e.stack || String(e));
}

// A Client ID Metadata Document: the client_id is the https URL of a JSON
// document about the client, which Drawbridge fetches (from cimd-host.mjs).
const CIMD_NAME = 'Drawbridge e2e CIMD client';
const cimdCheck = (name, ok, detail) => check(`CIMD: ${name}`, ok, detail);
const host = await serveMetadataDocument({
  client_name: CIMD_NAME, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'], token_endpoint_auth_method: 'none',
});
try {
  await run(cimdCheck, new Provider(cimdCheck, host.url), (provider, check) => {
    check('the SDK used the document URL as client id, without registering',
      provider.info?.client_id === host.url && provider.savedClients.every((i) => !i.client_id?.startsWith('mcp_')), JSON.stringify(provider.savedClients));
    check('Drawbridge fetched the metadata document', host.fetches() > 0, `${host.fetches()} fetches`);
    const page = provider.consentPage || '';
    const hosts = [...page.matchAll(/class="host">([^<]*)</g)].map((m) => m[1]); // shown prominently
    check('the consent page shows the document\'s client_name, the client_id host and the redirect host',
      page.includes(CIMD_NAME) && hosts.some((h) => h.startsWith('localhost')) && hosts.some((h) => h.startsWith('127.0.0.1')),
      page.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').slice(0, 600));
  }, async (provider, check) => {
    const list = await admin('/clients?kind=document').then((r) => r.json());
    check('the admin API lists the client among metadata-document clients', list.clients?.some((c) => c.client_id === host.url && c.document?.url === host.url), JSON.stringify(list));
    const one = await admin(`/clients/${encodeURIComponent(host.url)}`);
    const detail = one.status === 200 ? await one.json() : await one.text();
    check('the admin API shows the client, its document and live tokens',
      detail.client_id === host.url && detail.client_name === CIMD_NAME && detail.document?.fetched_at > 0 && detail.live_tokens > 0, `${one.status} ${JSON.stringify(detail)}`);
  });
} catch (e) {
  cimdCheck('the MCP client flow completed', false, e.stack || String(e));
}
host.close();
console.log(`mcp-client: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
