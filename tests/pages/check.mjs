// Walks the system's Chromium (driven by puppeteer-core) through the pages
// a real Drawbridge shows people, over HTTP as a person's browser would:
//   consent for a registered client, its dev provider sign-in page, consent
//   at a step-up (already-granted scopes apart), consent for a client known
//   by its metadata document with a loopback redirect, an error page, and the
//   access policy's refusal (on a second instance that refuses the demo user).
// Each page is looked at on a phone (390×844, and checked at 360 px) and a
// desktop (1280×800), light and dark; a screenshot of each view lands in
// OUT_DIR. Checks that can fail: the strict Content-Security-Policy header,
// no request leaving the page's origin (and no CSP violation), no horizontal
// scrolling at phone widths, dark colours under dark mode (light otherwise),
// tappable buttons with Approve the primary one, the operator's name and logo.
//
// Environment: BASE_URL (the instance), REFUSING_URL (the refusing one),
// SERVICE_NAME (its [pages] service_name), OUT_DIR, CHROMIUM (executable).
// Prints `pages check: …` and exits 1 when a check failed.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { serveMetadataDocument } from '../e2e/cimd-host.mjs';

const BASE = process.env.BASE_URL;
const REFUSING = process.env.REFUSING_URL;
const SERVICE = process.env.SERVICE_NAME || 'Drawbridge';
const OUT = process.env.OUT_DIR || 'target/pages';
const CLIENT_CALLBACK = 'https://notes.example.com/oauth/callback';
const LOOPBACK_CALLBACK = 'http://127.0.0.1:33418/callback';
mkdirSync(OUT, { recursive: true });

const failures = [];
let passed = 0;
const check = (name, ok, detail = '') => {
  if (ok) passed++;
  else failures.push(`${name}${detail ? `: ${String(detail).slice(0, 300)}` : ''}`);
};

const b64url = (buf) => buf.toString('base64url');
const pkce = () => {
  const verifier = b64url(randomBytes(32));
  return { verifier, challenge: b64url(createHash('sha256').update(verifier).digest()) };
};

