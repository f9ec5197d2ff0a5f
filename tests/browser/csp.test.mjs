// Every page of Vuoro under its real Content-Security-Policy (the other browser tests bypass it to inject
// axe-core): each page's answer carries a CSP with no 'unsafe-inline' and frame-ancestors 'none', and the
// page, rendered and used a little in headless Chromium, meets no violation of it. Run:
// cd tests/browser && node --test --test-concurrency=1 csp.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, launchBrowser, originBoundPage, signIn, login, apiCall } from './lib.mjs';

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

/** Opens `path` under the page's own CSP, recording every violation the browser reports. */
async function open(path, { viewport = { width: 1366, height: 768 } } = {}) {
  const { page, context, foreign } = await originBoundPage(browser, daemon.url, { viewport });
  await context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__violations.push(`${e.violatedDirective} ${e.blockedURI || ''} ${e.sourceFile || ''}:${e.lineNumber || ''}`),
    );
  });
  const res = await page.goto(`${daemon.url}${path}`);
  const csp = res.headers()['content-security-policy'] || '';
  return { page, context, foreign, csp };
}

async function violations(page) {
  return page.evaluate(() => window.__violations);
}

function strictCsp(csp, where) {
  assert.ok(csp, `${where} has a CSP`);
  assert.ok(!csp.includes('unsafe-inline'), `${where}: ${csp}`);
  assert.ok(!csp.includes('unsafe-eval'), `${where}: ${csp}`);
  assert.match(csp, /frame-ancestors 'none'/, where);
}

test('the public pages: start page, kiosk with a ticket, phone page, hall display, waiting times', async () => {
  const start = await open('/');
  strictCsp(start.csp, '/');
  await start.context.close();

  const kiosk = await open('/kiosk/?device=kiosk-1', { viewport: { width: 1080, height: 1920 } });
  strictCsp(kiosk.csp, '/kiosk/');
  await kiosk.page.locator('button.svc[data-service="joint-service"]').click();
  await kiosk.page.locator('[data-act="take"]').click();
  await kiosk.page.locator('.big-number').waitFor();
  const track = await kiosk.page.evaluate(() => window.vuoroKiosk.S.ticket.track_url);
  assert.deepEqual(await violations(kiosk.page), [], 'kiosk');
  await kiosk.context.close();

  const phone = await open(new URL(track).pathname + new URL(track).hash, { viewport: { width: 390, height: 844 } });
  strictCsp(phone.csp, 'the phone page');
  await phone.page.locator('#card:not([hidden])').waitFor();
  assert.deepEqual(await violations(phone.page), [], 'phone page');
  await phone.context.close();

  const display = await open('/display/?site=iso-omena&id=hall', { viewport: { width: 1920, height: 1080 } });
  strictCsp(display.csp, 'the hall display');
  await display.page.waitForFunction(() => document.body.innerText.length > 20);
  await display.page.waitForTimeout(1000);
  assert.deepEqual(await violations(display.page), [], 'hall display');
  await display.context.close();

  const pub = await open('/public/');
  strictCsp(pub.csp, '/public/');
  await pub.page.waitForFunction(() => document.body.innerText.length > 20);
  assert.deepEqual(await violations(pub.page), [], 'public waits');
  await pub.context.close();
});

test('the staff pages signed in: desk, supervisor view, reports with a legend, administration', async () => {
  // A day with figures, so the reports draw charts with legends.
  const staff = await login(daemon.url, 'agent2');
  assert.equal((await apiCall(daemon.url, '/api/v1/counters/c5/open', { method: 'POST', token: staff, body: {} })).status, 200);
  for (const [path, user, ready] of [
    ['/desk/', 'agent2', '[data-screen]:not([hidden]):not([data-screen="login"])'],
    ['/desk/supervisor.html', 'supervisor', '[data-screen="sv"]:not([hidden])'],
    ['/desk/reports.html', 'supervisor', '[data-screen]:not([hidden]):not([data-screen="login"])'],
    ['/admin/', 'admin', '[data-screen="admin"]:not([hidden])'],
  ]) {
    const p = await open(path);
    strictCsp(p.csp, path);
    await signIn(p.page, user);
    await p.page.locator(ready).first().waitFor({ timeout: 10000 });
    await p.page.waitForTimeout(1000);
    if (path === '/desk/reports.html') {
      await p.page.locator('.legend .swatch').first().waitFor({ timeout: 10000 });
      assert.notEqual(await p.page.locator('.legend .swatch').first().evaluate((e) => getComputedStyle(e).backgroundColor), 'rgba(0, 0, 0, 0)', 'the swatch is coloured');
    }
    if (path === '/admin/') {
      await p.page.locator('#admin-services-body tr[data-service="joint-service"] button.edit').click();
      await p.page.locator('#svc-form:not([hidden])').waitFor();
      await p.page.locator('#admin-devices-body tr[data-device="kiosk-1"] button.enrol').click();
      await p.page.locator('#code-qr svg').waitFor();
    }
    assert.deepEqual(await violations(p.page), [], path);
    assert.deepEqual(p.foreign, [], path);
    await p.context.close();
  }
});
