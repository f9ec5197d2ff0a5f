// Browser tests of the kiosk (kiosk-ui/index.html) and the phone page (kiosk-ui/track.html) in Debian's
// headless Chromium against the real daemon. Run: cd tests/browser && node --test --test-concurrency=1 kiosk.test.mjs
// Screenshots of every screen go to docs/screenshots/kiosk-*.png and phone-*.png (see docs/kiosk.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { execFileSync } from 'node:child_process';
import { startDaemon, launchBrowser, originBoundPage, axeViolations, pxPerMm, undersizedControls, apiCall, login, repo } from './lib.mjs';

/** Fills {name} placeholders, as the clients do. */
const fill = (s, vars) => s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));

const KIOSK = { width: 1080, height: 1920 };
const PHONE = { width: 390, height: 844 };
const PXMM = pxPerMm(21.5, KIOSK.width, KIOSK.height); // about 4.03 CSS px per mm
const SHOTS = join(repo, 'docs', 'screenshots');
const I18N = join(repo, 'kiosk-ui', 'i18n');
const SITE = 'iso-omena';
const LANGS = ['fi', 'sv', 'en', 'ru', 'et', 'ar', 'zh', 'so', 'uk'];
const strings = Object.fromEntries(LANGS.map((l) => [l, JSON.parse(readFileSync(join(I18N, `${l}.json`), 'utf8'))]));
const hasEspeak = (() => {
  try {
    execFileSync('espeak-ng', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (e) {
    return false;
  }
})();

mkdirSync(SHOTS, { recursive: true });

let daemon;
let browser;

before(async () => {
  daemon = await startDaemon();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (daemon) {
    await daemon.stop();
    daemon.cleanup();
  }
});

// ---- helpers ---------------------------------------------------------------------------------------

/** A kiosk page on the portrait panel. `axe`: bypass the daemon's CSP so axe-core can be injected. */
async function kiosk(base = daemon.url, { axe = false, clock = false, init = null, device = 'kiosk-1', goto = true } = {}) {
  const { page, context, foreign } = await originBoundPage(browser, base, { viewport: KIOSK, bypassCSP: axe, hasTouch: true });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  if (init) await context.addInitScript(init);
  if (clock) await page.clock.install();
  if (goto) {
    await page.goto(`${base}/kiosk/?device=${device}`);
    await page.locator('.lang-btn').first().waitFor();
  }
  return { page, context, foreign, errors };
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, name) });
}

async function noAxe(page, where) {
  const v = await axeViolations(page);
  assert.deepEqual(v, [], `axe violations on ${where}: ${JSON.stringify(v, null, 1)}`);
}

