// Notices in the browser: the phone page's opt-in (kiosk-ui/track.html, "Tell me when my turn is near"), its
// service worker (kiosk-ui/track-sw.js), the kiosk's keypad for a text message (kiosk-ui/index.html, ticket
// screen) and the supervisor's "Notices not delivered" panel, in headless
// Chromium against the real daemon with `[notify]`. The SMS gateway is a real HTTP server started here on
// 127.0.0.1: it records every message and refuses (400) the number REFUSED.
// Run: cd tests/browser && node --test --test-concurrency=1 notices.test.mjs
// Screenshots go to docs/screenshots/phone-notices-*.png, kiosk-sms-*.png and supervisor-notices.png
// (docs/kiosk.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as netServer } from 'node:net';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startDaemon, launchBrowser, originBoundPage, axeViolations, apiCall, login, signIn, repo, pxPerMm, undersizedControls } from './lib.mjs';

const SITE = 'iso-omena';
const PHONE = { width: 390, height: 844 };
const REFUSED = '+358409990000';
const kioskStrings = Object.fromEntries(['fi', 'ar', 'en', 'sv'].map((l) => [l, JSON.parse(readFileSync(join(repo, 'kiosk-ui', 'i18n', `${l}.json`), 'utf8'))]));
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

// ---- the kiosk's keypad ----------------------------------------------------------------------------------

const KIOSK = { width: 1080, height: 1920 };
const PXMM = pxPerMm(21.5, KIOSK.width, KIOSK.height);
/** The panel's reachable band starts 27 % down (docs/kiosk.md), as in kiosk.test.mjs. */
const REACH_TOP = Math.round(KIOSK.height * 0.27);

async function kiosk({ init = null } = {}) {
  const { page, context, foreign } = await originBoundPage(browser, daemon.url, { viewport: KIOSK, bypassCSP: true, hasTouch: true });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  if (init) await context.addInitScript(init);
  await page.goto(`${daemon.url}/kiosk/?device=kiosk-1`);
  await page.locator('.lang-btn').first().waitFor();
  return { page, context, foreign, errors };
}

