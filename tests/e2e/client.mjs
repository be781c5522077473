// A real MCP client: the official TypeScript SDK's client with its OAuth
// support (discovery from the 401, dynamic registration, PKCE, resource),
// connecting through Drawbridge's gateway. The "browser" is a small user
// agent that follows redirects, keeps cookies and approves the consent page.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, refreshAuthorization } from '@modelcontextprotocol/sdk/client/auth.js';
import { browse } from './browser.mjs';

const GATEWAY = new URL(process.env.GATEWAY_URL);
const BASE = process.env.DRAWBRIDGE_URL;
const ADMIN = process.env.ADMIN_TOKEN;
const EMAIL = process.env.EXPECTED_EMAIL;
const REDIRECT = 'http://127.0.0.1:9/mcp-client-callback';

let passed = 0, failed = 0;
function check(name, ok, detail = '') {
  if (ok) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name} ${detail}`); }
}

class Provider {
  constructor() { this.info = undefined; this.saved = undefined; this.verifier = undefined; this.code = undefined; }
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return { client_name: 'Drawbridge e2e MCP client', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  clientInformation() { return this.info; }
  saveClientInformation(info) { this.info = info; }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; }
  async redirectToAuthorization(url) {
    check('the authorization request carries PKCE S256 and the resource', url.searchParams.get('code_challenge_method') === 'S256' && !!url.searchParams.get('resource'), url.href);
    this.code = await browse(url, REDIRECT, check);
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

const provider = new Provider();
try {
  let client;
  const transport = new StreamableHTTPClientTransport(GATEWAY, { authProvider: provider });
  try {
    client = new Client({ name: 'drawbridge-e2e-client', version: '1.0.0' });
    await client.connect(transport);
    check('the first connection is refused before sign-in', false);
  } catch (e) {
    check('the gateway answers 401 and the SDK starts OAuth', e instanceof UnauthorizedError, String(e));
    check('dynamic registration gave an mcp_ client id', provider.info?.client_id?.startsWith('mcp_'), JSON.stringify(provider.info));
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

  const revoke = await fetch(`${BASE}/admin/v1/clients/${provider.info.client_id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN}` } });
  check('the admin API revokes the client', revoke.status === 200, String(revoke.status));
  const after = await fetch(GATEWAY, {
    method: 'POST',
    headers: { authorization: `Bearer ${provider.saved.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  check('the next call after revocation is 401', after.status === 401, String(after.status));
  check('the 401 names the resource metadata', (after.headers.get('www-authenticate') || '').includes('resource_metadata='));
} catch (e) {
  check('the MCP client flow completed', false, e.stack || String(e));
}
console.log(`mcp-client: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
