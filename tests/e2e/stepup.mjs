// Step-up authorization with the official TypeScript SDK's v2 client
// (@modelcontextprotocol/client), which handles a 403 insufficient_scope
// itself: it re-authorizes for the union of the scopes it holds and the
// ones the challenge names, skipping the refresh (a refresh cannot widen
// scopes, RFC 6749 §6). Drawbridge's gateway requires `profile` for the
// `display_name` tool (gateway.tool_scopes); a sign-in gets `openid email`
// by default. The consent page of the step-up lists only `profile` as new
// (this browser signed in before), and the new token reaches the MCP server
// with an upstream token that now carries the name claim.
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';
import { browseTo } from './browser.mjs';

const GATEWAY = new URL(process.env.GATEWAY_URL);
const EMAIL = process.env.EXPECTED_EMAIL;
const NAME = process.env.EXPECTED_NAME;
const REDIRECT = 'http://127.0.0.1:9/mcp-stepup-callback';

let passed = 0, failed = 0;
function check(name, ok, detail = '') {
  if (ok) { passed++; console.log(`ok   step-up: ${name}`); } else { failed++; console.log(`FAIL step-up: ${name} ${detail}`); }
}

class Provider {
  constructor() { this.info = undefined; this.saved = undefined; this.verifier = undefined; this.callback = undefined; this.pages = []; this.requests = []; }
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return { client_name: 'Drawbridge e2e step-up client', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  clientInformation() { return this.info; }
  saveClientInformation(info) { this.info = info; }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; }
  async redirectToAuthorization(url) {
    this.requests.push(url);
    // The callback's parameters: the SDK checks `iss` (RFC 9207).
    this.callback = await browseTo(url, REDIRECT, () => {}, (html) => this.pages.push(html));
  }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
}

const text = (result) => result.content?.[0]?.text;
// The consent page's text, split at "Already allowed": what it lists as new, and what as granted before.
const sections = (html) => {
  const words = (html || '').replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ');
  const at = words.indexOf('Already allowed');
  return at < 0 ? [words, ''] : [words.slice(0, at), words.slice(at)];
};

const provider = new Provider();
const scopesOf = (url) => new Set((url?.searchParams.get('scope') || '').split(' '));
let transport = new StreamableHTTPClientTransport(GATEWAY, { authProvider: provider });
let client = new Client({ name: 'drawbridge-e2e-stepup', version: '1.0.0' });
try {
  try {
    await client.connect(transport);
    check('the first connection is refused before sign-in', false);
  } catch (e) {
    check('the gateway answers 401 and the SDK starts OAuth', e instanceof UnauthorizedError, String(e));
  }
  await transport.finishAuth(provider.callback);
  // The 401's scope (the default scopes); the SDK adds offline_access.
  const first = scopesOf(provider.requests[0]);
  check('the first sign-in asked for the default scopes, not profile', first.has('openid') && first.has('email') && !first.has('profile'), provider.requests[0]?.href);
  check('the first token has the default scopes', provider.saved?.scope === 'openid email', JSON.stringify(provider.saved?.scope));
  const firstRefresh = provider.saved?.refresh_token;
  transport = new StreamableHTTPClientTransport(GATEWAY, { authProvider: provider });
  client = new Client({ name: 'drawbridge-e2e-stepup', version: '1.0.0' });
  await client.connect(transport);
  check('a tool that needs no more scopes works', text(await client.callTool({ name: 'whoami', arguments: {} })) === EMAIL);

  // display_name needs `profile`: 403 insufficient_scope, the SDK steps up.
  let stepped = false;
  try {
    await client.callTool({ name: 'display_name', arguments: {} });
    check('the call beyond the token is refused first', false);
  } catch (e) {
    stepped = e instanceof UnauthorizedError || e?.constructor?.name === 'UnauthorizedError';
    check('the 403 sends the SDK to re-authorize (not to refresh)', stepped, e?.stack || String(e));
  }
  const second = provider.requests[1];
  const asked = scopesOf(second);
  check('the step-up asks for the union of the scopes', ['openid', 'email', 'profile'].every((s) => asked.has(s)), second?.href);
  const [fresh, before] = sections(provider.pages[1]);
  check('the step-up consent page lists only the new scope as new',
    fresh.includes('See your basic profile information') && !fresh.includes('See your email address')
      && before.includes('See your email address') && !before.includes('See your basic profile information'),
    `${fresh.slice(0, 400)} | ${before.slice(0, 300)}`);
  await transport.finishAuth(provider.callback);
  check('the stepped-up token has the union of the scopes', (provider.saved?.scope || '').split(' ').sort().join(' ') === 'email openid profile', JSON.stringify(provider.saved?.scope));
  check('the stepped-up grant is a new one (a new refresh token)', provider.saved?.refresh_token && provider.saved.refresh_token !== firstRefresh);
  const name = text(await client.callTool({ name: 'display_name', arguments: {} }));
  check('the call now passes and the MCP server gets the widened upstream token', name === NAME, String(name));
  check('the earlier tool still works with the new token', text(await client.callTool({ name: 'whoami', arguments: {} })) === EMAIL);
} catch (e) {
  check('the step-up flow completed', false, e.stack || String(e));
}
await client.close().catch(() => {});
console.log(`mcp-stepup: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