/** Every control at least 20 x 20 mm on the panel, and nothing cut off: the kiosk never scrolls. */
async function bigEnough(page, where) {
  const small = await undersizedControls(page, PXMM, 20);
  assert.deepEqual(small, [], `controls under 20 mm on ${where}: ${JSON.stringify(small)}`);
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

/** On the services screen: taps a language of the language row; the screen is redrawn in it. */
async function chooseLang(page, lang) {
  await page.click(`.lang-btn[data-lang="${lang}"]`);
  await page.locator(`html[lang="${lang}"][data-screen="services"]`).waitFor();
  await page.waitForFunction((l) => window.vuoroKiosk.S.servicesLang === l, lang);
  await page.locator('button.svc').first().waitFor();
}

/** The panel's reachable band starts 27 % down (120 cm above the floor: docs/kiosk.md). */
const REACH_TOP = Math.round(KIOSK.height * 0.27);

/** Every visible control on the screen, with its box: none may start above the reachable band. */
async function outOfReach(page) {
  return page.evaluate((top) => {
    return [...document.querySelectorAll('button, input, select, a[href]')]
      .filter((e) => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden' && !e.closest('dialog:not([open])'))
      .map((e) => ({ e, r: e.getBoundingClientRect() }))
      .filter(({ r }) => r.top < top - 0.5)
      .map(({ e, r }) => `${e.id || e.className || e.tagName} "${e.textContent.trim().slice(0, 20)}" top ${Math.round(r.top)}`);
  }, REACH_TOP);
}

/** The labels of the service buttons on the visible page of the services screen. */
async function serviceLabels(page) {
  return page.locator('#main .svc-page:not([hidden]) button.svc .svc-name').allTextContents();
}

async function chooseService(page, id) {
  await page.click(`button.svc[data-service="${id}"]`);
  await page.locator('[data-act="take"]').waitFor();
}

/** Takes a ticket on the confirm screen; returns the daemon's answer as the kiosk got it. */
async function take(page, act = 'take') {
  const answer = page.waitForResponse((r) => r.url().endsWith(`/api/v1/sites/${SITE}/tickets`) && r.request().method() === 'POST' && r.ok());
  await page.click(`[data-act="${act}"]`);
  const res = await answer;
  await page.locator('.big-number').waitFor();
  return res.json();
}

async function staffTickets(user, service) {
  const token = await login(daemon.url, user);
  const r = await apiCall(daemon.url, `/api/v1/sites/${SITE}/tickets?service=${service}`, { token });
  assert.equal(r.status, 200, JSON.stringify(r.data));
  return r.data.tickets;
}

function done(foreign, errors) {
  assert.deepEqual(foreign, [], 'requests left the daemon origin');
  if (errors) assert.deepEqual(errors, [], 'errors in the page');
}

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// ---- translations ----------------------------------------------------------------------------------

test('every key of en.json is in every language file, with the same placeholders', () => {
  const files = readdirSync(I18N).filter((f) => f.endsWith('.json'));
  for (const l of LANGS) assert.ok(files.includes(`${l}.json`), `kiosk-ui/i18n/${l}.json is missing`);
  const en = strings.en;
  const ph = (s) => (s.match(/\{\w+\}/g) || []).sort().join(',');
  for (const f of files) {
    const other = JSON.parse(readFileSync(join(I18N, f), 'utf8'));
    const missing = Object.keys(en).filter((k) => typeof other[k] !== 'string' || !other[k].trim());
    assert.deepEqual(missing, [], `${f} lacks keys`);
    const extra = Object.keys(other).filter((k) => !(k in en));
    assert.deepEqual(extra, [], `${f} has keys en.json does not`);
    const wrong = Object.keys(en).filter((k) => ph(en[k]) !== ph(other[k]));
    assert.deepEqual(wrong, [], `${f} has other placeholders than en.json`);
  }
});

// ---- taking tickets ---------------------------------------------------------------------------------

test('Finnish: service, confirm and ticket screens; the ticket is real; axe and 20 mm on each', async () => {
  const { page, context, foreign, errors } = await kiosk(daemon.url, { axe: true });
  // The first screen is the services, in Finnish: no language screen to tap through first.
  assert.equal(await page.locator('html').getAttribute('data-screen'), 'services');
  assert.equal(await page.locator('html').getAttribute('lang'), 'fi');
  assert.equal(await page.locator('h1').textContent(), strings.fi['services.title']);
  assert.ok(await page.locator('button.svc').first().isVisible(), 'services on the first screen');
  // Every language one tap away on it, named in its own language, Suomi, Svenska, English first; no flags.
  const names = await page.locator('.lang-row .lang-btn').allTextContents();
  assert.deepEqual(names.slice(0, 3), ['Suomi', 'Svenska', 'English']);
  assert.equal(names.length, 9);
  for (const n of ['Русский', 'Eesti', 'العربية', '中文', 'Soomaali', 'Українська']) assert.ok(names.includes(n), n);
  assert.equal(await page.locator('.lang-btn img, .lang-btn svg').count(), 0, 'no flags or pictures on language buttons');
  assert.equal(await page.locator('.lang-btn[aria-current="true"]').getAttribute('data-lang'), 'fi');
  // Grouped by unit, icon and text, waiting count and wait on each open service.
  assert.ok((await page.locator('section.unit h2').allTextContents()).includes('Kela'));
  const first = page.locator('button.svc[data-service="kela-general"]');
  assert.equal(await first.locator('svg').count(), 1);
  assert.match(await first.textContent(), /Kelan etuudet/);
  assert.match(await first.textContent(), /Jonossa: \d+/);
  // Large text, contrast and Ask staff are on this screen too; the languages are buttons of their own here.
  for (const id of ['b-large', 'b-contrast', 'b-staff']) assert.ok(await page.locator(`#${id}`).isVisible(), id);
  assert.ok(await page.locator('.lang-row').isVisible(), 'the languages');
  await noAxe(page, 'services fi');
  await bigEnough(page, 'services fi');
  await shot(page, 'kiosk-services-fi.png');

  await chooseService(page, 'kela-general');
  assert.match(await page.locator('.confirm-name').textContent(), /Kelan etuudet/);
  await noAxe(page, 'confirm fi');
  await bigEnough(page, 'confirm fi');
  await shot(page, 'kiosk-confirm-fi.png');

  const tk = await take(page);
  assert.equal(tk.lang, 'fi');
  assert.equal(tk.priority, 'normal');
  assert.equal((await page.locator('.big-number').textContent()).trim(), tk.number);
  assert.match(await page.locator('.fact.ahead dd').textContent(), new RegExp(`^${tk.position}$`));
  assert.equal(await page.locator('.qr-img svg').count(), 1, 'the QR code is shown');
  // The QR code the kiosk drew scans, and holds the ticket's tracking address.
  const qrPng = join(tmpdir(), `vuoro-qr-${process.pid}.png`);
  await page.locator('.qr-img').screenshot({ path: qrPng });
  const scanned = execFileSync('zbarimg', ['--quiet', '--raw', qrPng], { encoding: 'utf8' }).trim();
  assert.equal(scanned, tk.track_url);
  // Where to wait: the area of the counters serving the service, as the daemon names it.
  assert.ok(tk.wait_area, 'the ticket names where to wait');
  assert.equal((await page.locator('.fact.where dd').textContent()).trim(), tk.wait_area);
  await noAxe(page, 'ticket fi');
  await bigEnough(page, 'ticket fi');
  await shot(page, 'kiosk-ticket-fi.png');

  // The daemon has exactly that ticket, waiting, in Finnish.
  const r = await apiCall(daemon.url, `/api/v1/tickets/${tk.token}`);
  assert.equal(r.status, 200);
  assert.equal(r.data.number, tk.number);
  assert.equal(r.data.state, 'waiting');
  assert.match(tk.track_url, /\/kiosk\/track\.html#t=/);

  // Done: back to the first screen in the default language.
  await page.click('[data-act="done"]');
  await page.locator('html[data-screen="services"]').waitFor();
  assert.equal(await page.locator('html').getAttribute('lang'), 'fi');
  done(foreign, errors);
  await context.close();
});

test('Swedish: a ticket in Swedish, "I need assistance" gives priority assist; axe finds nothing', async () => {
  const { page, context, foreign, errors } = await kiosk(daemon.url, { axe: true });
  await chooseLang(page, 'sv');
  assert.equal(await page.locator('html').getAttribute('lang'), 'sv');
  assert.equal(await page.locator('h1').textContent(), 'Välj tjänst');
  await noAxe(page, 'services sv');
  await shot(page, 'kiosk-services-sv.png');
  await chooseService(page, 'joint-service');
  await noAxe(page, 'confirm sv');
  const tk = await take(page, 'assist');
  assert.equal(tk.lang, 'sv');
  assert.equal(tk.priority, 'assist');
  assert.equal(await page.locator('.assist-note').textContent(), strings.sv['ticket.assist']);
  await noAxe(page, 'ticket sv');
  await shot(page, 'kiosk-ticket-sv.png');
  const staff = await staffTickets('agent2', 'joint-service');
  assert.equal(staff.find((x) => x.number === tk.number).priority, 'assist');
  done(foreign, errors);
  await context.close();
});

test('Arabic: the page turns right-to-left, ticket numbers stay left-to-right; Ask staff keeps its place', async () => {
  const { page, context, foreign, errors } = await kiosk(daemon.url, { axe: true });
  const staffBoxFi = await page.locator('#b-staff').boundingBox();
  await chooseLang(page, 'ar');
  assert.equal(await page.locator('html').getAttribute('dir'), 'rtl');
  assert.equal(await page.locator('html').getAttribute('lang'), 'ar');
  assert.equal(await page.locator('h1').textContent(), strings.ar['services.title']);
  // Right-to-left layout: the heading hugs the right edge, a service's icon is right of its text.
  const h1 = await page.locator('h1').boundingBox();
  assert.ok(h1.x + h1.width > KIOSK.width - 120, `heading starts at the right: ${JSON.stringify(h1)}`);
  const svc = page.locator('button.svc').first();
  const iconBox = await svc.locator('svg').boundingBox();
  const textBox = await svc.locator('.svc-text').boundingBox();
  assert.ok(iconBox.x > textBox.x, 'icon on the right in RTL');
  // Ask staff is in the same physical place as in Finnish.
  const staffBoxAr = await page.locator('#b-staff').boundingBox();
  assert.deepEqual(staffBoxAr, staffBoxFi);
  await noAxe(page, 'services ar');
  await bigEnough(page, 'services ar');
  await shot(page, 'kiosk-services-ar.png');

  await chooseService(page, 'kela-general');
  await noAxe(page, 'confirm ar');
  await bigEnough(page, 'confirm ar');
  const tk = await take(page);
  assert.equal(tk.lang, 'ar');
  const num = page.locator('.big-number bdi');
  assert.equal(await num.getAttribute('dir'), 'ltr');
  assert.equal(await num.evaluate((e) => getComputedStyle(e).direction), 'ltr');
  assert.equal((await num.textContent()).trim(), tk.number);
  // Left-to-right on screen: the letter is left of the digits.
  const order = await num.evaluate((e) => {
    const r = document.createRange();
    r.setStart(e.firstChild, 0);
    r.setEnd(e.firstChild, 1);
    const letter = r.getBoundingClientRect().x;
    r.setStart(e.firstChild, e.firstChild.length - 1);
    r.setEnd(e.firstChild, e.firstChild.length);
    return { letter, last: r.getBoundingClientRect().x };
  });
  assert.ok(order.letter < order.last, `number reads left to right: ${JSON.stringify(order)}`);
  await noAxe(page, 'ticket ar');
  await bigEnough(page, 'ticket ar');
  await shot(page, 'kiosk-ticket-ar.png');
  done(foreign, errors);
  await context.close();
});

test('English: axe finds nothing and every control is at least 20 x 20 mm, also in large text and high contrast', async () => {
  const { page, context, foreign, errors } = await kiosk(daemon.url, { axe: true });
  await noAxe(page, 'language screen');
  await bigEnough(page, 'language screen');
  await chooseLang(page, 'en');
  await noAxe(page, 'services en');
  await bigEnough(page, 'services en');
  const normalSize = await page.locator('.svc-name').first().evaluate((e) => parseFloat(getComputedStyle(e).fontSize));

  // Large text: one tap; every screen grows, nothing scrolls (services are paged instead).
  await page.click('#b-large');
  assert.equal(await page.locator('#b-large').getAttribute('aria-pressed'), 'true');
  const largeSize = await page.locator('.svc-name').first().evaluate((e) => parseFloat(getComputedStyle(e).fontSize));
  assert.ok(largeSize >= normalSize * 1.3, `large text is larger: ${normalSize} -> ${largeSize}`);
  assert.equal(await page.evaluate(() => document.documentElement.scrollHeight <= innerHeight), true, 'no scrolling');
  await noAxe(page, 'services en large');
  await bigEnough(page, 'services en large');
  await shot(page, 'kiosk-large-text.png');
  // The demo's 17 services do not fit one column of large text: they are paged, by tap, not by swipe.
  assert.equal(await page.locator('.pager').count(), 1, 'large text pages the services');
  const firstOnPage = () => page.locator('.svc-page:not([hidden]) button.svc').first().getAttribute('data-service');
  const before = await firstOnPage();
  await page.click('.pager [data-act="next"]');
  assert.notEqual(await firstOnPage(), before);
  await noAxe(page, 'services en large page 2');
  await bigEnough(page, 'services en large page 2');
  await page.click('.pager [data-act="prev"]');
  assert.equal(await firstOnPage(), before);
  await page.click('#b-large');

  // High contrast: one tap.
  await page.click('#b-contrast');
  assert.equal(await page.locator('#b-contrast').getAttribute('aria-pressed'), 'true');
  assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(0, 0, 0)');
  await noAxe(page, 'services en contrast');
  await bigEnough(page, 'services en contrast');
  await shot(page, 'kiosk-high-contrast.png');
  await chooseService(page, 'library-help');
  await noAxe(page, 'confirm en contrast');
  await bigEnough(page, 'confirm en contrast');
  await page.click('#b-contrast');

  await noAxe(page, 'confirm en');
  await bigEnough(page, 'confirm en');
  await shot(page, 'kiosk-confirm-en.png');
  await take(page);
  await noAxe(page, 'ticket en');
  await bigEnough(page, 'ticket en');
  await shot(page, 'kiosk-ticket-en.png');

  // The language button on the ticket screen opens the language choice and comes back to the ticket.
  await page.click('#b-lang');
  await page.locator('.lang-list .lang-btn').first().waitFor();
  await noAxe(page, 'language picker from the ticket');
  await bigEnough(page, 'language picker from the ticket');
  await shot(page, 'kiosk-language.png');
  await page.click('.lang-btn[data-lang="fi"]');
  await page.locator('.big-number').waitFor();
  assert.equal(await page.locator('h1').textContent(), strings.fi['ticket.title']);
  done(foreign, errors);
  await context.close();
});

test('long texts in large print still fit every screen (Somali, Ukrainian)', async () => {
  const { page, context, foreign, errors } = await kiosk();
  for (const lang of ['so', 'uk']) {
    await chooseLang(page, lang);
    await page.click('#b-large');
    await page.waitForTimeout(1200); // a live refresh may change the counts
    await bigEnough(page, `services ${lang} large`);
    await chooseService(page, 'kela-families');
    await bigEnough(page, `confirm ${lang} large`);
    await take(page, 'assist');
    await bigEnough(page, `ticket ${lang} large`);
    if (lang === 'so') await shot(page, 'kiosk-ticket-so-large.png');
    await page.click('[data-act="done"]');
    await page.locator('html[lang="fi"][data-screen="services"]').waitFor();
  }
  done(foreign, errors);
  await context.close();
});

// ---- a pilot hall: what a customer meets -------------------------------------------------------------

test('no two service buttons on a screen read the same, in every language; the ticket screen names a sensitive service neutrally', async () => {
  const { page, context, foreign, errors } = await kiosk(daemon.url, { goto: false });
  const auth = [];
  page.on('request', (r) => {
    if (/\/api\/v1\/sites\/[^/]+\/services\?lang=/.test(r.url())) auth.push(r.headers().authorization || '');
  });
  await page.goto(`${daemon.url}/kiosk/?device=kiosk-1`);
  await page.locator('button.svc').first().waitFor();
  for (const lang of LANGS) {
    if (lang !== 'fi') await chooseLang(page, lang);
    const pages = await page.evaluate(() => window.vuoroKiosk.S.pageCount || 1);
    for (let p = 0; p < pages; p++) {
      const labels = await serviceLabels(page);
      assert.ok(labels.length >= (p === 0 ? 5 : 1), `${lang} page ${p + 1}: ${labels.length} services`);
      const twice = labels.filter((l, i) => labels.indexOf(l) !== i);
      assert.deepEqual(twice, [], `${lang} page ${p + 1}: buttons that read the same: ${JSON.stringify(labels)}`);
      if (p < pages - 1) await page.click('.pager [data-act="next"]');
    }
    // The real names come from the daemon because the kiosk shows its device token.
    assert.match(auth[auth.length - 1] || '', /^Bearer \S+/, `the services in ${lang} are asked for with the device token`);
  }
  // Finnish: the two mental-health services and the two HUS services by their real names.
  await chooseLang(page, 'fi');
  const all = await page.locator('button.svc .svc-name').allTextContents();
  for (const n of ['Mielenterveyspalvelut', 'Päihdepalvelut', 'HUS Laboratorio: näytteenotto', 'HUS Kuvantaminen: röntgen']) assert.ok(all.includes(n), n);
  // Once the ticket is out, the screen (which stays up after the customer left) says only the neutral name.
  await chooseService(page, 'substance-abuse');
  const tk = await take(page);
  assert.equal((await page.locator('.ticket-svc').textContent()).trim(), 'Terveyspalvelut');
  assert.equal(tk.service_name, 'Terveyspalvelut');
  const text = await page.locator('#main').textContent();
  for (const word of ['Päihde', 'Mielenterveys']) assert.ok(!text.includes(word), `"${word}" on the ticket screen`);
  done(foreign, errors);
  await context.close();

  // The health kiosk (kiosk-2) offers only the health services: still no two alike.
  const k2 = await kiosk(daemon.url, { device: 'kiosk-2' });
  const labels2 = await serviceLabels(k2.page);
  assert.equal(new Set(labels2).size, labels2.length, JSON.stringify(labels2));
  done(k2.foreign, k2.errors);
  await k2.context.close();
});

test('Arabic and Somali screens and tickets are in Arabic and Somali: the site, the units and where to wait, no English', async () => {
  const token = (await apiCall(daemon.url, '/api/v1/demo/device-token?device=kiosk-1')).data.token;
  const en = (await apiCall(daemon.url, `/api/v1/sites/${SITE}/services?lang=en`, { token })).data.services;
  const enUnits = new Set(en.map((s) => s.unit_name).filter((n) => n !== 'Kela' && !n.startsWith('HUS')));
  const enAreas = new Set(en.map((s) => s.wait_area).filter(Boolean));
  const enSite = (await apiCall(daemon.url, '/api/v1/sites')).data.sites.find((x) => x.id === SITE).name.en;
  const { page, context, foreign, errors } = await kiosk(daemon.url);
  for (const lang of ['ar', 'so']) {
    await chooseLang(page, lang);
    assert.notEqual((await page.locator('#site-name').textContent()).trim(), enSite, `${lang}: the site's name`);
    const units = await page.locator('section.unit h2').allTextContents();
    const english = units.filter((u) => enUnits.has(u));
    assert.deepEqual(english, [], `${lang}: unit headings in English`);
    await chooseService(page, 'child-clinic');
    await take(page);
    const where = (await page.locator('.fact.where dd').textContent()).trim();
    assert.ok(!enAreas.has(where), `${lang}: where to wait is "${where}"`);
    await page.click('[data-act="done"]');
    await page.locator('html[lang="fi"][data-screen="services"]').waitFor();
  }
  done(foreign, errors);
  await context.close();
});

test('every control is in the reachable lower part of the panel: services, confirm, ticket and language screens, also in Arabic and large text', async () => {
  const { page, context, foreign, errors } = await kiosk(daemon.url);
  for (const [lang, large] of [['fi', false], ['ar', false], ['en', true]]) {
    if (lang !== 'fi') await chooseLang(page, lang);
    if (large) await page.click('#b-large');
    assert.deepEqual(await outOfReach(page), [], `services ${lang}${large ? ' large' : ''}`);
    await chooseService(page, 'kela-families');
    assert.deepEqual(await outOfReach(page), [], `confirm ${lang}`);
    await page.click('#b-lang');
    await page.locator('.lang-list').waitFor();
    assert.deepEqual(await outOfReach(page), [], `language screen ${lang}`);
    await page.click(`.lang-list .lang-btn[data-lang="${lang}"]`);
    await page.locator('[data-act="take"]').waitFor();
    await take(page);
    assert.deepEqual(await outOfReach(page), [], `ticket ${lang}`);
    await page.click('[data-act="done"]');
    await page.locator('html[lang="fi"][data-screen="services"]').waitFor();
  }
  done(foreign, errors);
  await context.close();
});

test('with no counter open the kiosk says so instead of minutes, on the services, confirm and ticket screens', async () => {
  const d = await startDaemon();
  try {
    const { page, context, foreign, errors } = await kiosk(d.url, { axe: true });
    const svc = page.locator('button.svc[data-service="parking"] .svc-meta');
    assert.equal(await svc.textContent(), `${fill(strings.fi['services.waiting'], { n: 0 })} · ${strings.fi['services.eta_no_counter']}`);
    for (const t of await page.locator('button.svc .svc-meta').allTextContents()) assert.doesNotMatch(t, /noin \d+ min/, t);
    await chooseService(page, 'parking');
    assert.match(await page.locator('.confirm-meta').textContent(), new RegExp(strings.fi['services.eta_no_counter']));
    const tk = await take(page);
    assert.equal(tk.eta_minutes, null);
    assert.equal(tk.eta_reason, 'no_counter_open');
    assert.equal((await page.locator('.fact.eta dd').textContent()).trim(), strings.fi['ticket.eta_no_counter']);
    await noAxe(page, 'ticket with no counter open');
    await page.click('[data-act="done"]');
    // Counter 6 (parking and advice) opens: minutes again, from the daemon's estimate.
    const staff = await login(d.url, 'agent2');
    assert.equal((await apiCall(d.url, '/api/v1/counters/c6/open', { method: 'POST', token: staff, body: {} })).status, 200);
    await page.locator('button.svc[data-service="parking"]', { hasText: /Odotus: noin \d+ min/ }).waitFor({ timeout: 10000 });
    const still = await page.locator('button.svc[data-service="kela-general"] .svc-meta').textContent();
    assert.match(still, new RegExp(strings.fi['services.eta_no_counter']), 'Kela has no counter open still');
    done(foreign, errors);
    await context.close();
  } finally {
    await d.stop();
    d.cleanup();
  }
});

test('"Ask staff" and "I need assistance" look different, keep their colour in high contrast and their labels fit in large text', async () => {
  const { page, context, foreign, errors } = await kiosk(daemon.url, { axe: true });
  await chooseService(page, 'kela-general');
  const staffIcon = await page.locator('#b-staff svg').innerHTML();
  const assistIcon = await page.locator('[data-act="assist"] svg').innerHTML();
  assert.notEqual(staffIcon, assistIcon, 'two icons');
  const look = (sel) => page.locator(sel).evaluate((e) => { const c = getComputedStyle(e); return { bg: c.backgroundColor, border: `${c.borderTopStyle} ${c.borderTopColor}` }; });
  assert.notDeepEqual(await look('#b-staff'), await look('[data-act="assist"]'));
  // High contrast: "Ask staff" has a background of its own, not the black of the other buttons.
  await page.click('#b-contrast');
  const staffBg = (await look('#b-staff')).bg;
  assert.notEqual(staffBg, 'rgb(0, 0, 0)', 'Ask staff keeps a colour in high contrast');
  assert.notEqual(staffBg, (await look('#b-large')).bg);
  await noAxe(page, 'confirm in high contrast');
  await shot(page, 'kiosk-confirm-contrast.png');
  await page.click('#b-contrast');
  // Every bar label inside its button, with room to the border, in every language, normal and large.
  const cramped = () =>
    page.evaluate(() =>
      [...document.querySelectorAll('#bar button')]
        .filter((b) => b.getClientRects().length && getComputedStyle(b).visibility !== 'hidden')
        .flatMap((b) => {
          const box = b.getBoundingClientRect();
          const r = document.createRange();
          r.selectNodeContents(b.querySelector('.bar-label'));
          const t = r.getBoundingClientRect();
          const room = Math.min(t.left - box.left, box.right - t.right, t.top - box.top, box.bottom - t.bottom);
          return room < 6 ? [`${b.id} ${document.documentElement.lang}: ${Math.round(room)} px`] : [];
        }),
    );
  await page.click('[data-act="back"]');
  for (const lang of LANGS) {
    await chooseLang(page, lang);
    await chooseService(page, 'kela-general'); // the language button shows on this screen
    for (const large of [false, true]) {
      if (large) await page.click('#b-large');
      assert.deepEqual(await cramped(), [], `${lang}${large ? ' large' : ''}`);
      if (large) await page.click('#b-large');
    }
    await page.click('[data-act="back"]');
  }
  done(foreign, errors);
  await context.close();
});

test('screenshots of the customer screens in fi, sv, en and ar at the real sizes, axe on each', async () => {
  const { page, context, foreign, errors } = await kiosk(daemon.url, { axe: true });
  for (const lang of ['fi', 'sv', 'en', 'ar']) {
    await chooseLang(page, lang);
    await noAxe(page, `services ${lang}`);
    await bigEnough(page, `services ${lang}`);
    await shot(page, `kiosk-services-${lang}.png`);
    await chooseService(page, 'joint-service');
    await noAxe(page, `confirm ${lang}`);
    await shot(page, `kiosk-confirm-${lang}.png`);
    const tk = await take(page);
    await noAxe(page, `ticket ${lang}`);
    await bigEnough(page, `ticket ${lang}`);
    await shot(page, `kiosk-ticket-${lang}.png`);
    const ph = await phone(tk.track_url.replace(/^https?:\/\/[^/]+/, daemon.url));
    assert.equal(await ph.page.locator('html').getAttribute('lang'), lang);
    await noAxe(ph.page, `phone ${lang}`);
    await shot(ph.page, `phone-${lang}.png`);
    done(ph.foreign, ph.errors);
    await ph.context.close();
    await page.click('[data-act="done"]');
    await page.locator('html[lang="fi"][data-screen="services"]').waitFor();
  }
  done(foreign, errors);
  await context.close();
});

test('a closed service says when it opens and one past its last-ticket time says so, neither issues', async () => {
  // A config where one service is closed for hours and one has passed its last-ticket time.
  const dir = mkdtempSync(join(tmpdir(), 'vuoro-kiosk-cfg-'));
  let cfg = readFileSync(join(repo, 'config', 'demo.toml'), 'utf8');
  cfg = cfg.replace('always_open = true\n', 'always_open = false\n');
  // Open around the clock except culture-info (never open today: opens tomorrow) and youth-services,
  // which stops tickets 24 h before closing (always past its last ticket).
  const allDay = '{ mon = ["00:00-23:59"], tue = ["00:00-23:59"], wed = ["00:00-23:59"], thu = ["00:00-23:59"], fri = ["00:00-23:59"], sat = ["00:00-23:59"], sun = ["00:00-23:59"] }';
  cfg = cfg.replace(/^hours = \{ mon = .*$/m, `hours = ${allDay}`);
  cfg = cfg.replace(/^exception = \[[\s\S]*?^\]\n/m, '');
  cfg = cfg.replace('id = "youth-services"\n', 'id = "youth-services"\nlast_ticket_minutes_before_close = 1439\n');
  const today = new Intl.DateTimeFormat('en', { timeZone: 'Europe/Helsinki', weekday: 'short' }).format(new Date()).toLowerCase().slice(0, 3);
  const days = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
  const tomorrow = days[(days.indexOf(today) + 1) % 7];
  cfg = cfg.replace('id = "culture-info"\n', `id = "culture-info"\nhours = { ${tomorrow} = ["10:00-16:00"] }\n`);
  const path = join(dir, 'hours.toml');
  writeFileSync(path, cfg);
  const d = await startDaemon({ config: path });
  try {
    const svcs = (await apiCall(d.url, `/api/v1/sites/${SITE}/services?lang=en`)).data.services;
    const culture = svcs.find((s) => s.id === 'culture-info');
    const youth = svcs.find((s) => s.id === 'youth-services');
    assert.equal(culture.accepting, false);
    assert.equal(youth.accepting, false);
    const { page, context, foreign, errors } = await kiosk(d.url, { axe: true });
    await chooseLang(page, 'en');
    assert.equal(await page.locator('button[data-service="culture-info"]').count(), 0, 'a closed service is not a button');
    assert.equal(await page.locator('button[data-service="youth-services"]').count(), 0);
    const c = await page.locator('.svc.closed[data-service="culture-info"]').textContent();
    assert.ok(culture.opens_at, 'the daemon says when culture-info opens');
    assert.match(c, /Closed\. Opens [A-Z][a-z]{2} \d{2}:\d{2}\./, 'weekday and time of the opening');
    assert.match(await page.locator('.svc.closed[data-service="youth-services"]').textContent(), /No more tickets today\./);
    await noAxe(page, 'services with closed ones');
    await shot(page, 'kiosk-services-closed.png');
    done(foreign, errors);
    await context.close();
  } finally {
    await d.stop();
    d.cleanup();
  }
});

test('queue counts update live on the services screen, without replacing the buttons under a finger', async () => {
  const { page, context, foreign, errors } = await kiosk();
  await chooseLang(page, 'en');
  await page.waitForTimeout(1500); // the first live refresh
  const btn = page.locator('button.svc[data-service="parking"]');
  const before = Number(/In queue: (\d+)/.exec(await btn.textContent())[1]);
  await btn.evaluate((e) => (e.__same = true));
  // Another kiosk issues a ticket for that service.
  const r2 = await apiCall(daemon.url, `/api/v1/sites/${SITE}/tickets`, { method: 'POST', token: (await apiCall(daemon.url, '/api/v1/demo/device-token?device=kiosk-3')).data.token, body: { service: 'parking', lang: 'fi' } });
  assert.equal(r2.status, 201, JSON.stringify(r2.data));
  await page.locator('button.svc[data-service="parking"]', { hasText: `In queue: ${before + 1}` }).waitFor({ timeout: 10000 });
  assert.equal(await btn.evaluate((e) => e.__same === true), true, 'the same button element');
  done(foreign, errors);
  await context.close();
});

// ---- one ticket per tap ----------------------------------------------------------------------------

test('a double tap gives one ticket; the next customer gets a new one', async () => {
  const { page, context, foreign, errors } = await kiosk();
  const posts = [];
  page.on('request', (r) => r.method() === 'POST' && r.url().endsWith(`/sites/${SITE}/tickets`) && posts.push(r.headers()['idempotency-key']));
  const before = (await staffTickets('agent2', 'city-housing')).length;
  await chooseLang(page, 'fi');
  await chooseService(page, 'city-housing');
  await page.dblclick('[data-act="take"]');
  await page.locator('.big-number').waitFor();
  await page.waitForTimeout(1500); // anything a second tap might have sent has arrived by now
  const afterOne = await staffTickets('agent2', 'city-housing');
  assert.equal(afterOne.length, before + 1, 'exactly one ticket for a double tap');
  assert.equal(posts.length, 1);
  assert.match(posts[0], /^[\x21-\x7e]{1,100}$/, 'an Idempotency-Key header is sent');

  await page.click('[data-act="done"]');
  await page.locator('html[lang="fi"][data-screen="services"]').waitFor();
  await chooseService(page, 'city-housing');
  await take(page);
  assert.equal((await staffTickets('agent2', 'city-housing')).length, before + 2);
  assert.equal(posts.length, 2);
  assert.notEqual(posts[1], posts[0], 'a new ticket attempt has a new key');
  done(foreign, errors);
  await context.close();
});

test('a lost answer is retried with the same Idempotency-Key and still gives one ticket', async () => {
  const { page, context, foreign, errors } = await kiosk();
  const before = (await staffTickets('agent1', 'kela-families')).length;
  const keys = [];
  await page.route(`**/api/v1/sites/${SITE}/tickets`, async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    keys.push(route.request().headers()['idempotency-key']);
    if (keys.length === 1) {
      await route.fetch(); // the daemon makes the ticket ...
      return route.abort('connectionreset'); // ... but the answer never reaches the kiosk
    }
    return route.continue();
  });
  await chooseLang(page, 'en');
  await chooseService(page, 'kela-families');
  await page.click('[data-act="take"]');
  await page.locator('.big-number').waitFor({ timeout: 15000 });
  assert.equal(keys.length, 2, 'one retry');
  assert.equal(keys[0], keys[1], 'the retry reuses the key');
  const after = await staffTickets('agent1', 'kela-families');
  assert.equal(after.length, before + 1, 'one ticket');
  assert.equal((await page.locator('.big-number').textContent()).trim(), after.map((t) => t.number).sort().pop());
  done(foreign, errors);
  await context.close();
});

// ---- inactivity ------------------------------------------------------------------------------------

test('inactivity: a visible and audible warning at least 20 s before the reset, one tap extends, then back to Finnish', async () => {
  const { page, context, foreign, errors } = await kiosk(daemon.url, { clock: true, axe: true });
  const sounds = [];
  page.on('request', (r) => r.url().endsWith('.wav') && sounds.push(r.url()));
  const T = await page.evaluate(() => window.vuoroKiosk.TIMING);
  assert.ok(T.warn >= 20000, `warning ${T.warn} ms before the reset`);
  await chooseLang(page, 'en');
  await page.click('#b-large');
  // Let the first live update settle before jumping in time. The page clock also runs in real time, so
  // every step below leaves a few seconds of margin for the test's own latency.
  await page.clock.runFor(1500);
  await page.waitForTimeout(500);

  await page.clock.runFor(T.idle - 5000);
  assert.equal(await page.locator('#idle').isVisible(), false, 'no warning before the idle time');
  await page.clock.runFor(4500);
  await page.locator('#idle').waitFor();
  assert.match(await page.locator('#idle-text').textContent(), /start over in 2[0-9] seconds/);
  await page.waitForTimeout(300);
  assert.ok(sounds.some((u) => u.endsWith('/kiosk/sounds/attention.wav')), 'the warning tone is played');
  await noAxe(page, 'idle warning');
  await bigEnough(page, 'idle warning');
  await shot(page, 'kiosk-idle-warning.png');
  await page.clock.runFor(20500);
  assert.ok(await page.locator('#idle').isVisible(), 'still warning 20.5 s later');
  assert.equal(await page.locator('html').getAttribute('lang'), 'en', 'not reset yet');

  // One tap gives more time.
  await page.click('#idle-more');
  assert.equal(await page.locator('#idle').isVisible(), false);
  assert.equal(await page.locator('html').getAttribute('lang'), 'en');
  await page.clock.runFor(T.idle - 4000);
  assert.equal(await page.locator('#idle').isVisible(), false, 'the tap restarted the idle time');
  await page.clock.runFor(4500);
  await page.locator('#idle').waitFor();
  await page.clock.runFor(T.warn + 500);
  await page.locator('html[data-screen="services"][lang="fi"]').waitFor();
  assert.equal(await page.locator('#idle').isVisible(), false);
  assert.equal(await page.locator('html').getAttribute('lang'), 'fi', 'back to the default language');
  assert.equal(await page.evaluate(() => document.documentElement.classList.contains('large')), false, 'large text off again');
  assert.equal(await page.evaluate(() => window.vuoroKiosk.S.offline), false);
  done(foreign, errors);
  await context.close();
});

// ---- printer -----------------------------------------------------------------------------------------

test('printer fails (a TCP printer on a closed port): the screen says so and the QR code is the ticket', async () => {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'vuoro-kiosk-cfg-'));
  const demo = readFileSync(join(repo, 'config', 'demo.toml'), 'utf8');
  const line = /^printer = \{ kind = "virtual", dir = "printed\/kiosk-1"(.*)\}$/m;
  assert.match(demo, line, 'the demo config still has kiosk-1 printing to a virtual printer');
  const path = join(dir, 'tcp-printer.toml');
  writeFileSync(path, demo.replace(line, `printer = { kind = "tcp", address = "127.0.0.1:${port}"$1}`));
  const d = await startDaemon({ config: path });
  try {
    const { page, context, foreign, errors } = await kiosk(d.url, { axe: true });
    await chooseLang(page, 'fi');
    await chooseService(page, 'kela-general');
    await take(page);
    const box = page.locator('.print-box[data-print="failed"]');
    await box.waitFor({ timeout: 20000 });
    assert.match(await box.textContent(), new RegExp(strings.fi['ticket.print_failed'].slice(0, 30)));
    assert.equal(await box.getAttribute('role'), 'alert');
    assert.ok(await page.locator('.qr-img svg').isVisible(), 'the QR code is there');
    await noAxe(page, 'print failed');
    await shot(page, 'kiosk-print-failed.png');
    // The next customer is told before taking a ticket: on the services and on the confirm screen.
    await page.click('[data-act="done"]');
    await page.locator('html[data-screen="services"]').waitFor();
    const warn = page.locator('.printer-warn');
    await warn.waitFor();
    assert.match(await warn.textContent(), new RegExp(strings.fi['printer.warn'].slice(0, 25)));
    assert.match(await warn.textContent(), new RegExp(strings.fi['printer.warn_qr'].slice(0, 25)));
    await noAxe(page, 'services with the printer warning');
    await bigEnough(page, 'services with the printer warning');
    await shot(page, 'kiosk-printer-warning.png');
    await chooseService(page, 'kela-families');
    assert.ok(await page.locator('.confirm .printer-warn').isVisible(), 'the confirm screen warns too');
    await noAxe(page, 'confirm with the printer warning');
    await bigEnough(page, 'confirm with the printer warning');
    assert.deepEqual(await outOfReach(page), []);
    done(foreign, errors);
    await context.close();
  } finally {
    await d.stop();
    d.cleanup();
  }
});

// ---- speech ----------------------------------------------------------------------------------------

test('speech mode (key H): screens, choices and finally the number and where to wait are spoken from audio files', async () => {
  const { page, context, foreign, errors } = await kiosk(daemon.url, {
    init: () => {
      window.__synth = 0;
      if (window.speechSynthesis) window.speechSynthesis.speak = () => window.__synth++;
    },
  });
  const speech = [];
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (u.pathname === '/api/v1/audio/speech') speech.push({ lang: u.searchParams.get('lang'), text: u.searchParams.get('text'), status: r.status(), type: r.headers()['content-type'] });
  });
  const heard = async (lang, text, timeout = 15000) => {
    const t0 = Date.now();
    while (Date.now() - t0 < timeout) {
      const hit = speech.find((s) => s.lang === lang && s.text === text);
      if (hit) return hit;
      await page.waitForTimeout(100);
    }
    assert.fail(`not spoken: ${lang} "${text}"; spoken: ${JSON.stringify(speech.map((s) => `${s.lang}:${s.text}`))}`);
  };
  const fi = strings.fi;
  await page.keyboard.press('h');
  assert.ok(await page.locator('#speech-ind').isVisible(), 'speech mode is shown');
  await heard('fi', fi['speech.on']);
  // The first screen: the services, then how to choose another language, each language in itself.
  await heard('fi', fi['speech.services']);
  const name = await page.locator('button.svc .svc-name').first().textContent();
  const meta = await page.locator('button.svc .svc-meta').first().textContent();
  await heard('fi', `${name}. ${meta}`);
  await heard('fi', fi['speech.lang']);
  await heard('sv', 'Svenska');
  await heard('ar', 'العربية');
  await shot(page, 'kiosk-speech.png');

  // The keys a tactile keypad sends: arrows and Enter. The languages come first, then the services.
  assert.equal(await page.evaluate(() => document.activeElement.dataset.lang), 'fi');
  for (let i = 0; i < 9; i++) await page.keyboard.press('ArrowDown');
  const focused = await page.evaluate(() => document.activeElement.dataset.service);
  assert.ok(focused, 'a service has the focus');
  await page.keyboard.press('Enter');
  await page.locator('[data-act="take"]').waitFor();
  await heard('fi', fi['confirm.take']);
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.act), 'take');
  const answer = page.waitForResponse((r) => r.url().endsWith(`/sites/${SITE}/tickets`) && r.request().method() === 'POST');
  await page.keyboard.press('Enter');
  const tk = await (await answer).json();
  await page.locator('.big-number').waitFor();
  const m = /^([A-Z]+)0*(\d+)$/.exec(tk.number);
  await heard('fi', `Vuoronumerosi on ${m[1]} ${m[2]}.`);
  const where = (await page.locator('.fact.where dd').textContent()).trim();
  await heard('fi', `${fi['ticket.where']}: ${where}`);
  await heard('fi', `Edelläsi jonossa: ${tk.position}.`);
  // Every clip is an audio file from the daemon (espeak-ng) — never the browser's speechSynthesis.
  for (const s of speech.filter((x) => x.lang !== 'so')) {
    if (hasEspeak) {
      assert.equal(s.status, 200, `${s.lang}:${s.text}`);
      assert.equal(s.type, 'audio/wav');
    } else assert.equal(s.status, 503);
  }
  assert.equal(await page.evaluate(() => window.__synth), 0);

  // Somali has no espeak-ng voice: the same text is spoken in English instead of silence.
  await page.click('#b-lang');
  await page.locator('.lang-btn').first().waitFor();
  await page.click('.lang-btn[data-lang="so"]');
  await page.locator('.big-number').waitFor();
  assert.equal(await page.locator('html').getAttribute('lang'), 'so');
  const so = await heard('so', 'Soomaali'); // the language's own name, asked for in Somali first
  if (hasEspeak) {
    assert.equal(so.status, 422, 'espeak-ng has no Somali voice');
    await heard('en', `Your number is ${m[1]} ${m[2]}.`);
    const whereSo = (await page.locator('.fact.where dd').textContent()).trim();
    await heard('en', `${strings.en['ticket.where']}: ${whereSo}`);
  }
  done(foreign, errors);
  await context.close();
});