async function register(base, body) {
  const res = await fetch(`${base}/oauth/register`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  const json = await res.json();
  if (res.status !== 201) throw new Error(`registration at ${base}: ${res.status} ${JSON.stringify(json)}`);
  return json.client_id;
}

function authorizeUrl(base, clientId, redirectUri, scope, challenge) {
  const url = new URL(`${base}/oauth/authorize`);
  const params = {
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope,
    state: b64url(randomBytes(12)), code_challenge: challenge, code_challenge_method: 'S256',
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.href;
}

// Relative luminance of a CSS rgb()/rgba() colour (WCAG), transparent → null.
function luminance(css) {
  const m = css.match(/rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/);
  if (!m || (m[4] !== undefined && Number(m[4]) === 0)) return null;
  const [r, g, b] = [m[1], m[2], m[3]].map((c) => {
    const s = Number(c) / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

const VIEWS = [
  { name: 'phone', width: 390, height: 844, mobile: true },
  { name: 'desktop', width: 1280, height: 800, mobile: false },
];
const SCHEMES = ['light', 'dark'];
const CSP = /^default-src 'none'; style-src 'unsafe-inline';( img-src data:;)? frame-ancestors 'none'; base-uri 'none'$/;

const profile = mkdtempSync(join(tmpdir(), 'pages-check-'));
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  userDataDir: profile,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-extensions', '--hide-scrollbars'],
});
const page = await browser.newPage();
let requests = [];
const consoleProblems = [];
let landedAt = null; // the client's redirect, answered here (never sent)
await page.setRequestInterception(true);
page.on('request', (req) => {
  requests.push(req.url());
  if (req.url().startsWith(CLIENT_CALLBACK)) {
    landedAt = new URL(req.url());
    req.respond({ status: 200, contentType: 'text/plain', body: 'back at the client' });
  } else {
    req.continue();
  }
});
page.on('console', (msg) => {
  if (/Content.Security.Policy|Refused to/i.test(msg.text())) consoleProblems.push(msg.text());
});
page.on('pageerror', (e) => consoleProblems.push(String(e)));

/**
 * Loads a page with `go` (a navigation), then checks and photographs it in
 * every view. `expect` names text the page must hold. Answers its HTML.
 */
async function visit(name, go, { status, expect = [], development = false }) {
  // What the previous page still loads (a favicon at the client) is not this one's.
  await page.waitForNetworkIdle({ idleTime: 300, timeout: 5000 }).catch(() => {});
  requests = [];
  consoleProblems.length = 0;
  await page.setViewport({ width: 1280, height: 800 });
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
  const res = await go();
  await page.waitForNetworkIdle({ idleTime: 200, timeout: 5000 }).catch(() => {});
  const origin = new URL(page.url()).origin;
  const html = await page.content();
  check(`${name}: answered ${status}`, res && res.status() === status, res && `${res.status()} at ${page.url()}`);
  const headers = res ? res.headers() : {};
  check(`${name}: strict Content-Security-Policy header`, CSP.test(headers['content-security-policy'] || ''), headers['content-security-policy']);
  check(`${name}: framing refused`, headers['x-frame-options'] === 'DENY', headers['x-frame-options']);
  const viewport = await page.evaluate(() => document.querySelector('meta[name=viewport]')?.content || '');
  check(`${name}: lays out at the device's width on a phone`, /width=device-width/.test(viewport), viewport);
  for (const text of expect) check(`${name}: shows ${JSON.stringify(text)}`, html.includes(text), html.replace(/<style>[\s\S]*<\/style>/, '').slice(0, 400));
  const offsite = requests.filter((u) => !u.startsWith('data:') && new URL(u).origin !== origin);
  check(`${name}: no request leaves ${origin}`, offsite.length === 0, offsite.join(' '));
  const resources = await page.evaluate(() => [...document.querySelectorAll('[src],[href],link,script,iframe,object,embed')]
    .map((e) => `${e.tagName}:${e.getAttribute('src') || e.getAttribute('href') || ''}`));
  check(`${name}: loads no script, frame or stylesheet, and only inline images`,
    resources.every((r) => /^IMG:data:image\/(png|svg\+xml);base64,/.test(r)), resources.join(' '));
  if (!development) {
    const brand = await page.evaluate(() => ({
      name: document.querySelector('header.brand span')?.textContent,
      logos: [...document.querySelectorAll('header.brand img')].map((i) => i.complete && i.naturalWidth > 0),
    }));
    check(`${name}: headed by the service's name`, brand.name === SERVICE, brand.name);
    check(`${name}: its logo decodes (the CSP lets the inline image in)`, brand.logos.length === 1 && brand.logos[0], JSON.stringify(brand.logos));
  }
  for (const view of VIEWS) {
    for (const scheme of SCHEMES) {
      await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: scheme }]);
      // (isMobile stays false: changing it reloads the page, which would
      // re-send the request; the width is what the layout sees.)
      await page.setViewport({ width: view.width, height: view.height, deviceScaleFactor: 1 });
      const label = `${name} (${view.name}, ${scheme})`;
      const look = await page.evaluate(() => {
        const css = (e, p) => (e ? getComputedStyle(e)[p] : '');
        const main = document.querySelector('main');
        const buttons = [...document.querySelectorAll('button')].map((b) => ({
          cls: b.className, height: b.getBoundingClientRect().height, width: b.getBoundingClientRect().width, bg: css(b, 'backgroundColor'),
        }));
        return {
          scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
          bodyBg: css(document.body, 'backgroundColor'), mainBg: css(main, 'backgroundColor'), text: css(main || document.body, 'color'),
          buttons,
        };
      });
      const [bg, card, text] = [luminance(look.bodyBg), luminance(look.mainBg), luminance(look.text)];
      if (scheme === 'dark') {
        check(`${label}: dark colours`, bg !== null && bg < 0.05 && card !== null && card < 0.05 && text > 0.6, `${look.bodyBg} ${look.mainBg} ${look.text}`);
      } else {
        check(`${label}: light colours`, bg !== null && bg > 0.8 && card !== null && card > 0.8 && text < 0.05, `${look.bodyBg} ${look.mainBg} ${look.text}`);
      }
      if (view.mobile) {
        check(`${label}: no horizontal scrolling at ${view.width} px`, look.scrollWidth <= look.innerWidth, `${look.scrollWidth} > ${look.innerWidth}`);
        check(`${label}: buttons large enough to tap`, look.buttons.every((b) => b.height >= 44 && b.width >= 44), JSON.stringify(look.buttons));
      }
      const approve = look.buttons.find((b) => b.cls === 'approve');
      const deny = look.buttons.find((b) => b.cls === 'deny');
      if (deny) {
        check(`${label}: Approve is the filled, primary button and Deny is there beside it`,
          approve && luminance(approve.bg) !== null && luminance(deny.bg) === null && deny.height >= 44, JSON.stringify(look.buttons));
      }
      await page.screenshot({ path: join(OUT, `${name}-${view.name}-${scheme}.png`), fullPage: true });
    }
  }
  // The narrowest phones in common use.
  await page.setViewport({ width: 360, height: 740, deviceScaleFactor: 1 });
  const narrow = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(`${name}: no horizontal scrolling at 360 px`, narrow[0] <= narrow[1], narrow.join(' > '));
  check(`${name}: no Content-Security-Policy violation or script error`, consoleProblems.length === 0, consoleProblems.join(' | '));
  return html;
}

