// The public wait-time page (/public/) in headless Chromium against the real daemon: it shows each
// service's queue with sensitive services only under their neutral group, follows the queues topic live,
// speaks fi/sv/en, requests nothing from another origin, and axe-core (WCAG 2.2 AA) finds nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, launchBrowser, originBoundPage, axeViolations, apiCall } from './lib.mjs';

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
  assert.match(await page.textContent('tr[data-service="kela-general"] td:nth-child(3)'), /^(about \d+ min|under a minute)$/);

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
  assert.match(await page.textContent('tr[data-service="kela-general"] td:nth-child(1)'), /FPA:s förmåner/);
  assert.deepEqual(await axeViolations(page), [], 'phone');
  // The language links reload the page in that language.
  await page.click('.languages a[lang="fi"]');
  await page.waitForFunction(() => document.documentElement.lang === 'fi');
  await page.waitForSelector('#status[data-state="live"]');
  assert.equal((await page.textContent('h1')).trim(), 'Jonotilanne');
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