// ---- ask staff, offline, enrolment ------------------------------------------------------------------

test('Ask staff: one tap raises a help request that reaches the staff view', async () => {
  const { page, context, foreign, errors } = await kiosk(daemon.url, { axe: true });
  await chooseLang(page, 'en');
  const res = page.waitForResponse((r) => r.url().endsWith(`/sites/${SITE}/help-requests`));
  await page.click('#b-staff');
  assert.equal((await res).status(), 201);
  await page.locator('#staff').waitFor();
  assert.equal(await page.locator('#staff-text').textContent(), strings.en['staff.sent']);
  assert.equal(await page.locator('#staff').getAttribute('data-result'), 'sent');
  await noAxe(page, 'ask staff');
  await bigEnough(page, 'ask staff');
  await shot(page, 'kiosk-ask-staff.png');
  // The alert is in the supervisor's live view of the site.
  const token = await login(daemon.url, 'supervisor');
  const alerts = await page.evaluate(
    (tok) =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://${location.host}/api/v1/ws`);
        ws.onopen = () => {
          ws.send(JSON.stringify({ type: 'auth', token: tok }));
          ws.send(JSON.stringify({ type: 'subscribe', topic: 'site:iso-omena' }));
        };
        ws.onmessage = (m) => {
          const d = JSON.parse(m.data);
          if (d.type === 'snapshot') {
            ws.close();
            resolve(d.data.alerts);
          }
        };
        setTimeout(() => reject(new Error('no snapshot')), 5000);
      }),
    token,
  );
  assert.match(JSON.stringify(alerts), /help_request/);
  assert.match(JSON.stringify(alerts), /kiosk-1/);
  await page.click('#staff-ok');
  assert.equal(await page.locator('#staff').isVisible(), false);
  done(foreign, errors);
  await context.close();
});

