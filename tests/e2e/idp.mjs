// A real OpenID provider standing in for Google: oidc-provider with one
// confidential client (Drawbridge), PKCE required, refresh tokens, email
// claims, and login and consent completed automatically for a test user.
// CALLBACK lists Drawbridge's callbacks, space-separated (one per instance:
// at the root, and with a path behind path-proxy.mjs).
import Provider from 'oidc-provider';

const port = Number(process.env.IDP_PORT);
const issuer = `http://127.0.0.1:${port}`;
export const EMAIL = 'e2e-user@example.com';
export const NAME = 'E2E User';

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'drawbridge-e2e',
    client_secret: 'drawbridge-e2e-secret',
    redirect_uris: process.env.CALLBACK.split(' '),
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'offline_access'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, email: EMAIL, email_verified: true, name: NAME }),
  }),
  // Like Google with access_type=offline: a refresh token for this client.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  features: { devInteractions: { enabled: false }, revocation: { enabled: true }, userinfo: { enabled: true } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: { AccessToken: 3600, AuthorizationCode: 300, Interaction: 600, Session: 3600, Grant: 3600, IdToken: 3600, RefreshToken: 86400 },
});
provider.proxy = false;

// The user signs in and consents at once.
provider.use(async (ctx, next) => {
  if (ctx.path.startsWith('/interaction/')) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.prompt.name === 'login') {
      return provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: 'e2e-user-1' } }, { mergeWithLastSubmission: false });
    }
    const grant = details.grantId ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    for (const [indicator, scopes] of Object.entries(details.prompt.details.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    return provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  await next();
});

provider.listen(port, '127.0.0.1', () => console.log(`idp listening on ${issuer}`));
