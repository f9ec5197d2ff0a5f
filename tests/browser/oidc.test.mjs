// Single sign-on in headless Chromium: two real OpenID providers (the `oidc-provider` package, each on
// its own 127.0.0.1 port with its own users, groups and signing key) configured as two [[oidc]] issuers of
// the real daemon. The desk, supervisor, reports and admin pages offer both. A user in a mapped group
// signs in through issuer A and gets the desk of their unit; a user without one is refused with a clear
// page; issuer B works too (and its session survives a restart); signing out ends the Vuoro session and
// the provider's, so the next sign-in asks for the password again; a provider that rotates its signing
// key is followed; password sign-in can be switched off; one client cannot hold every sign-in under way;
// axe finds nothing on the sign-in form with issuers or on the refusal page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Provider from 'oidc-provider';
import { startDaemon, launchBrowser, axeViolations, apiCall, login, repo } from './lib.mjs';

// bypassCSP: axe is injected as an inline script, which the daemon's Content-Security-Policy forbids.
const VIEW = { viewport: { width: 1366, height: 768 }, locale: 'en-GB', bypassCSP: true };
const SECRET_A = 'secret-of-issuer-a-for-the-test';
const SECRET_B = 'secret-of-issuer-b-for-the-test';

/** A free TCP port on 127.0.0.1 (the daemon's address must be known before the providers start). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function signingKey(kid) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
}

/**
 * An OpenID provider on 127.0.0.1:`port` with `users` ({ id: { name, groups } }) and one client for the
 * daemon. Its sign-in page is oidc-provider's own (login and password); consent is taken as given.
 */