test('daemon unreachable: the kiosk says so in all its languages and recovers by itself', async () => {
  let d = await startDaemon();
  try {
    const { page, context, foreign } = await kiosk(d.url, { axe: true });
    await chooseLang(page, 'en');
    await d.stop();
    await page.locator('#offline').waitFor({ timeout: 15000 });
    const langs = await page.locator('#offline .offline-lang').evaluateAll((els) => els.map((e) => e.lang));
    assert.deepEqual([...langs].sort(), [...LANGS].sort());
    const text = await page.locator('#offline').textContent();
    for (const l of LANGS) assert.ok(text.includes(strings[l]['offline.title']), l);
    await shot(page, 'kiosk-offline.png');
    await noAxe(page, 'offline');
    d = await d.restart();
    await page.locator('#offline').waitFor({ state: 'hidden', timeout: 30000 });
    assert.ok(await page.locator('button.svc').first().isVisible(), 'back on the services screen');
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    // And it issues again.
    await chooseService(page, 'digital-help');
    await take(page);
    done(foreign);
    await context.close();
  } finally {
    await d.stop();
    d.cleanup();
  }
});

test('without the demo enrolment the kiosk asks staff for its device token, never taking one from the URL', async () => {
  const { page, context, foreign, errors } = await kiosk(daemon.url, { axe: true, goto: false });
  const urls = [];
  page.on('request', (r) => urls.push(r.url()));
  // As outside the demo: the demo enrolment answers 404.
  await page.route('**/api/v1/demo/device-token**', (route) =>
    route.fulfill({ status: 404, contentType: 'application/json', body: JSON.stringify({ error: { code: 'not_found', message: 'no demo here' } }) }),
  );
  await page.goto(`${daemon.url}/kiosk/?device=kiosk-3`);
  await page.locator('#enrol-token').waitFor();
  await noAxe(page, 'enrolment');
  await bigEnough(page, 'enrolment');
  await shot(page, 'kiosk-enrol.png');
  await page.fill('#enrol-token', 'wrong-token');
  await page.click('.enrol button[type="submit"]');
  await page.locator('.enrol [role="alert"]').waitFor();
  const token = 'demo-kiosk-3-not-a-secret-outside-loopback';
  await page.fill('#enrol-token', token);
  await page.click('.enrol button[type="submit"]');
  await page.locator('html[data-screen="services"]').waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('vuoro.kiosk.kiosk-3.token')), token);
  assert.ok(urls.every((u) => !u.includes(token) && !u.includes('wrong-token')), 'no token in any URL');
  done(foreign, errors);
  await context.close();
});