/** Every control at least 20 x 20 mm, none above the reachable band, nothing cut off (kiosk.test.mjs). */
async function kioskLayout(page, where) {
  const small = await undersizedControls(page, PXMM, 20);
  assert.deepEqual(small, [], `controls under 20 mm on ${where}: ${JSON.stringify(small)}`);
  const high = await page.evaluate((top) => {
    return [...document.querySelectorAll('button, input, select, a[href]')]
      .filter((e) => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden' && !e.closest('dialog:not([open])'))
      .filter((e) => e.getBoundingClientRect().top < top - 0.5)
      .map((e) => `${e.className} "${e.textContent.trim().slice(0, 20)}"`);
  }, REACH_TOP);
  assert.deepEqual(high, [], `out of reach on ${where}`);
  const cut = await page.evaluate(() => {
    const m = document.getElementById('main').getBoundingClientRect();
    return [...document.querySelectorAll('#main *')]
      .filter((e) => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden')
      .filter((e) => {
        const r = e.getBoundingClientRect();
        return r.bottom > m.bottom + 1 || r.right > m.right + 1 || r.left < m.left - 1 || r.top < m.top - 1;
      })
      .map((e) => `${e.tagName}.${e.className} ${e.textContent.slice(0, 30)}`)
      .slice(0, 5);
  });
  assert.deepEqual(cut, [], `cut off on ${where}`);
}

/** Takes a joint-service ticket at the kiosk in `lang`; returns the daemon's answer as the kiosk got it. */
async function kioskTicket(page, lang) {
  if (lang !== 'fi') {
    await page.click(`.lang-btn[data-lang="${lang}"]`);
    await page.locator(`html[lang="${lang}"][data-screen="services"]`).waitFor();
    await page.waitForFunction((l) => window.vuoroKiosk.S.servicesLang === l, lang);
  }
  await page.click('button.svc[data-service="joint-service"]');
  const answer = page.waitForResponse((r) => r.url().endsWith(`/api/v1/sites/${SITE}/tickets`) && r.request().method() === 'POST' && r.ok());
  await page.click('[data-act="take"]');
  const tk = await (await answer).json();
  await page.locator('.big-number').waitFor();
  return tk;
}

async function tapKeys(page, keys) {
  for (const k of keys) await page.locator(`#main [data-key="${k}"]`).tap();
}

/** Nothing of the number anywhere in the page's storage. */
async function storageClean(page) {
  const all = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  assert.ok(!/123\s*4567|765\s*4321|4567|4321/.test(all), `a number in storage: ${all}`);
}

test('kiosk (fi): "Send me a text message" opens a large keypad; 040 123 4567 tapped, OK, shown masked, the call reaches the number once', async () => {
  const s = kioskStrings.fi;
  const { page, context, foreign, errors } = await kiosk();
  const tk = await kioskTicket(page, 'fi');
  const open = page.locator('[data-act="sms"]');
  await open.waitFor();
  assert.equal((await open.textContent()).trim(), s['sms.offer']);
  await kioskLayout(page, 'ticket with the text-message offer');
  await noAxe(page, 'kiosk ticket with the offer');
  await shot(page, 'kiosk-sms-offer-fi.png');

  await open.tap();
  await page.locator('html[data-screen="sms"]').waitFor();
  assert.equal(await page.locator('h1').textContent(), s['sms.title']);
  assert.equal(await page.locator('#hint').textContent(), s['sms.instructions']);
  assert.equal(await page.locator('#sms-example').textContent(), s['notices.sms_example_fi']);
  assert.equal(await page.locator('.keypad .key').count(), 12, '0-9, + and delete');
  for (const k of ['clear', 'sms-cancel', 'sms-ok']) assert.equal(await page.locator(`[data-key="${k}"], [data-act="${k}"]`).count(), 1, k);
  await tapKeys(page, ['0', '4', '0', '1', '2', '3', '4', '5', '6', '7', '8']);
  assert.equal(await page.locator('#sms-number').textContent(), '040 123 456 78');
  await tapKeys(page, ['del']);
  const shown = page.locator('#sms-number');
  assert.equal(await shown.textContent(), '040 123 4567');
  // A + only starts a number: greyed and ignored after a digit.
  assert.equal(await page.locator('#main [data-key="+"]').getAttribute('aria-disabled'), 'true');
  await page.locator('#main [data-key="+"]').tap({ force: true }); // Playwright waits for an aria-disabled key
  assert.equal(await shown.textContent(), '040 123 4567');
  const big = await shown.evaluate((e) => parseFloat(getComputedStyle(e).fontSize));
  assert.ok(big >= 80, `the number is shown large (${big} px)`);
  await storageClean(page);
  await kioskLayout(page, 'keypad fi');
  await noAxe(page, 'keypad fi');
  await shot(page, 'kiosk-sms-keypad-fi.png');

  const put = page.waitForRequest((r) => r.url().endsWith(`/api/v1/tickets/${tk.token}/contact`) && r.method() === 'PUT');
  await page.locator('[data-act="sms-ok"]').tap();
  assert.deepEqual((await put).postDataJSON(), { sms: '+358401234567' }, 'the leading 0 became +358');
  const on = page.locator('#sms-on');
  await on.waitFor();
  assert.equal((await on.textContent()).trim(), s['sms.sent'].replace('{to}', '+358 40 ••• ••67'));
  assert.equal(await on.getAttribute('role'), 'status');
  assert.equal(await on.locator('bdi').getAttribute('dir'), 'ltr');
  assert.equal(await page.locator('html').getAttribute('data-screen'), 'ticket');
  assert.equal(await page.locator('[data-act="sms"]').count(), 0, 'the offer gave way to the confirmation');
  assert.equal(await page.locator('#sms-number').count(), 0);
  assert.equal(await page.evaluate(() => window.vuoroKiosk.S.sms.typed), '', 'the number is gone from memory');
  assert.ok(!(await page.evaluate(() => document.body.innerText)).includes('4567'), 'and from the screen');
  await storageClean(page);
  assert.deepEqual((await contactOf(tk)).contacts, [{ channel: 'sms', to: '+35840*****67' }]);
  await kioskLayout(page, 'ticket with the confirmation');
  await noAxe(page, 'kiosk ticket with the confirmation');
  await shot(page, 'kiosk-sms-sent-fi.png');

  const before = sent.length;
  const staff = await callUntil('c5', tk.number);
  const mine = () => sent.slice(before).filter((m) => m.to === '+358401234567');
  await until(() => mine().some((m) => m.text.includes(tk.number) && m.text.includes('on vuorosi')), 10000, 'the called notice at the gateway');
  await new Promise((r) => setTimeout(r, 1500)); // a second copy would have arrived by now
  assert.equal(mine().filter((m) => m.text.includes('on vuorosi')).length, 1, JSON.stringify(mine()));
  assert.equal(new Set(mine().map((m) => m.text)).size, mine().length, `no notice twice: ${JSON.stringify(mine())}`);
  await apiCall(daemon.url, '/api/v1/counters/c5/finish', { method: 'POST', token: staff, body: {} });
  await apiCall(daemon.url, '/api/v1/counters/c5/close', { method: 'POST', token: staff, body: {} });
  done(foreign, errors);
  await context.close();
});

test('kiosk in speech mode: every key is spoken, the keypad\'s instructions too, a bad number is refused aloud, the confirmation reads the number back digit by digit', async () => {
  const s = kioskStrings.fi;
  const { page, context, foreign, errors } = await kiosk();
  // What the kiosk asks to be spoken (a clip already fetched is played from its cache without a request) ...
  await page.evaluate(() => {
    window.__said = [];
    const sp = window.vuoroKiosk.speaker;
    const say = sp.say.bind(sp);
    sp.say = (items) => {
      window.__said.push(items.filter(Boolean).map((i) => i.text));
      say(items);
    };
  });
  // ... and the clips the daemon rendered for it.
  const speech = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname === '/api/v1/audio/speech') speech.push({ lang: u.searchParams.get('lang'), text: u.searchParams.get('text') });
  });
  const said = () => page.evaluate(() => window.__said);
  const heard = async (text, from = 0) => {
    await until(async () => (await said()).slice(from).some((u) => u.includes(text)), 10000, `spoken: "${text}" in ${JSON.stringify((await said()).slice(from))}`);
  };
  const tk = await kioskTicket(page, 'fi');
  await page.keyboard.press('h');
  await page.locator('#speech-ind:not([hidden])').waitFor();
  await heard(s['sms.offer']); // the ticket screen names the offer
  await page.locator('[data-act="sms"]').tap();
  await page.locator('html[data-screen="sms"]').waitFor();
  await heard(s['sms.title']);
  await heard(s['sms.instructions']);
  await until(() => speech.some((x) => x.lang === 'fi' && x.text === s['sms.instructions']), 10000, 'the instructions rendered as audio');

  // Each key press is spoken: the digit, as a clip of its own; a key tapped twice is spoken twice.
  for (const k of ['9', '8', '8', '7', '6']) {
    const mark = (await said()).length;
    await tapKeys(page, [k]);
    await heard(k, mark);
    await until(() => speech.some((x) => x.lang === 'fi' && x.text === k), 10000, `the clip of ${k}`);
  }
  let mark = (await said()).length;
  await tapKeys(page, ['del']);
  await heard(s['sms.key_delete'], mark);
  // 9887 is not a mobile number: the daemon says 422, the kiosk says it in words, on screen and aloud.
  mark = (await said()).length;
  await page.locator('[data-act="sms-ok"]').tap();
  const err = page.locator('#sms-error');
  await err.waitFor();
  assert.equal(await err.textContent(), s['notices.bad_sms']);
  assert.equal(await err.getAttribute('role'), 'alert');
  await heard(s['notices.bad_sms'], mark);
  assert.equal(await page.evaluate(() => document.activeElement.dataset.act), 'sms-ok', 'the focus stays on OK');
  assert.deepEqual((await contactOf(tk)).contacts, [], 'nothing stored');
  assert.equal(await page.locator('#sms-number').textContent(), '9887', 'the number stays to be corrected');
  await noAxe(page, 'keypad with the error fi');
  await shot(page, 'kiosk-sms-error-fi.png');

  mark = (await said()).length;
  await tapKeys(page, ['clear']);
  await heard(s['sms.key_clear'], mark);
  assert.equal(await page.locator('#sms-number').textContent(), '');
  assert.equal(await err.isVisible(), false, 'the error goes with the next key');
  await tapKeys(page, ['+', '3', '5', '8', '5', '0', '7', '6', '5', '4', '3', '2', '1']);
  assert.equal(await page.locator('#sms-number').textContent(), '+358 507 654 321');
  mark = (await said()).length;
  await page.locator('[data-act="sms-ok"]').tap();
  await page.locator('#sms-on').waitFor();
  // The confirmation, the number read back one digit at a time.
  const head = s['sms.sent'].split('{to}')[0].trim();
  await heard(head, mark);
  const confirmation = (await said()).slice(mark).find((u) => u[0] === head);
  assert.deepEqual(confirmation, [head, s['sms.key_plus'], '3', '5', '8', '5', '0', '7', '6', '5', '4', '3', '2', '1']);
  // H repeats the ticket screen: the masked number, its hidden digits a pause.
  mark = (await said()).length;
  await page.keyboard.press('h');
  await heard(s['sms.sent'].replace('{to}', '+358 50 … 21'), mark);
  // The whole number never goes into a speech request's address.
  for (const x of speech) {
    const d = x.text.replace(/\D/g, '');
    assert.ok(!d.includes('9887') && !d.includes('507654321'), `a number spoken in one request: ${x.text}`);
  }
  assert.deepEqual((await contactOf(tk)).contacts, [{ channel: 'sms', to: '+35850*****21' }]);
  await apiCall(daemon.url, `/api/v1/tickets/${tk.token}`, { method: 'DELETE' });
  done(foreign, errors);
  await context.close();
});

