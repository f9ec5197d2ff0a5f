// The public wait-time page (/public/) in headless Chromium against the real daemon: it shows each
// service's queue with sensitive services only under their neutral group, follows the queues topic live,
// speaks fi/sv/en, requests nothing from another origin, and axe-core (WCAG 2.2 AA) finds nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startDaemon, launchBrowser, originBoundPage, axeViolations, apiCall, repo } from './lib.mjs';

const SITE = 'iso-omena';
let daemon;
let browser;
let kiosk;
const pages = [];

before(async () => {
  daemon = await startDaemon();
  browser = await launchBrowser();
  const r = await apiCall(daemon.url, '/api/v1/demo/device-token?device=kiosk-1');
  assert.equal(r.status, 200, JSON.stringify(r.data));
  kiosk = r.data.token;
});

after(async () => {
  if (browser) await browser.close();
  if (daemon) {
    await daemon.stop();
    daemon.cleanup();
  }
});

async function issue(service) {
  const r = await apiCall(daemon.url, `/api/v1/sites/${SITE}/tickets`, { method: 'POST', token: kiosk, body: { service, lang: 'fi' } });
  assert.equal(r.status, 201, JSON.stringify(r.data));
  return r.data;
}

async function open(query, opts = {}) {
  // bypassCSP: the daemon's Content-Security-Policy forbids inline scripts, and axe is injected as one.
  const p = await originBoundPage(browser, daemon.url, { viewport: { width: 1280, height: 900 }, bypassCSP: true, ...opts });
  p.errors = [];
  p.page.on('pageerror', (e) => p.errors.push(e.message));
  pages.push(p);
  await p.page.goto(`${daemon.url}/public/${query}`);
  await p.page.waitForSelector('#status[data-state="live"]', { timeout: 15000 });
  await p.page.waitForSelector('#rows tr');
  return p;
}

async function waiting(page, service) {
  return (await page.textContent(`tr[data-service="${service}"] td:nth-child(2)`)).trim();
}

test('queues, grouped sensitive services and live updates', async () => {
  for (const s of ['kela-general', 'kela-general', 'mental-health', 'substance-abuse', 'lab-sample']) await issue(s);
  const { page } = await open(`?site=${SITE}&lang=en`);
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  assert.equal((await page.textContent('h1')).trim(), 'Waiting times');
  assert.equal(await waiting(page, 'kela-general'), '2');
  assert.equal(await waiting(page, 'group-h'), '2', 'mental health and substance abuse together');
  assert.equal(await waiting(page, 'group-l'), '1');
  const text = await page.textContent('body');
  for (const word of ['Mental health', 'Substance abuse', 'Laboratory: samples', 'X-ray', 'mental-health']) {
    assert.ok(!text.includes(word), `"${word}" is on the public page`);
  }
  assert.ok(text.includes('Health services'), 'the neutral name is shown');
  // No counter is open yet: the page says so rather than a number of minutes.
  await page.waitForFunction(() => document.querySelector('tr[data-service="kela-general"] td:nth-child(3)').textContent === 'No counter open now');

  // A ticket taken elsewhere shows up without a reload, from the queues topic.
  await issue('kela-general');
  await page.waitForFunction(
    () => document.querySelector('tr[data-service="kela-general"] td:nth-child(2)').textContent.trim() === '3',
    null,
    { timeout: 10000 },
  );
  // And one called at a counter leaves the queue.
  const login = await apiCall(daemon.url, '/api/v1/auth/login', { method: 'POST', body: { username: 'agent1', password: 'demo' } });
  const agent = login.data.token;
  assert.equal((await apiCall(daemon.url, '/api/v1/counters/c2/open', { method: 'POST', token: agent, body: {} })).status, 200);
  assert.equal((await apiCall(daemon.url, '/api/v1/counters/c2/call-next', { method: 'POST', token: agent, body: {} })).status, 200);
  await page.waitForFunction(
    () => document.querySelector('tr[data-service="kela-general"] td:nth-child(2)').textContent.trim() === '2',
    null,
    { timeout: 10000 },
  );
  // With counter 2 open there is an estimate again.
  assert.match(await page.textContent('tr[data-service="kela-general"] td:nth-child(3)'), /^(about \d+ min|under a minute)$/);
  assert.deepEqual(await axeViolations(page), []);
});