// ---- phone page --------------------------------------------------------------------------------------

async function phone(url, { viewport = PHONE } = {}) {
  const { page, context, foreign } = await originBoundPage(browser, new URL(url).origin, { viewport, bypassCSP: true, isMobile: true, hasTouch: true });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await context.addInitScript(() => {
    window.__vibrations = [];
    Object.defineProperty(navigator, 'vibrate', { value: (p) => (window.__vibrations.push(p), true), configurable: true });
    window.__notes = [];
    window.Notification = class {
      constructor(title, opts) {
        window.__notes.push({ title, ...opts });
      }
      static get permission() {
        return 'granted';
      }
      static requestPermission() {
        return Promise.resolve('granted');
      }
    };
  });
  await page.goto(url);
  await page.locator('#card:not([hidden])').waitFor();
  return { page, context, foreign, errors };
}

async function kioskToken() {
  const r = await apiCall(daemon.url, '/api/v1/demo/device-token?device=kiosk-1');
  return r.data.token;
}

async function issue(service, lang) {
  const r = await apiCall(daemon.url, `/api/v1/sites/${SITE}/tickets`, { method: 'POST', token: await kioskToken(), body: { service, lang, priority: 'normal' } });
  assert.equal(r.status, 201, JSON.stringify(r.data));
  return r.data;
}

