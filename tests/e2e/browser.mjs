// A small user agent for the sign-in: follows redirects, keeps cookies (sent
// only to the paths they were set for, as a browser does), approves
// Drawbridge's consent page by posting its form to the form's action. With
// no `redirect`, it follows to the end (a callback server that answers 200)
// and returns the last URL.
const jar = new Map(); // name -> { value, path }
function remember(res, url) {
  for (const c of res.headers.getSetCookie()) {
    const [pair, ...attributes] = c.split(';');
    const i = pair.indexOf('=');
    const path = attributes.map((a) => a.trim().match(/^path=(.*)$/i)?.[1]).find(Boolean)
      || url.pathname.replace(/\/[^/]*$/, '') || '/'; // RFC 6265 §5.1.4 default path
    jar.set(pair.slice(0, i).trim(), { value: pair.slice(i + 1), path });
  }
}
// RFC 6265 §5.1.4 path-match.
const pathMatches = (request, cookie) => request === cookie
  || (request.startsWith(cookie) && (cookie.endsWith('/') || request[cookie.length] === '/'));
const cookies = (url) => [...jar].filter(([, c]) => pathMatches(url.pathname, c.path)).map(([k, c]) => `${k}=${c.value}`).join('; ');

/**
 * Follows the sign-in from the authorization URL to the client's redirect;
 * answers the code. `onConsent` gets the consent page's HTML.
 */
export async function browse(start, redirect, check = () => {}, onConsent = () => {}) {
  const answer = await browseTo(start, redirect, check, onConsent);
  return typeof answer === 'string' ? answer : answer.get('code');
}

/**
 * As `browse`, answering the parameters of the client's redirect (`code`,
 * `state`, `iss`); with no `redirect`, the last URL.
 */
export async function browseTo(start, redirect, check = () => {}, onConsent = () => {}) {
  let url = new URL(start), method = 'GET', body;
  for (let hop = 0; hop < 30; hop++) {
    const res = await fetch(url, { method, body, redirect: 'manual', headers: { cookie: cookies(url), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) } });
    remember(res, url);
    method = 'GET'; body = undefined;
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location'), url);
      if (redirect && next.href.startsWith(redirect)) {
        if (next.searchParams.get('error')) throw new Error(`authorization failed: ${next.searchParams.get('error')}: ${next.searchParams.get('error_description')}`);
        return next.searchParams;
      }
      url = next;
      continue;
    }
    const html = await res.text();
    const field = (n) => (html.match(new RegExp(`name="${n}" value="([^"]*)"`)) || [])[1];
    if (res.status === 200 && field('csrf')) {
      check('Drawbridge shows its consent page', html.includes('Allow access?'));
      onConsent(html);
      const action = (html.match(/<form [^>]*action="([^"]*)"/) || [])[1];
      url = new URL(action.replaceAll('&amp;', '&'), url);
      method = 'POST';
      body = new URLSearchParams({ state: field('state'), csrf: field('csrf'), decision: 'approve' }).toString();
      continue;
    }
    if (!redirect && res.status === 200) return url.href;
    throw new Error(`unexpected ${res.status} at ${url}: ${html.slice(0, 200)}`);
  }
  throw new Error('too many redirects');
}
