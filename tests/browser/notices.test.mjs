// Notices in the browser: the phone page's opt-in (kiosk-ui/track.html, "Tell me when my turn is near"), its
// service worker (kiosk-ui/track-sw.js) and the supervisor's "Notices not delivered" panel, in headless
// Chromium against the real daemon with `[notify]`. The SMS gateway is a real HTTP server started here on
// 127.0.0.1: it records every message and refuses (400) the number REFUSED.
// Run: cd tests/browser && node --test --test-concurrency=1 notices.test.mjs
// Screenshots go to docs/screenshots/phone-notices-*.png and supervisor-notices.png (docs/kiosk.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as netServer } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startDaemon, launchBrowser, originBoundPage, axeViolations, apiCall, login, signIn, repo } from './lib.mjs';

const SITE = 'iso-omena';
const PHONE = { width: 390, height: 844 };
const REFUSED = '+358409990000';
const kioskStrings = Object.fromEntries(['fi', 'ar', 'en'].map((l) => [l, JSON.parse(readFileSync(join(repo, 'kiosk-ui', 'i18n', `${l}.json`), 'utf8'))]));
const deskStrings = JSON.parse(readFileSync(join(repo, 'desk-ui', 'i18n', 'en.json'), 'utf8')); // the desk follows the browser's language

let daemon;
let browser;
let gateway;
/** Every message the gateway took: { to, text }. */
const sent = [];

/** A port nothing listens on (the e-mail channel is offered but never reached in these tests). */
async function closedPort() {
  return new Promise((resolve) => {
    const s = netServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

before(async () => {
  gateway = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      let msg = null;
      try {
        msg = JSON.parse(body);
      } catch (e) {
        msg = { raw: body };
      }
      sent.push(msg);
      const refuse = msg.to === REFUSED;
      res.writeHead(refuse ? 400 : 200, { 'Content-Type': 'application/json' });
      res.end(refuse ? '{"error":"unknown subscriber"}' : '{"ok":true}');
    });
  });
  await new Promise((r) => gateway.listen(0, '127.0.0.1', r));
  const smsUrl = `http://127.0.0.1:${gateway.address().port}/send`;
  const demo = readFileSync(join(repo, 'config', 'demo.toml'), 'utf8');
  const cfg =
    `${demo}\n[notify]\nnear_people = 0\nnear_minutes = 0\nretry_first_seconds = 0.2\nmax_attempts = 2\n` +
    `[notify.sms]\nurl = "${smsUrl}"\nbody = '{"to":"{to}","text":"{text}"}'\nper_second = 50\ntimeout_seconds = 5\n` +
    `[notify.email]\nsmtp = "smtp://127.0.0.1:${await closedPort()}"\nfrom = "Vuoro <vuoro@example.fi>"\n`;
  const path = join(mkdtempSync(join(tmpdir(), 'vuoro-notices-')), 'notices.toml');
  writeFileSync(path, cfg);
  daemon = await startDaemon({ config: path });
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (daemon) {
    await daemon.stop();
    daemon.cleanup();
  }
  if (gateway) await new Promise((r) => gateway.close(r));
});

// ---- helpers ---------------------------------------------------------------------------------------

const shot = (page, name, opts = {}) => page.screenshot({ path: join(repo, 'docs', 'screenshots', name), ...opts });

async function noAxe(page, where) {
  const v = await axeViolations(page);
  assert.deepEqual(v, [], `axe violations on ${where}: ${JSON.stringify(v, null, 1)}`);
}

function done(foreign, errors) {
  assert.deepEqual(foreign, [], 'requests left the daemon origin');
  assert.deepEqual(errors, [], 'errors in the page');
}

async function issue(service, lang) {
  const kiosk = (await apiCall(daemon.url, '/api/v1/demo/device-token?device=kiosk-1')).data.token;
  const r = await apiCall(daemon.url, `/api/v1/sites/${SITE}/tickets`, { method: 'POST', token: kiosk, body: { service, lang, priority: 'normal' } });
  assert.equal(r.status, 201, JSON.stringify(r.data));
  return r.data;
}