test('Finnish and Swedish, a phone-sized screen, and axe finds nothing', async () => {
  for (const [lang, heading] of [
    ['fi', 'Jonotilanne'],
    ['sv', 'Kösituationen'],
  ]) {
    const { page } = await open(`?site=${SITE}&lang=${lang}`);
    assert.equal(await page.getAttribute('html', 'lang'), lang);
    assert.equal((await page.textContent('h1')).trim(), heading);
    assert.equal(await page.getAttribute(`.languages a[lang="${lang}"]`, 'aria-current'), 'true');
    assert.deepEqual(await axeViolations(page), [], lang);
  }
  const { page } = await open(`?site=${SITE}&lang=sv`, { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  assert.match(await page.textContent('tr[data-service="kela-general"] > :first-child'), /FPA:s förmåner/);
  assert.deepEqual(await axeViolations(page), [], 'phone');
  // The language links reload the page in that language.
  await page.click('.languages a[lang="fi"]');
  await page.waitForFunction(() => document.documentElement.lang === 'fi');
  await page.waitForSelector('#status[data-state="live"]');
  assert.equal((await page.textContent('h1')).trim(), 'Jonotilanne');
});

test('every language of the site, Arabic right to left; axe finds nothing in any', async () => {
  const names = { fi: 'Suomi', sv: 'Svenska', en: 'English', ru: 'Русский', et: 'Eesti', ar: 'العربية', zh: '中文', so: 'Soomaali', uk: 'Українська' };
  for (const lang of Object.keys(names)) {
    const { page } = await open(`?site=${SITE}&lang=${lang}`);
    assert.equal(await page.getAttribute('html', 'lang'), lang);
    assert.equal(await page.getAttribute('html', 'dir'), lang === 'ar' ? 'rtl' : 'ltr');
    const strings = JSON.parse(await (await page.request.get(`${daemon.url}/public/i18n/${lang}.json`)).text());
    assert.equal((await page.textContent('h1')).trim(), strings.heading);
    assert.deepEqual(await page.locator('.languages a').allTextContents(), Object.values(names));
    assert.equal(await page.getAttribute(`.languages a[lang="${lang}"]`, 'aria-current'), 'true');
    // The site's name in the language too (the demo names it in all nine).
    if (lang !== 'en') assert.notEqual((await page.textContent('#site-name')).trim(), 'Iso Omena Service Square', `${lang}: the site's name`);
    assert.deepEqual(await axeViolations(page), [], lang);
    await page.context().close();
  }
});

test('on a phone the page is compact: grouped by unit, two lines a service, screenshots in fi, sv, en and ar', async () => {
  for (const lang of ['fi', 'sv', 'en', 'ar']) {
    const { page } = await open(`?site=${SITE}&lang=${lang}`, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    assert.ok(height <= 2600, `${lang}: the page is ${height} px tall on a phone`);
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth), 'no sideways scrolling');
    // Units head their services; Kela's three services come under one Kela heading.
    const groups = await page.locator('#rows tr.group th').allTextContents();
    assert.ok(groups.length >= 5, JSON.stringify(groups));
    assert.equal(new Set(groups).size, groups.length, 'each unit once');
    // Each service row: the name with its queue, the estimate and the hours: three short lines at most.
    const tall = await page.$$eval('#rows tr[data-service]', (rows) => rows.map((r) => r.getBoundingClientRect().height).filter((h) => h > 130));
    assert.deepEqual(tall, [], 'service rows taller than 130 px');
    assert.deepEqual(await axeViolations(page), [], `phone ${lang}`);
    await page.screenshot({ path: join(repo, 'docs', 'screenshots', `public-phone-${lang}.png`), fullPage: true });
    await page.context().close();
  }
  const { page } = await open(`?site=${SITE}&lang=fi`);
  await page.screenshot({ path: join(repo, 'docs', 'screenshots', 'public-fi.png'), fullPage: true });
  await page.context().close();
});

test('every page of every client names the shared favicon, and nothing any page asks for is missing', async () => {
  const paths = ['/kiosk/?device=kiosk-1', '/kiosk/track.html', `/public/?site=${SITE}`, '/display/?display=hall', '/display/counter.html?counter=c1', '/desk/', '/desk/supervisor.html', '/desk/reports.html'];
  for (const path of paths) {
    const p = await originBoundPage(browser, daemon.url, { viewport: { width: 1280, height: 900 } });
    const missing = [];
    p.page.on('response', (r) => r.status() === 404 && missing.push(r.url()));
    await p.page.goto(`${daemon.url}${path}`);
    await p.page.waitForLoadState('networkidle');
    const href = await p.page.getAttribute('link[rel="icon"]', 'href');
    assert.equal(href, '/shared/favicon.svg', path);
    const icon = await p.page.request.get(`${daemon.url}${href}`);
    assert.equal(icon.status(), 200);
    assert.match(icon.headers()['content-type'], /^image\/svg\+xml/);
    assert.deepEqual(missing, [], `${path} asked for missing files`);
    assert.deepEqual(p.foreign, [], path);
    await p.context.close();
  }
});

test('the page says when it is not live any more', async () => {
  const { page } = await open(`?site=${SITE}&lang=en`);
  await daemon.stop();
  await page.waitForSelector('#status[data-state="stale"], #status[data-state="connecting"]', { timeout: 30000 });
  const status = await page.textContent('#status');
  assert.ok(/connection was lost|Connecting/.test(status), status);
  daemon = await daemon.restart();
  await page.waitForSelector('#status[data-state="live"]', { timeout: 30000 });
});

test('nothing from another origin, no script errors', async () => {
  for (const p of pages) {
    assert.deepEqual(p.foreign, [], 'requests to other origins');
    assert.deepEqual(p.errors, [], 'page errors');
  }
});