test('phone page: live updates when the ticket is called, with vibration and a notification; no reload', async () => {
  // Take the ticket on the kiosk, as a customer would, then open the page its QR code points to.
  const k = await kiosk();
  await chooseLang(k.page, 'fi');
  await chooseService(k.page, 'joint-service');
  const tk = await take(k.page);
  done(k.foreign, k.errors);
  await k.context.close();

  const { page, context, foreign, errors } = await phone(`${daemon.url}/kiosk/track.html#t=${tk.token}`);
  await page.evaluate(() => (window.__marker = 'same page'));
  assert.equal((await page.locator('#number').textContent()).trim(), tk.number);
  assert.equal(await page.locator('#state').textContent(), strings.fi['track.state.waiting']);
  assert.equal(await page.locator('#elsewhere').textContent(), strings.fi['track.elsewhere']);
  await page.locator('#live[data-status="live"]').waitFor();
  await noAxe(page, 'phone waiting fi');
  await shot(page, 'phone-waiting.png');

  // Staff call it through the API: agent2 opens counter 5 and calls the next until it is ours.
  const staff = await login(daemon.url, 'agent2');
  const open = await apiCall(daemon.url, '/api/v1/counters/c5/open', { method: 'POST', token: staff, body: {} });
  assert.equal(open.status, 200, JSON.stringify(open.data));
  let called = null;
  for (let i = 0; i < 30 && (!called || called.number !== tk.number); i++) {
    const r = await apiCall(daemon.url, '/api/v1/counters/c5/call-next', { method: 'POST', token: staff, body: {} });
    assert.equal(r.status, 200, JSON.stringify(r.data));
    called = r.data.ticket;
  }
  assert.equal(called.number, tk.number);
  const alert = page.locator('#alert[data-kind="called"]');
  await alert.waitFor({ timeout: 10000 });
  assert.match(await alert.textContent(), /Palvelupiste 5/);
  assert.equal(await page.locator('#state').textContent(), strings.fi['track.state.called']);
  assert.equal(await page.evaluate(() => window.__marker), 'same page', 'updated without a reload');
  const vib = await page.evaluate(() => window.__vibrations);
  assert.deepEqual(vib[vib.length - 1], [400, 200, 400, 200, 400]);
  const notes = await page.evaluate(() => window.__notes);
  assert.ok(notes.some((n) => n.title.includes(tk.number) && n.title.includes('Palvelupiste 5')), JSON.stringify(notes));
  await noAxe(page, 'phone called fi');
  await shot(page, 'phone-called.png');
  // Staff finish it: the page follows.
  await apiCall(daemon.url, '/api/v1/counters/c5/finish', { method: 'POST', token: staff, body: {} });
  await page.locator('#message', { hasText: strings.fi['track.finished'] }).waitFor();
  await apiCall(daemon.url, '/api/v1/counters/c5/close', { method: 'POST', token: staff, body: {} });
  done(foreign, errors);
  await context.close();
});