/** Staff open `counter` and call the next until `number` is called. */
async function callUntil(counter, number) {
  const staff = await login(daemon.url, 'supervisor');
  const open = await apiCall(daemon.url, `/api/v1/counters/${counter}/open`, { method: 'POST', token: staff, body: {} });
  assert.equal(open.status, 200, JSON.stringify(open.data));
  for (let i = 0; i < 40; i++) {
    const r = await apiCall(daemon.url, `/api/v1/counters/${counter}/call-next`, { method: 'POST', token: staff, body: {} });
    assert.equal(r.status, 200, JSON.stringify(r.data));
    if (r.data.ticket && r.data.ticket.number === number) return staff;
    await apiCall(daemon.url, `/api/v1/counters/${counter}/finish`, { method: 'POST', token: staff, body: {} });
  }
  throw new Error(`${number} was never called at ${counter}`);
}

async function contactOf(tk) {
  const r = await apiCall(daemon.url, `/api/v1/tickets/${tk.token}/contact`);
  assert.equal(r.status, 200, JSON.stringify(r.data));
  return r.data;
}

/** Waits (at most `ms`) until `pred()` holds. */
async function until(pred, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out: ${what}`);
}

async function phone(tk, { lang } = {}) {
  const { page, context, foreign } = await originBoundPage(browser, daemon.url, { viewport: PHONE, bypassCSP: true, isMobile: true, hasTouch: true });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  if (lang) await context.addInitScript(([key, l]) => localStorage.setItem(key, l), [`vuoro.track.${tk.token.slice(0, 8)}.lang`, lang]);
  await page.goto(`${daemon.url}/kiosk/track.html#t=${tk.token}`);
  await page.locator('#card:not([hidden])').waitFor();
  return { page, context, foreign, errors };
}

const focusedId = (page) => page.evaluate(() => document.activeElement && document.activeElement.id);

// ---- phone page --------------------------------------------------------------------------------------

test('phone page (fi): a number typed as at home is taken, shown masked, gets the call once, and stops', async () => {
  const s = kioskStrings.fi;
  const tk = await issue('joint-service', 'fi');
  const { page, context, foreign, errors } = await phone(tk);
  const section = page.locator('#notices');
  await section.waitFor();
  assert.equal(await page.locator('#notices-title').textContent(), s['notices.title']);
  assert.equal(await page.locator('#notices-what').textContent(), s['notices.what']);
  // A visible label, the example for a site in Finland, and a phone keypad.
  assert.equal(await page.locator('label[for="sms"]').textContent(), s['notices.sms_label']);
  assert.equal(await page.locator('#sms-example').textContent(), s['notices.sms_example_fi']);
  assert.equal(await page.locator('#sms').getAttribute('type'), 'tel');
  assert.equal(await page.locator('#sms').getAttribute('inputmode'), 'tel');
  assert.equal(await page.locator('#sms').getAttribute('autocomplete'), 'tel');
  assert.equal(await page.locator('#email-form').isVisible(), true, 'e-mail is offered here');
  assert.equal(await page.locator('#push-box').isVisible(), false, 'push is not offered here');
  await noAxe(page, 'phone opt-in fi');
  await shot(page, 'phone-notices-fi.png', { fullPage: true });

  await page.fill('#sms', '040 123 4567');
  await page.click('#sms-send');
  const item = page.locator('#contacts li[data-channel="sms"]');
  await item.waitFor();
  assert.equal(await item.locator('.contact-to').textContent(), `${s['notices.channel.sms']}: +35840*****67`);
  assert.equal(await page.locator('#sms-form').isVisible(), false);
  assert.equal(await focusedId(page), 'notices-on-label', 'focus moves to what was stored');
  await page.locator('#notices-said', { hasText: '+35840*****67' }).waitFor({ state: 'attached' });
  assert.deepEqual((await contactOf(tk)).contacts, [{ channel: 'sms', to: '+35840*****67' }]);
  assert.deepEqual(
    await page.evaluate(() => Object.keys(localStorage).filter((k) => !k.endsWith('.lang'))),
    [],
    'nothing personal in localStorage',
  );
  assert.ok(!(await page.evaluate(() => JSON.stringify(localStorage))).includes('4567'));
  await noAxe(page, 'phone contact stored fi');
  await shot(page, 'phone-notices-on-fi.png', { fullPage: true });

  const before = sent.length;
  const staff = await callUntil('c5', tk.number);
  await page.locator('#alert[data-kind="called"]').waitFor({ timeout: 10000 });
  const mine = () => sent.slice(before).filter((m) => m.to === '+358401234567');
  await until(() => mine().some((m) => m.text.includes(tk.number) && m.text.includes('on vuorosi')), 10000, 'the called notice at the gateway');
  await new Promise((r) => setTimeout(r, 1500)); // a second copy would have arrived by now
  const called = mine().filter((m) => m.text.includes('on vuorosi'));
  assert.equal(called.length, 1, JSON.stringify(mine()));
  assert.equal(new Set(mine().map((m) => m.text)).size, mine().length, `no notice twice: ${JSON.stringify(mine())}`);

  // Called, not yet served: the contact can still be stopped.
  const stop = item.locator('button[data-stop="stop"]');
  assert.equal(await stop.textContent(), s['notices.stop']);
  await stop.click();
  await page.locator('#contacts li').first().waitFor({ state: 'detached' });
  // Called and nothing left to stop: the section goes, and focus goes to the page's heading.
  await page.locator('#notices').waitFor({ state: 'hidden' });
  assert.equal(await focusedId(page), 'title');
  await page.locator('#notices-said', { hasText: s['notices.stopped'] }).waitFor({ state: 'attached' });
  assert.deepEqual((await contactOf(tk)).contacts, []);
  await noAxe(page, 'phone stopped fi');
  await apiCall(daemon.url, '/api/v1/counters/c5/finish', { method: 'POST', token: staff, body: {} });
  await apiCall(daemon.url, '/api/v1/counters/c5/close', { method: 'POST', token: staff, body: {} });
  done(foreign, errors);
  await context.close();
});

