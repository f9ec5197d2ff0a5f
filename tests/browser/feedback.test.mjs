// Browser test of the feedback question on the phone page (kiosk-ui/track.html + feedback.js) in Debian's
// headless Chromium against the real daemon: hidden while the visit goes on, asked once it is finished, in
// the ticket's language (Finnish, and Arabic right to left), five faces with words, an optional comment,
// a thank-you; once per visit; axe-core clean before and after. Run:
// cd tests/browser && node --test --test-concurrency=1 feedback.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, launchBrowser, originBoundPage, axeViolations, apiCall, login, repo } from './lib.mjs';

const PHONE = { width: 390, height: 844 };
const SITE = 'iso-omena';
const strings = Object.fromEntries(
  ['fi', 'ar'].map((l) => [l, JSON.parse(readFileSync(join(repo, 'kiosk-ui', 'i18n', `${l}.json`), 'utf8'))]),
);

let daemon;
let browser;
let staff;

before(async () => {
  daemon = await startDaemon();
  browser = await launchBrowser();
  staff = await login(daemon.url, 'agent2');
  const open = await apiCall(daemon.url, '/api/v1/counters/c5/open', { method: 'POST', token: staff, body: {} });
  assert.equal(open.status, 200, JSON.stringify(open.data));
});

after(async () => {
  if (browser) await browser.close();
  if (daemon) {
    await daemon.stop();
    daemon.cleanup();
  }
});

async function issue(lang) {
  const kiosk = await apiCall(daemon.url, '/api/v1/demo/device-token?device=kiosk-1');
  const r = await apiCall(daemon.url, `/api/v1/sites/${SITE}/tickets`, {
    method: 'POST',
    token: kiosk.data.token,
    body: { service: 'joint-service', lang },
  });
  assert.equal(r.status, 201, JSON.stringify(r.data));
  return r.data;
}

async function counter(verb) {
  const r = await apiCall(daemon.url, `/api/v1/counters/c5/${verb}`, { method: 'POST', token: staff, body: {} });
  assert.equal(r.status, 200, `${verb}: ${JSON.stringify(r.data)}`);
  return r.data;
}

async function noAxe(page, where) {
  const v = await axeViolations(page);
  assert.deepEqual(v, [], `axe violations on ${where}: ${JSON.stringify(v, null, 1)}`);
}

for (const lang of ['fi', 'ar']) {
  test(`phone page in ${lang}: the question after the visit, five faces with words, once`, async () => {
    const s = strings[lang];
    const tk = await issue(lang);
    const { page, context, foreign } = await originBoundPage(browser, daemon.url, {
      viewport: PHONE,
      bypassCSP: true,
      isMobile: true,
      hasTouch: true,
    });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${daemon.url}/kiosk/track.html#t=${tk.token}`);
    await page.locator('#live[data-status="live"]').waitFor();
    assert.equal(await page.locator('#feedback').isHidden(), true, 'no question while waiting');

    const called = await counter('call-next');
    assert.equal(called.ticket.number, tk.number);
    await counter('finish');
    await page.locator('#feedback').waitFor({ state: 'visible', timeout: 10000 });
    assert.equal(await page.evaluate(() => document.documentElement.dir), lang === 'ar' ? 'rtl' : 'ltr');
    assert.equal(await page.locator('#fb-question').textContent(), s['feedback.question']);
    // Five faces, each with its words as the radio button's name (not a picture alone).
    const radios = page.getByRole('radio');
    assert.equal(await radios.count(), 5);
    for (let r = 1; r <= 5; r++) {
      assert.equal(await page.getByRole('radio', { name: s[`feedback.rating.${r}`], exact: true }).count(), 1);
    }
    assert.equal(await page.locator('#fb-send').isDisabled(), true, 'nothing to send before a face is chosen');
    await noAxe(page, `feedback question ${lang}`);

    await page.locator('label[for="fb-r4"]').click();
    await page.getByLabel(s['feedback.comment']).fill(lang === 'ar' ? '  شكرًا جزيلًا  ' : '  Nopeaa ja ystävällistä  ');
    await page.locator('#fb-send').click();
    await page.locator('#fb-thanks').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#fb-thanks').textContent(), s['feedback.thanks']);
    assert.equal(await page.locator('#feedback-form').isHidden(), true);
    await noAxe(page, `feedback thanks ${lang}`);

    // Once per visit: the daemon refuses a second answer, and the page asks no more after a reload.
    const again = await apiCall(daemon.url, `/api/v1/tickets/${tk.token}/feedback`, { method: 'POST', body: { rating: 1 } });
    assert.equal(again.status, 409);
    assert.equal(again.data.error.code, 'feedback_given');
    await page.reload();
    await page.locator('#fb-thanks').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#feedback-form').isHidden(), true);

    assert.deepEqual(foreign, [], 'requests left the daemon origin');
    assert.deepEqual(errors, [], 'errors in the page');
    await context.close();
  });
}

test('the public open data counts the answers and shows no comment', async () => {
  const r = await apiCall(daemon.url, `/api/v1/public/sites/${SITE}/waits`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.data.feedback, { count: 2, mean: 4 });
  const text = JSON.stringify(r.data);
  assert.ok(!text.includes('Nopeaa') && !text.includes('شكرًا'), text);
});