test('kiosk (ar, right to left): the number stays left to right; a finished visit is refused in words; the inactivity reset clears the keypad', async () => {
  const s = kioskStrings.ar;
  const { page, context, foreign, errors } = await kiosk();
  const tk = await kioskTicket(page, 'ar');
  await page.locator('[data-act="sms"]').tap();
  await page.locator('html[data-screen="sms"][dir="rtl"]').waitFor();
  assert.equal(await page.locator('h1').textContent(), s['sms.title']);
  await tapKeys(page, ['0', '4', '0', '5', '5', '5']);
  const shown = page.locator('#sms-number');
  assert.equal(await shown.getAttribute('dir'), 'ltr');
  assert.equal(await shown.textContent(), '040 555');
  // The example's numbers too: the + stays in front of +358.
  assert.deepEqual(await page.locator('#sms-example bdi[dir="ltr"]').allTextContents(), ['040 123 4567', '+358 40 123 4567']);
  // The keys keep the phone's order (1 2 3 from the left) in a right-to-left language.
  const xs = await page.locator('.keypad .key[data-key="1"], .keypad .key[data-key="3"]').evaluateAll((l) => l.map((e) => e.getBoundingClientRect().left));
  assert.ok(xs[0] < xs[1], `1 left of 3: ${xs}`);
  await kioskLayout(page, 'keypad ar');
  await noAxe(page, 'keypad ar');
  await shot(page, 'kiosk-sms-keypad-ar.png');
  // Large text: still fits, within reach, and the number stays.
  await page.click('#b-large');
  await page.locator('html.large').waitFor();
  assert.equal(await shown.textContent(), '040 555');
  await kioskLayout(page, 'keypad ar large text');
  await page.click('#b-large');

  // The visit ends meanwhile: 409, said in words.
  await apiCall(daemon.url, `/api/v1/tickets/${tk.token}`, { method: 'DELETE' });
  await page.locator('[data-act="sms-ok"]').tap();
  await page.locator('#sms-error', { hasText: s['notices.over'] }).waitFor();
  assert.deepEqual((await contactOf(tk)).contacts, []);

  // Walked away: a short inactivity time, then the warning hides the number, then the reset forgets it.
  await page.evaluate(() => Object.assign(window.vuoroKiosk.TIMING, { idle: 800, warn: 1500 }));
  await tapKeys(page, ['1']); // activity: the idle time starts again with the short setting
  assert.equal(await shown.textContent(), '040 5551');
  await page.locator('#idle').waitFor();
  assert.equal(await shown.evaluate((e) => getComputedStyle(e).visibility), 'hidden', 'the number is hidden behind the warning');
  await page.locator('html[data-screen="services"][lang="fi"]').waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#sms-number').count(), 0);
  assert.deepEqual(await page.evaluate(() => window.vuoroKiosk.S.sms), { offered: false, typed: '', error: null, busy: false, to: null });
  assert.ok(!(await page.evaluate(() => document.body.innerText)).includes('5551'));
  await storageClean(page);
  done(foreign, errors);
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
  // Chromium's DevTools push delivery drops a message silently now and then on a loaded machine (the
  // command answers before the worker runs and reports no error), so a message not shown within 3 s is
  // delivered again, as a push service redelivers; the tag makes a second copy replace the first.
  const deliver = async (data, seen, what) => {
    for (let attempt = 0; attempt < 5; attempt++) {
      await cdp.send('ServiceWorker.deliverPushMessage', { origin: daemon.url, registrationId, data });
      try {
        await until(seen, 3000, what);
        return;
      } catch (e) {
        if (attempt === 4) throw e;
      }
    }
  };
  const payload = { title: tk.number, body: `Vuoronumero ${tk.number}: on vuorosi, Palvelupiste 5.`, kind: 'called' };
  await deliver(JSON.stringify(payload), async () => (await shown()).length === 1, 'the notification');
  assert.deepEqual(await shown(), [{ title: tk.number, body: payload.body, tag: `vuoro-${tk.number}`, kind: 'called' }]);
  await deliver('plain words', async () => (await shown()).some((n) => n.body === 'plain words'), 'the text notification');
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