test('phone page: "your turn is near" once, when the estimate comes down to 10 minutes', async () => {
  // Laboratory samples take about 4.5 minutes at a counter (4 configured, plus the walk).
  const ahead = [];
  for (let i = 0; i < 3; i++) ahead.push(await issue('lab-sample', 'fi'));
  const tk = await issue('lab-sample', 'en');
  const { page, context, foreign, errors } = await phone(`${daemon.url}/kiosk/track.html#t=${tk.token}`);
  assert.equal(await page.locator('#ahead').textContent(), '3');
  assert.equal(await page.locator('#eta').textContent(), strings.en['ticket.eta_no_counter'], 'no counter open is said, not a number');
  assert.equal(await page.locator('#alert').isVisible(), false, 'not near with no counter open');
  const staff = await login(daemon.url, 'supervisor');
  assert.equal((await apiCall(daemon.url, '/api/v1/counters/l1/open', { method: 'POST', token: staff, body: {} })).status, 200);
  // One counter, three ahead: about 14 minutes. Not near.
  await page.locator('#eta', { hasText: 'about 14 min' }).waitFor({ timeout: 10000 });
  const r = await apiCall(daemon.url, '/api/v1/counters/l1/call-next', { method: 'POST', token: staff, body: {} });
  assert.equal(r.data.ticket.number, ahead[0].number);
  await page.locator('#ahead', { hasText: '2' }).waitFor();
  assert.equal(await page.locator('#alert').isVisible(), false, 'two ahead but about 14 minutes: not near');
  assert.deepEqual(await page.evaluate(() => window.__vibrations), []);
  // The first customer leaves: 9 minutes, near.
  await apiCall(daemon.url, '/api/v1/counters/l1/finish', { method: 'POST', token: staff, body: {} });
  await page.locator('#alert[data-kind="near"]').waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#alert').textContent(), strings.en['track.near']);
  assert.equal(await page.locator('#eta').textContent(), 'about 9 min');
  assert.deepEqual(await page.evaluate(() => window.__vibrations), [[200, 100, 200]]);
  const notes = await page.evaluate(() => window.__notes);
  assert.equal(notes.length, 1);
  assert.equal(notes[0].title, `Your turn is near: ${tk.number}`);
  // The next move up does not alert again.
  await apiCall(daemon.url, '/api/v1/counters/l1/call-next', { method: 'POST', token: staff, body: {} });
  await page.locator('#ahead', { hasText: '1' }).waitFor();
  assert.equal((await page.evaluate(() => window.__vibrations)).length, 1);
  await apiCall(daemon.url, '/api/v1/counters/l1/finish', { method: 'POST', token: staff, body: {} });
  await apiCall(daemon.url, '/api/v1/counters/l1/close', { method: 'POST', token: staff, body: {} });
  done(foreign, errors);
  await context.close();
});