test('phone page (ar, right to left): a bad number is refused in words; the call reaches the number once; "never again" holds for the next ticket', async () => {
  const s = kioskStrings.ar;
  const tk = await issue('joint-service', 'ar');
  const { page, context, foreign, errors } = await phone(tk, { lang: 'ar' });
  await page.locator('#notices').waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.dir), 'rtl');
  assert.equal(await page.locator('#notices-title').textContent(), s['notices.title']);

  // Empty: said before anything is sent.
  await page.click('#sms-send');
  await page.locator('#sms-error', { hasText: s['notices.empty_sms'] }).waitFor();
  // Not a number: the daemon's 422, in words.
  await page.fill('#sms', '12345');
  await page.click('#sms-send');
  await page.locator('#sms-error', { hasText: s['notices.bad_sms'] }).waitFor();
  assert.equal(await page.locator('#sms-error').getAttribute('role'), 'alert');
  assert.equal(await page.locator('#sms').getAttribute('aria-invalid'), 'true');
  assert.match(await page.locator('#sms').getAttribute('aria-describedby'), /sms-error/);
  assert.equal(await focusedId(page), 'sms', 'focus back on the field');
  assert.deepEqual((await contactOf(tk)).contacts, [], 'nothing stored');
  await noAxe(page, 'phone bad number ar');
  await page.locator('#notices').screenshot({ path: join(repo, 'docs', 'screenshots', 'phone-notices-error-ar.png') });

  await page.fill('#sms', '+358 40 765 4321');
  await page.click('#sms-send');
  const item = page.locator('#contacts li[data-channel="sms"]');
  await item.waitFor();
  assert.equal(await page.locator('#sms').getAttribute('aria-invalid'), 'false');
  assert.match(await item.textContent(), /\+35840\*{5}21/);
  await noAxe(page, 'phone contact stored ar');

  // Called: the gateway gets the Arabic notice once.
  const before = sent.length;
  const staff = await callUntil('c5', tk.number);
  await page.locator('#alert[data-kind="called"]').waitFor({ timeout: 10000 });
  const mine = () => sent.slice(before).filter((m) => m.to === '+358407654321');
  await until(() => mine().some((m) => m.text.includes(tk.number) && m.text.includes('حان دورك')), 10000, 'the Arabic called notice');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(mine().filter((m) => m.text.includes('حان دورك')).length, 1, JSON.stringify(mine()));
  assert.equal(new Set(mine().map((m) => m.text)).size, mine().length, `no notice twice: ${JSON.stringify(mine())}`);

  const never = item.locator('button[data-stop="never"]');
  assert.equal(await never.textContent(), s['notices.never_sms']);
  await never.click();
  await page.locator('#notices-said', { hasText: s['notices.stopped_never'] }).waitFor({ state: 'attached' });
  assert.deepEqual((await contactOf(tk)).contacts, []);
  await apiCall(daemon.url, '/api/v1/counters/c5/finish', { method: 'POST', token: staff, body: {} });
  await apiCall(daemon.url, '/api/v1/counters/c5/close', { method: 'POST', token: staff, body: {} });
  done(foreign, errors);
  await context.close();

  // The same number on another ticket: the daemon says 409, the page says why.
  const tk2 = await issue('joint-service', 'ar');
  const p2 = await phone(tk2, { lang: 'ar' });
  await p2.page.locator('#notices').waitFor();
  await p2.page.fill('#sms', '+358407654321');
  await p2.page.click('#sms-send');
  await p2.page.locator('#sms-error', { hasText: s['notices.opted_out'] }).waitFor();
  assert.deepEqual((await contactOf(tk2)).contacts, []);
  await noAxe(p2.page, 'phone opted out ar');
  done(p2.foreign, p2.errors);
  await p2.context.close();
});