// Navigations caused by submitting the page's form with a button.
const submit = (selector) => async () => {
  const [res] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]);
  return res;
};
const open = (url) => () => page.goto(url, { waitUntil: 'load' });

let status = 0;
const host = await serveMetadataDocument({
  client_name: 'Example Desktop Agent', redirect_uris: [LOOPBACK_CALLBACK],
  grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none',
});
try {
  // A registered client: its consent page, the provider's sign-in page,
  // and back at the client with a code, exchanged for tokens.
  const clientId = await register(BASE, {
    client_name: 'Example Notes', redirect_uris: [CLIENT_CALLBACK], token_endpoint_auth_method: 'none', scope: 'openid email',
  });
  const first = pkce();
  await visit('consent', open(authorizeUrl(BASE, clientId, CLIENT_CALLBACK, 'openid email', first.challenge)), {
    status: 200,
    expect: ['Allow access?', 'calls itself <strong>Example Notes</strong>', 'name not verified',
      'sent back to <strong class="host">notes.example.com</strong>', 'See your email address'],
  });
  await visit('dev-signin', submit('button.approve'), { status: 200, expect: ['Sign in as'], development: true });
  landedAt = null;
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button.approve')]);
  const code = landedAt?.searchParams.get('code');
  check('the sign-in ends at the client with a code', Boolean(code), landedAt?.href);
  const token = await fetch(`${BASE}/oauth/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: code || '', redirect_uri: CLIENT_CALLBACK, client_id: clientId, code_verifier: first.verifier }),
  });
  check('the code is exchanged for tokens', token.status === 200, await token.text());

  // The same browser steps up: only the new scope is listed as new.
  const html = await visit('consent-step-up', open(authorizeUrl(BASE, clientId, CLIENT_CALLBACK, 'openid email profile', pkce().challenge)), {
    status: 200, expect: ['Already allowed (2)', 'See your basic profile information'],
  });
  const [fresh] = html.split('Already allowed');
  check('consent-step-up: the granted scopes are not listed as new', !fresh.includes('See your email address'), fresh.slice(-400));

  // A client known by its metadata document, sending the browser to loopback.
  await visit('consent-metadata-document', open(authorizeUrl(BASE, host.url, LOOPBACK_CALLBACK, 'openid email', pkce().challenge)), {
    status: 200,
    expect: ['calls itself <strong>Example Desktop Agent</strong>', 'published by <strong class="host">localhost</strong>',
      'sent back to <strong class="host">127.0.0.1</strong>', 'class="warn"'],
  });

  // An error that cannot go back to any client: no client_id.
  await visit('error', open(`${BASE}/oauth/authorize?response_type=code`), {
    status: 400, expect: ['Sign-in cannot continue', '<code>invalid_request</code>'],
  });

  // The access policy refuses the demo user (the second instance).
  const refusedClient = await register(REFUSING, {
    client_name: 'Example Notes', redirect_uris: [CLIENT_CALLBACK], token_endpoint_auth_method: 'none',
  });
  await page.goto(authorizeUrl(REFUSING, refusedClient, CLIENT_CALLBACK, 'openid email', pkce().challenge), { waitUntil: 'load' });
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button.approve')]);
  await visit('access-refused', submit('button.approve'), {
    status: 403, expect: ['<h1>Access refused</h1>', '<code>access_denied</code>'],
  });
} catch (e) {
  check('the walk through the pages completed', false, e.stack || String(e));
} finally {
  host.close();
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
for (const f of failures) console.error(`FAIL ${f}`);
if (failures.length) status = 1;
console.log(`pages check: ${passed} checks passed, ${failures.length} failed; screenshots in ${OUT}`);
process.exit(status);