test('phone page: "0 ahead" never stands next to a long wait: ahead counts what the counter calls first, and "come now" waits for a short estimate', async () => {
  const d = await startDaemon();
  try {
    const tok = (await apiCall(d.url, '/api/v1/demo/device-token?device=kiosk-3')).data.token;
    const issueAt = async (service) => {
      const r = await apiCall(d.url, `/api/v1/sites/${SITE}/tickets`, { method: 'POST', token: tok, body: { service, lang: 'en' } });
      assert.equal(r.status, 201, JSON.stringify(r.data));
      return r.data;
    };
    // Two booked appointments, then a Kela benefits ticket: nobody waits in benefits before it, but
    // counter 1 calls booked appointments (its first tier) before benefits (its second).
    await issueAt('kela-appointment');
    await issueAt('kela-appointment');
    const tk = await issueAt('kela-general');
    const { page, context, foreign, errors } = await phone(`${d.url}/kiosk/track.html#t=${tk.token}`);
    assert.equal(await page.locator('#eta').textContent(), strings.en['ticket.eta_no_counter']);
    assert.equal(await page.locator('#alert').isVisible(), false, 'no counter open: not "come now"');
    const staff = await login(d.url, 'agent1');
    assert.equal((await apiCall(d.url, '/api/v1/counters/c1/open', { method: 'POST', token: staff, body: {} })).status, 200);
    await page.locator('#ahead', { hasText: '2' }).waitFor({ timeout: 10000 });
    assert.equal(await page.locator('#eta').textContent(), 'about 31 min');
    assert.equal(await page.locator('#alert').isVisible(), false, 'two ahead and 31 minutes: not near');
    await shot(page, 'phone-waiting-en.png');
    // Both appointments called: nobody ahead, but the second is at the counter for 15 more minutes.
    for (let i = 0; i < 2; i++) await apiCall(d.url, '/api/v1/counters/c1/call-next', { method: 'POST', token: staff, body: {} });
    await page.locator('#ahead', { hasText: '0' }).waitFor();
    assert.match(await page.locator('#eta').textContent(), /^about 1[56] min$/);
    assert.equal(await page.locator('#alert').isVisible(), false, '0 ahead but 15 minutes: not "come now"');
    await apiCall(d.url, '/api/v1/counters/c1/finish', { method: 'POST', token: staff, body: {} });
    await page.locator('#alert[data-kind="near"]').waitFor({ timeout: 10000 });
    assert.equal(await page.locator('#eta').textContent(), strings.en['ticket.eta_now']);
    done(foreign, errors);
    await context.close();
  } finally {
    await d.stop();
    d.cleanup();
  }
});

test('phone page: in the ticket language, changeable; cancel; axe in fi, sv, en and ar', async () => {
  const tk = await issue('library-help', 'sv');
  const { page, context, foreign, errors } = await phone(`${daemon.url}/kiosk/track.html#t=${tk.token}`);
  assert.equal(await page.locator('html').getAttribute('lang'), 'sv');
  assert.equal(await page.locator('h1').textContent(), strings.sv['track.title']);
  await noAxe(page, 'phone sv');
  for (const lang of ['fi', 'en', 'ar']) {
    await page.selectOption('#lang', lang);
    await page.locator(`html[lang="${lang}"]`).waitFor();
    assert.equal(await page.locator('h1').textContent(), strings[lang]['track.title']);
    await noAxe(page, `phone ${lang}`);
  }
  assert.equal(await page.locator('html').getAttribute('dir'), 'rtl');
  assert.equal(await page.locator('#number bdi').getAttribute('dir'), 'ltr');
  await shot(page, 'phone-ar.png');
  await page.selectOption('#lang', 'en');
  // Cancel, with a confirmation.
  await page.click('#cancel');
  await page.locator('#confirm').waitFor();
  await noAxe(page, 'phone cancel confirm');
  await shot(page, 'phone-cancel.png');
  await page.click('#cancel-yes');
  await page.locator('#message', { hasText: strings.en['track.cancelled'] }).waitFor();
  const r = await apiCall(daemon.url, `/api/v1/tickets/${tk.token}`);
  assert.equal(r.data.state, 'cancelled');
  assert.equal(await page.locator('#cancel').isVisible(), false);
  done(foreign, errors);
  await context.close();
});

test('phone page: works at 320 px and at 200 % zoom without sideways scrolling', async () => {
  const tk = await issue('kela-general', 'uk');
  const { page, context, foreign, errors } = await phone(`${daemon.url}/kiosk/track.html#t=${tk.token}`, { viewport: { width: 320, height: 640 } });
  const fits = () => page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);
  assert.ok(await fits(), '320 px');
  await shot(page, 'phone-320.png');
  await page.setViewportSize({ width: 640, height: 1000 });
  await page.evaluate(() => (document.documentElement.style.zoom = '2'));
  assert.ok(await fits(), '200 % zoom at 640 px');
  // Every control still at least 44 CSS px tall at 100 %.
  await page.evaluate(() => (document.documentElement.style.zoom = '1'));
  const heights = await page.$$eval('button:not([hidden]), select', (els) => els.filter((e) => e.offsetParent).map((e) => e.getBoundingClientRect().height));
  assert.ok(heights.length > 0 && heights.every((h) => h >= 44), JSON.stringify(heights));
  done(foreign, errors);
  await context.close();
});

test('phone page without a ticket in the link explains what to do', async () => {
  const { page, context, foreign } = await originBoundPage(browser, daemon.url, { viewport: PHONE, bypassCSP: true });
  await page.goto(`${daemon.url}/kiosk/track.html`);
  await page.locator('#message:not([hidden])').waitFor();
  const text = await page.locator('#message').textContent();
  assert.ok(Object.values(strings).some((s) => s['track.no_token'] === text), text);
  await noAxe(page, 'phone no token');
  done(foreign);
  await context.close();
});