test('phone page: no section when the ticket is not waiting, and an e-mail address is checked in words', async () => {
  const s = kioskStrings.en;
  const tk = await issue('joint-service', 'en');
  const { page, context, foreign, errors } = await phone(tk, { lang: 'en' });
  await page.locator('#notices').waitFor();
  assert.equal(await page.locator('#sms-example').textContent(), s['notices.sms_example_fi']);
  await page.fill('#email', 'not an address');
  await page.click('#email-send');
  await page.locator('#email-error', { hasText: s['notices.bad_email'] }).waitFor();
  assert.equal(await focusedId(page), 'email');
  assert.deepEqual((await contactOf(tk)).contacts, []);
  // Cancelled: nothing left to tell, the section goes.
  await apiCall(daemon.url, `/api/v1/tickets/${tk.token}`, { method: 'DELETE' });
  await page.locator('#notices').waitFor({ state: 'hidden' });
  done(foreign, errors);
  await context.close();
});

test('phone page: the leading 0 becomes +358 only at a site in Finland', async () => {
  const tk = await issue('joint-service', 'fi');
  const { page, context } = await phone(tk);
  const got = await page.evaluate(() => {
    const f = window.vuoroTrack.phoneNumber;
    return [f('040 123 4567', true), f('040-123 4567', false), f('00358 40 123 4567', false), f('+46 70 123 45 67', true), f('0', true)];
  });
  assert.deepEqual(got, ['+358401234567', '0401234567', '+358401234567', '+46701234567', '0']);
  await context.close();
});

// ---- this browser's push ---------------------------------------------------------------------------------

test('service worker: a pushed notice is shown with its title and body (text as a fallback)', async () => {
  const tk = await issue('joint-service', 'fi');
  const { page, context, foreign, errors } = await phone(tk);
  await context.grantPermissions(['notifications'], { origin: daemon.url });
  const scope = await page.evaluate(async () => {
    const reg = await navigator.serviceWorker.register('/kiosk/track-sw.js', { scope: '/kiosk/track.html' });
    await navigator.serviceWorker.ready;
    return reg.scope;
  });
  assert.equal(scope, `${daemon.url}/kiosk/track.html`);
  const cdp = await context.newCDPSession(page);
  const regs = [];
  cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => regs.push(...e.registrations));
  await cdp.send('ServiceWorker.enable');
  await until(() => regs.some((r) => r.scopeURL === scope), 5000, 'the registration over CDP');
  const registrationId = regs.find((r) => r.scopeURL === scope).registrationId;
  const shown = () =>
    page.evaluate(async () => {
      const reg = await navigator.serviceWorker.getRegistration('/kiosk/track.html');
      return (await reg.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, kind: n.data && n.data.kind }));
    });
  const payload = { title: tk.number, body: `Vuoronumero ${tk.number}: on vuorosi, Palvelupiste 5.`, kind: 'called' };
  await cdp.send('ServiceWorker.deliverPushMessage', { origin: daemon.url, registrationId, data: JSON.stringify(payload) });
  await until(async () => (await shown()).length === 1, 5000, 'the notification');
  assert.deepEqual(await shown(), [{ title: tk.number, body: payload.body, tag: `vuoro-${tk.number}`, kind: 'called' }]);
  await cdp.send('ServiceWorker.deliverPushMessage', { origin: daemon.url, registrationId, data: 'plain words' });
  await until(async () => (await shown()).some((n) => n.body === 'plain words'), 5000, 'the text notification');
  assert.ok((await shown()).some((n) => n.title === 'Vuoro' && n.body === 'plain words'));
  done(foreign, errors);
  await context.close();
});

