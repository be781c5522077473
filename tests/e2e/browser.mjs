// A small user agent for the sign-in: follows redirects, keeps cookies,
// approves Drawbridge's consent page. With no `redirect`, it follows to the
// end (a callback server that answers 200) and returns the last URL.
const jar = new Map();
function remember(res) {
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i).trim(), pair.slice(i + 1));
  }
}
const cookies = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');

/** Follows the sign-in from the authorization URL to the client's redirect; answers the code. */
export async function browse(start, redirect, check = () => {}) {
  let url = new URL(start), method = 'GET', body;
  for (let hop = 0; hop < 30; hop++) {
    const res = await fetch(url, { method, body, redirect: 'manual', headers: { cookie: cookies(), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) } });
    remember(res);
    method = 'GET'; body = undefined;
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location'), url);
      if (redirect && next.href.startsWith(redirect)) {
        if (next.searchParams.get('error')) throw new Error(`authorization failed: ${next.searchParams.get('error')}: ${next.searchParams.get('error_description')}`);
        return next.searchParams.get('code');
      }
      url = next;
      continue;
    }
    const html = await res.text();
    const field = (n) => (html.match(new RegExp(`name="${n}" value="([^"]*)"`)) || [])[1];
    if (res.status === 200 && field('csrf')) {
      check('Drawbridge shows its consent page', html.includes('Allow access?'));
      url = new URL('/oauth/consent', url);
      method = 'POST';
      body = new URLSearchParams({ state: field('state'), csrf: field('csrf'), decision: 'approve' }).toString();
      continue;
    }
    if (!redirect && res.status === 200) return url.href;
    throw new Error(`unexpected ${res.status} at ${url}: ${html.slice(0, 200)}`);
  }
  throw new Error('too many redirects');
}