async function startProvider({ tag, port, users, clientId, secret, daemonUrl, kid }) {
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [
      {
        client_id: clientId,
        client_secret: secret,
        redirect_uris: [`${daemonUrl}/api/v1/auth/oidc/${tag}/callback`],
        post_logout_redirect_uris: [`${daemonUrl}/desk/`],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [signingKey(kid)] },
    scopes: ['openid', 'profile', 'groups'],
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'], groups: ['groups'] },
    // The scopes' claims go into the ID token (not only to the userinfo endpoint).
    conformIdTokenClaims: false,
    findAccount: (ctx, id) =>
      users[id] && {
        accountId: id,
        claims: () => ({ sub: id, preferred_username: id, ...users[id] }),
      },
    loadExistingGrant: async (ctx) => {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid profile groups');
      await grant.save();
      return grant;
    },
    // Two providers on one host: cookies by name of their own.
    cookies: {
      keys: [`cookie-key-${tag}`],
      names: { session: `_${tag}_session`, interaction: `_${tag}_interaction`, resume: `_${tag}_resume` },
    },
    features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  });
  const server = await new Promise((resolve) => {
    const s = provider.listen(port, '127.0.0.1', () => resolve(s));
  });
  return {
    issuer: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

const USERS_A = {
  anna: { name: 'Anna Agentti', groups: ['all-staff', 'vuoro-kela-agents'] },
  bob: { name: 'Bob Outsider', groups: ['all-staff'] },
};
const USERS_B = {
  carl: { name: 'Carl Partner', groups: ['partner-supervisors'] },
};

let dir;
let daemon;
let browser;
let providerA;
let providerB;
let ports;
const ISSUER_A = { tag: 'city-a', clientId: 'vuoro-a', secret: SECRET_A, users: USERS_A };
const ISSUER_B = { tag: 'partner-b', clientId: 'vuoro-b', secret: SECRET_B, users: USERS_B };

function config({ local = true } = {}) {
  let demo = readFileSync(join(repo, 'config', 'demo.toml'), 'utf8');
  demo = demo.replace(
    'demo = true',
    `demo = true\npublic_url = "http://127.0.0.1:${ports.daemon}"${local ? '' : '\nlocal_sign_in = false'}`,
  );
  return `${demo}
[[oidc]]
id = "city-a"
name = { fi = "Kaupungin tunnus", sv = "Stadens konto", en = "City account" }
issuer = "http://127.0.0.1:${ports.a}"
client_id = "vuoro-a"
client_secret = "${SECRET_A}"
scopes = ["openid", "profile", "groups"]
role_claim = "groups"
role_map = { "vuoro-kela-agents" = "agent", "vuoro-supervisors" = "supervisor" }
unit_claim = "groups"
unit_map = { "vuoro-kela-agents" = "kela" }

[[oidc]]
id = "partner-b"
name = { fi = "Kumppanin tunnus", sv = "Partnerkonto", en = "Partner account" }
issuer = "http://127.0.0.1:${ports.b}"
client_id = "vuoro-b"
client_secret_file = "${join(dir, 'b.secret')}"
scopes = ["openid", "groups", "profile"]
role_claim = "groups"
role_map = { "partner-supervisors" = "supervisor" }
unit_claim = "groups"
unit_map = { "partner-supervisors" = "kela" }
`;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vuoro-oidc-'));
  ports = { daemon: await freePort(), a: await freePort(), b: await freePort() };
  const daemonUrl = `http://127.0.0.1:${ports.daemon}`;
  providerA = await startProvider({ ...ISSUER_A, port: ports.a, daemonUrl, kid: 'a-1' });
  providerB = await startProvider({ ...ISSUER_B, port: ports.b, daemonUrl, kid: 'b-1' });
  writeFileSync(join(dir, 'b.secret'), `${SECRET_B}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'vuoro.toml'), config());
  daemon = await startDaemon({ config: join(dir, 'vuoro.toml'), listen: `127.0.0.1:${ports.daemon}` });
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (daemon) {
    await daemon.stop();
    daemon.cleanup();
  }
  if (providerA) await providerA.stop();
  if (providerB) await providerB.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function newPage(opts = {}) {
  const context = await browser.newContext({ ...VIEW, ...opts });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  return { context, page };
}

/** Clicks the issuer's button on the sign-in form and signs in at the provider as `user`. */
async function signInThrough(page, tag, user) {
  await page.click(`#login-sso a[data-provider="${tag}"]`);
  await page.waitForSelector('input[name="login"]', { timeout: 15000 });
  await page.fill('input[name="login"]', user);
  await page.fill('input[name="password"]', 'any password');
  await page.click('button[type="submit"]');
}

async function me(page) {
  return page.evaluate(async () => {
    const r = await fetch('/api/v1/auth/me');
    return { status: r.status, body: r.status === 200 ? await r.json() : null };
  });
}

test('the sign-in form offers each issuer by name in the page language, and axe finds nothing', async () => {
  const r = await apiCall(daemon.url, '/api/v1/auth/providers');
  assert.equal(r.status, 200);
  assert.deepEqual(r.data, {
    local_sign_in: true,
    providers: [
      { id: 'city-a', name: { fi: 'Kaupungin tunnus', sv: 'Stadens konto', en: 'City account' } },
      { id: 'partner-b', name: { fi: 'Kumppanin tunnus', sv: 'Partnerkonto', en: 'Partner account' } },
    ],
  });
  const { context, page } = await newPage();
  for (const path of ['/desk/', '/desk/supervisor.html', '/desk/reports.html', '/admin/']) {
    await page.goto(daemon.url + path);
    await page.waitForSelector('#login-sso a[data-provider="partner-b"]');
    assert.equal(await page.isVisible('#login-form'), true, path);
    const names = await page.$$eval('#login-sso a', (as) => as.map((a) => a.textContent));
    assert.deepEqual(names, ['City account', 'Partner account'], path);
    const href = await page.getAttribute('#login-sso a[data-provider="city-a"]', 'href');
    assert.equal(href, `/api/v1/auth/oidc/city-a/login?return=${encodeURIComponent(path)}`);
  }
  await page.goto(daemon.url + '/desk/');
  await page.waitForSelector('#login-sso a');
  await page.selectOption('#lang', 'sv');
  await page.waitForFunction(() => document.querySelector('#login-sso a').textContent === 'Stadens konto');
  assert.match(await page.textContent('#login-sso h2'), /Logga in/);
  await page.selectOption('#lang', 'fi');
  await page.waitForFunction(() => document.querySelector('#login-sso a').textContent === 'Kaupungin tunnus');
  assert.deepEqual(await axeViolations(page), []);
  await page.selectOption('#lang', 'en');
  await page.waitForFunction(() => document.querySelector('#login-sso a').textContent === 'City account');
  await page.screenshot({ path: join(repo, 'docs', 'screenshots', 'desk-login-sso.png') });
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a user in the mapped group signs in through issuer A and gets the desk of their unit; signing out ends both sessions', async () => {
  const { context, page } = await newPage();
  await page.goto(daemon.url + '/desk/');
  await page.waitForSelector('#login-sso a');
  await signInThrough(page, 'city-a', 'anna');
  await page.waitForURL(`${daemon.url}/desk/`);
  await page.waitForSelector('button[data-counter="c1"]', { timeout: 15000 });
  const counters = await page.$$eval('button[data-counter]', (bs) => bs.map((b) => b.dataset.counter));
  assert.deepEqual(counters.sort(), ['c1', 'c2', 'c3', 'c4'], 'the counters of unit kela only');
  assert.equal((await page.textContent('#user-name')).trim(), 'Anna Agentti');
  const who = await me(page);
  assert.equal(who.status, 200);
  assert.deepEqual(who.body.user, { username: 'city-a:anna', display_name: 'Anna Agentti', roles: ['agent'], units: ['kela'] });
  const cookie = (await context.cookies(daemon.url)).find((c) => c.name === 'vuoro_session');
  assert.ok(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', JSON.stringify(cookie));
  // The desk works with this session: the counter opens and goes live.
  await page.click('button[data-counter="c1"]');
  await page.waitForSelector('[data-screen="desk"]:not([hidden])', { timeout: 15000 });
  await page.waitForSelector('#conn.conn-live', { timeout: 15000 });

  // Still signed in at the provider: without a real sign-out, a new sign-in does not ask for a password.
  await context.clearCookies({ name: 'vuoro_session' });
  await page.goto(daemon.url + '/desk/');
  await page.click('#login-sso a[data-provider="city-a"]');
  await page.waitForSelector('button[data-counter="c1"]', { timeout: 15000 });
  assert.equal((await me(page)).status, 200);

  // The sign-in is in the audit trail, under the user's name.
  const admin = await login(daemon.url, 'admin');
  let entries = [];
  for (let i = 0; i < 50 && !entries.some((e) => JSON.stringify(e).includes('/api/v1/auth/oidc/city-a/callback')); i++) {
    const r = await apiCall(daemon.url, '/api/v1/audit?user=city-a:anna', { token: admin });
    assert.equal(r.status, 200, JSON.stringify(r.data));
    entries = r.data.entries;
    if (i) await new Promise((res) => setTimeout(res, 100));
  }
  const signIns = entries.filter((e) => JSON.stringify(e).includes('/api/v1/auth/oidc/city-a/callback'));
  assert.ok(signIns.length >= 1, JSON.stringify(entries));
  assert.ok(!JSON.stringify(entries).includes('code='), 'no code in the audit trail');

  // Signing out goes through the provider's logout and back to the sign-in form.
  await page.click('#sign-out');
  await page.waitForURL((u) => u.origin === providerA.issuer, { timeout: 15000 });
  assert.ok(page.url().includes('id_token_hint='), page.url());
  await page.click('button[name="logout"][value="yes"]');
  await page.waitForURL(`${daemon.url}/desk/`, { timeout: 15000 });
  await page.waitForSelector('#login-sso a');
  assert.equal((await me(page)).status, 401);
  // The provider's session ended too: the next sign-in asks for the password again.
  await page.click('#login-sso a[data-provider="city-a"]');
  await page.waitForSelector('input[name="password"]', { timeout: 15000 });
  assert.equal(new URL(page.url()).origin, providerA.issuer);
  assert.deepEqual(page.errors, []);
  await context.close();
  // Nothing secret in the daemon's log: no client secret, no code, no token.
  const logs = daemon.logs();
  assert.match(logs, /signed in by single sign-on/);
  for (const secret of [SECRET_A, SECRET_B, 'code=', 'id_token_hint']) assert.ok(!logs.includes(secret), secret);
  assert.doesNotMatch(logs, /eyJ[\w-]+\.eyJ/, 'a JWT in the log');
});

test('a user without a mapped group is refused with a clear page, and axe finds nothing on it', async () => {
  const { context, page } = await newPage();
  await page.goto(daemon.url + '/desk/');
  await page.waitForSelector('#login-sso a');
  const answer = page.waitForResponse((r) => r.url().includes('/api/v1/auth/oidc/city-a/callback'));
  await signInThrough(page, 'city-a', 'bob');
  const res = await answer;
  assert.equal(res.status(), 403);
  assert.match(res.headers()['content-security-policy'], /frame-ancestors 'none'/);
  await page.waitForSelector('h1');
  assert.equal(await page.textContent('h1'), 'Sign-in failed');
  assert.match(await page.textContent('#sso-reason'), /no role in Vuoro/);
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  assert.equal((await context.cookies(daemon.url)).some((c) => c.name === 'vuoro_session'), false);
  assert.deepEqual(await axeViolations(page), []);
  await page.screenshot({ path: join(repo, 'docs', 'screenshots', 'sso-refused.png') });
  // The page speaks Finnish and Swedish too.
  for (const [lang, title] of [['fi', 'Kirjautuminen epäonnistui'], ['sv', 'Inloggningen misslyckades']]) {
    const r = await fetch(`${daemon.url}/api/v1/auth/oidc/city-a/callback?state=nothing-started&code=x`, {
      headers: { 'Accept-Language': lang },
    });
    assert.equal(r.status, 400);
    const html = await r.text();
    assert.ok(html.includes(`<html lang="${lang}">`) && html.includes(title), html);
  }
  // A sign-in that would return to another site is refused before it starts.
  const away = await fetch(`${daemon.url}/api/v1/auth/oidc/city-a/login?return=//evil.example/`, { redirect: 'manual' });
  assert.equal(away.status, 400);
  const twice = await fetch(`${daemon.url}/api/v1/auth/oidc/city-a/login?return=/desk/&return=/x/`, { redirect: 'manual' });
  assert.equal(twice.status, 400);
  assert.match(twice.headers.get('content-type'), /^text\/html/);
  const unknown = await fetch(`${daemon.url}/api/v1/auth/oidc/nobody/login`, { redirect: 'manual' });
  assert.equal(unknown.status, 404);
  // A sign-in's state is used once: the issuer's answer cannot be replayed.
  const start = await fetch(`${daemon.url}/api/v1/auth/oidc/city-a/login?return=/desk/`, { redirect: 'manual' });
  assert.equal(start.status, 302);
  const to = new URL(start.headers.get('location'));
  assert.equal(to.origin, providerA.issuer);
  for (const p of ['state', 'nonce', 'code_challenge']) assert.ok(to.searchParams.get(p), p);
  assert.equal(to.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(to.searchParams.get('redirect_uri'), `${daemon.url}/api/v1/auth/oidc/city-a/callback`);
  assert.equal(to.searchParams.has('client_secret'), false);
  const wrongIssuer = await fetch(`${daemon.url}/api/v1/auth/oidc/partner-b/callback?state=${to.searchParams.get('state')}&code=x`);
  assert.equal(wrongIssuer.status, 400, 'a state is only good at the issuer it was made for');
  await context.close();
});

test('issuer B signs a supervisor in; the session survives a restart', async () => {
  const { context, page } = await newPage();
  await page.goto(daemon.url + '/desk/supervisor.html');
  await page.waitForSelector('#login-sso a');
  await signInThrough(page, 'partner-b', 'carl');
  await page.waitForURL(`${daemon.url}/desk/supervisor.html`);
  await page.waitForFunction(() => !document.querySelector('[data-screen="login"]') || document.querySelector('[data-screen="login"]').hidden, null, { timeout: 15000 });
  const who = await me(page);
  assert.deepEqual(who.body.user, { username: 'partner-b:carl', display_name: 'Carl Partner', roles: ['supervisor'], units: ['kela'] });
  daemon = await daemon.restart();
  assert.deepEqual((await me(page)).body.user.roles, ['supervisor']);
  assert.deepEqual(page.errors, []);
  await context.close();
});

test('a provider that rotates its signing key is followed', async () => {
  // The daemon holds the provider's keys after a first sign-in; the provider then signs with a new key.
  for (const kid of ['a-1', 'a-2']) {
    if (kid === 'a-2') {
      await providerA.stop();
      providerA = await startProvider({ ...ISSUER_A, port: ports.a, daemonUrl: daemon.url, kid });
    }
    const { context, page } = await newPage();
    await page.goto(daemon.url + '/desk/');
    await page.waitForSelector('#login-sso a');
    await signInThrough(page, 'city-a', 'anna');
    await page.waitForSelector('button[data-counter="c1"]', { timeout: 15000 });
    assert.equal((await me(page)).body.user.username, 'city-a:anna', kid);
    await context.close();
  }
  assert.match(daemon.logs(), /reading the issuer's keys again/);
});

test('with password sign-in switched off, only the issuers are offered and a password is refused', async () => {
  await daemon.stop();
  writeFileSync(join(dir, 'vuoro.toml'), config({ local: false }));
  daemon = await startDaemon({ config: join(dir, 'vuoro.toml'), listen: `127.0.0.1:${ports.daemon}`, dataDir: daemon.dataDir });
  const r = await apiCall(daemon.url, '/api/v1/auth/login', { method: 'POST', body: { username: 'admin', password: 'demo' } });
  assert.equal(r.status, 403, JSON.stringify(r.data));
  const { context, page } = await newPage();
  await page.goto(daemon.url + '/desk/reports.html');
  await page.waitForSelector('#login-sso a');
  assert.equal(await page.isVisible('#login-form'), false);
  assert.equal(await page.isVisible('.login-or'), false);
  assert.deepEqual(await axeViolations(page), []);
  await context.close();
});

test('one client address cannot hold every sign-in under way: 100 at most', async () => {
  const statuses = [];
  for (let i = 0; i < 101; i++) {
    statuses.push((await fetch(`${daemon.url}/api/v1/auth/oidc/city-a/login`, { redirect: 'manual' })).status);
  }
  assert.deepEqual(statuses, [...Array(100).fill(302), 429]);
});