test('"Notify this browser": registers the worker, subscribes with the daemon\'s key and sends the subscription', async () => {
  const tk = await issue('joint-service', 'fi');
  const offered = (await contactOf(tk)).offered;
  const pushHere = offered.includes('push');
  const { page, context, foreign } = await originBoundPage(browser, daemon.url, { viewport: PHONE, bypassCSP: true, isMobile: true });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await context.grantPermissions(['notifications'], { origin: daemon.url });
  // The browser vendor's push service is out of reach here: only PushManager.subscribe is played.
  await context.addInitScript(() => {
    window.__subscribed = [];
    PushManager.prototype.subscribe = async function (opts) {
      window.__subscribed.push({ userVisibleOnly: opts.userVisibleOnly, key: Array.from(new Uint8Array(opts.applicationServerKey)) });
      const sub = {
        endpoint: 'https://push.example.invalid/send/abc',
        toJSON: () => ({ endpoint: sub.endpoint, expirationTime: null, keys: { p256dh: 'BOr8t1pWQKXBzuUVgtj0hRjzjMPKKwfKSGTfH0vYj4bjQbJtkMvL-E3iy7hbv0qlZjPCZOrdKQTfxKVZj1qXQ7I', auth: 'aGVsbG8td29ybGQtMTIzNA' } }),
        unsubscribe: async () => true,
      };
      return sub;
    };
  });
  // Without push on the daemon (another part of the product), its offer is played: the PUT still goes to
  // the real daemon, which refuses it, and the page says so.
  const key = 'BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U';
  if (!pushHere) {
    await page.route('**/api/v1/tickets/*/contact', async (route) => {
      if (route.request().method() !== 'GET') return route.continue();
      const res = await route.fetch();
      const body = await res.json();
      return route.fulfill({ response: res, json: { ...body, offered: [...body.offered, 'push'], push_key: key } });
    });
  }
  const puts = [];
  page.on('request', (r) => r.method() === 'PUT' && r.url().endsWith('/contact') && puts.push(r.postDataJSON()));
  await page.goto(`${daemon.url}/kiosk/track.html#t=${tk.token}`);
  await page.locator('#push-box:not([hidden])').waitFor();
  assert.equal(await page.locator('#push').textContent(), kioskStrings.fi['notices.push']);
  assert.equal(await page.locator('#notify').isVisible(), false, 'the page\'s own alert button gives way to push');
  await noAxe(page, 'phone push offered fi');
  await page.click('#push');
  await until(() => puts.length === 1, 10000, 'the PUT');
  assert.equal(puts[0].push.endpoint, 'https://push.example.invalid/send/abc');
  assert.ok(puts[0].push.keys.p256dh && puts[0].push.keys.auth);
  const sub = await page.evaluate(() => window.__subscribed);
  assert.equal(sub.length, 1);
  assert.equal(sub[0].userVisibleOnly, true);
  assert.equal(sub[0].key.length, 65, 'the VAPID key as its 65 bytes');
  assert.equal(sub[0].key[0], 4);
  const reg = await page.evaluate(async () => {
    const r = await navigator.serviceWorker.getRegistration('/kiosk/track.html');
    return r && r.active && r.active.scriptURL;
  });
  assert.equal(reg, `${daemon.url}/kiosk/track-sw.js`);
  if (pushHere) {
    await page.locator('#contacts li[data-channel="push"]').waitFor();
    assert.ok((await contactOf(tk)).contacts.some((c) => c.channel === 'push'));
    const cached = await page.evaluate(async () => (await (await caches.open('vuoro-track')).match('/kiosk/track-sw-ticket')).text());
    assert.equal(cached, `${daemon.url}/kiosk/track.html#t=${tk.token}`);
  } else {
    await page.locator('#push-error', { hasText: kioskStrings.fi['notices.not_offered'] }).waitFor();
    assert.equal(await focusedId(page), 'push');
    assert.deepEqual((await contactOf(tk)).contacts, []);
    assert.deepEqual(await page.evaluate(() => caches.has('vuoro-track')), false, 'the ticket address forgotten');
    await noAxe(page, 'phone push refused fi');
  }
  assert.deepEqual(foreign, []);
  assert.deepEqual(errors, []);
  await context.close();
});

// ---- supervisor -------------------------------------------------------------------------------------

test('supervisor: "Notices not delivered" shows a refused SMS with its reason, in an accessible table', async () => {
  const tk = await issue('kela-general', 'fi');
  const put = await apiCall(daemon.url, `/api/v1/tickets/${tk.token}/contact`, { method: 'PUT', body: { sms: REFUSED } });
  assert.equal(put.status, 200, JSON.stringify(put.data));

  const { page, context, foreign } = await originBoundPage(browser, daemon.url, { viewport: { width: 1400, height: 1000 }, bypassCSP: true });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${daemon.url}/desk/supervisor.html`);
  await signIn(page, 'supervisor');
  const panel = page.locator('#notices-panel');
  await panel.waitFor();
  assert.equal(await page.locator('#sv-notices-heading [data-i18n="notices_heading"]').textContent(), deskStrings.notices_heading);
  assert.equal(await page.locator(`#notices-body tr th:text-is("${tk.number}")`).count(), 0, 'not failed yet');

  const staff = await callUntil('c2', tk.number);
  const sup = await login(daemon.url, 'supervisor');
  await until(async () => {
    const r = await apiCall(daemon.url, `/api/v1/sites/${SITE}/notices?state=failed`, { token: sup });
    return r.status === 200 && r.data.notices.some((n) => n.number === tk.number);
  }, 15000, 'the failed notice');
  const failed = (await apiCall(daemon.url, `/api/v1/sites/${SITE}/notices?state=failed`, { token: sup })).data.notices.find((n) => n.number === tk.number);
  await page.click('#notices-refresh');
  const row = page.locator(`#notices-body tr[data-notice="${failed.id}"]`);
  await row.waitFor();
  const cells = await row.locator('th, td').allTextContents();
  assert.equal(cells[0], tk.number);
  assert.equal(cells[1], deskStrings['notice_kind_' + failed.kind]);
  assert.equal(cells[2], deskStrings.notice_channel_sms);
  assert.ok(failed.reason && cells[3].includes(failed.reason), `${cells[3]} has ${failed.reason}`);
  assert.match(cells[4], /^\d{2}[.:]\d{2}$/);
  assert.ok(!(await panel.textContent()).includes('99990'), 'no number on the supervisor screen');
  assert.equal(await page.locator('#notices-table caption').textContent(), deskStrings.notices_caption);
  await noAxe(page, 'supervisor notices panel');
  await panel.screenshot({ path: join(repo, 'docs', 'screenshots', 'supervisor-notices.png') });
  // In Finnish and Swedish as well.
  for (const l of ['fi', 'sv']) {
    const strings = JSON.parse(readFileSync(join(repo, 'desk-ui', 'i18n', `${l}.json`), 'utf8'));
    await page.selectOption('#lang', l);
    await page.locator('#sv-notices-heading', { hasText: strings.notices_heading }).waitFor();
    await row.locator('td', { hasText: strings.notice_channel_sms }).waitFor();
    const c = await row.locator('th, td').allTextContents();
    assert.deepEqual(c.slice(1, 3), [strings['notice_kind_' + failed.kind], strings.notice_channel_sms]);
    assert.equal(await page.locator('#notices-refresh').textContent(), strings.notices_refresh);
    await noAxe(page, `supervisor notices panel ${l}`);
  }
  await apiCall(daemon.url, '/api/v1/counters/c2/finish', { method: 'POST', token: staff, body: {} });
  await apiCall(daemon.url, '/api/v1/counters/c2/close', { method: 'POST', token: staff, body: {} });
  assert.deepEqual(foreign, []);
  assert.deepEqual(errors, []);
  await context.close();
});
