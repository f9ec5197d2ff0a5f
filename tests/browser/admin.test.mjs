// Browser test of the admin console (desk-ui/admin.html at /admin/) and the kiosk, in Debian's headless
// Chromium against the real daemon: an admin changes a service's Finnish name and its hours and the kiosk
// shows the new name within 2 seconds, without a restart; the change outlives a restart, is in the audit
// trail and in the change history, from which the earlier version is restored. An admin makes a one-time
// set-up code (text and QR code), a new kiosk takes it on its set-up screen and serves customers; the
// console lists its last use; revoking it stops the kiosk at once (its next ticket is refused and it shows
// the set-up screen again). Finnish, Swedish and English; axe-core clean. Run:
// cd tests/browser && node --test --test-concurrency=1 admin.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, launchBrowser, originBoundPage, axeViolations, apiCall, signIn, repo } from './lib.mjs';

const VIEW = { viewport: { width: 1366, height: 768 }, locale: 'fi-FI', bypassCSP: true };
const KIOSK = { viewport: { width: 1080, height: 1920 }, bypassCSP: true, hasTouch: true };
const desk = Object.fromEntries(['fi', 'sv', 'en'].map((l) => [l, JSON.parse(readFileSync(join(repo, 'desk-ui', 'i18n', `${l}.json`), 'utf8'))]));
const kioskStrings = JSON.parse(readFileSync(join(repo, 'kiosk-ui', 'i18n', 'en.json'), 'utf8'));

let daemon;
let browser;
let dir;
let config;

before(async () => {
  // The demo hall with one more kiosk, which has no token in the config: it is set up with a code.
  dir = mkdtempSync(join(tmpdir(), 'vuoro-admin-'));
  config = join(dir, 'vuoro.toml');
  writeFileSync(
    config,
    readFileSync(join(repo, 'config', 'demo.toml'), 'utf8') +
      '\n[[device]]\nid = "kiosk-9"\nsite = "iso-omena"\nkind = "kiosk"\nlocation = { fi = "Toinen kerros", en = "Second floor" }\n',
  );
  daemon = await startDaemon({ config });
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (daemon) {
    await daemon.stop();
    daemon.cleanup();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function noAxe(page, where) {
  const v = await axeViolations(page);
  assert.deepEqual(v, [], `axe violations on ${where}: ${JSON.stringify(v, null, 1)}`);
}

const row = (page, id) => page.locator(`#admin-devices-body tr[data-device="${id}"]`);

test('an admin sets a kiosk up with a one-time code, sees its last use, and revokes it: the kiosk stops at once', async () => {
  const { page, context, foreign } = await originBoundPage(browser, daemon.url, VIEW);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${daemon.url}/admin`);
  assert.equal(new URL(page.url()).pathname, '/admin/');
  await signIn(page, 'admin');
  await page.locator('[data-screen="admin"]:not([hidden])').waitFor();
  assert.equal(await page.locator('#ad-heading').textContent(), desk.fi.ad_heading);
  const k9 = row(page, 'kiosk-9');
  await k9.waitFor();
  assert.equal(await k9.getAttribute('data-active'), 'false');
  assert.match(await k9.textContent(), new RegExp(desk.fi.ad_state_new));
  assert.equal(await row(page, 'kiosk-1').getAttribute('data-active'), 'true');
  await noAxe(page, 'the devices list');

  // The code: large text, a QR code, when it expires; focus moves to it.
  assert.equal((await k9.locator('button.enrol').textContent()).trim(), desk.fi.ad_enrol, 'the button says what it does');
  assert.equal((await k9.locator('button.revoke').textContent()).trim(), desk.fi.ad_revoke);
  await k9.locator('button.enrol').click();
  await page.locator('#code-panel:not([hidden])').waitFor();
  const code = (await page.locator('#code-text').textContent()).trim();
  assert.match(code, /^[34679ACDEFGHJKMNPQRTWXY]{4}-[34679ACDEFGHJKMNPQRTWXY]{4}$/);
  assert.equal(await page.locator('#code-qr svg[role="img"]').count(), 1);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'code-panel');
  assert.match(await page.locator('#code-expires').textContent(), /\d/);
  await noAxe(page, 'the code panel');

  // The new kiosk: the set-up screen takes the code, then customers can take tickets.
  const kiosk = await originBoundPage(browser, daemon.url, KIOSK);
  const kerrors = [];
  kiosk.page.on('pageerror', (e) => kerrors.push(e.message));
  await kiosk.page.goto(`${daemon.url}/kiosk/?device=kiosk-9`);
  await kiosk.page.locator('#enrol-token').waitFor();
  assert.equal(await kiosk.page.locator('label[for="enrol-token"]').textContent(), kioskStrings['enrol.label']);
  await noAxe(kiosk.page, 'the kiosk set-up screen');
  await kiosk.page.fill('#enrol-token', code.toLowerCase());
  await kiosk.page.click('form.enrol button[type="submit"]');
  await kiosk.page.locator('html[data-screen="services"]').waitFor({ timeout: 10000 });
  const stored = await kiosk.page.evaluate(() => localStorage.getItem('vuoro.kiosk.kiosk-9.token'));
  assert.match(stored, /^[0-9a-f]{64}$/, 'the kiosk keeps its own token, not the code');
  await kiosk.page.click('button.svc[data-service="joint-service"]');
  await kiosk.page.locator('[data-act="take"]').waitFor();
  const taken = kiosk.page.waitForResponse((r) => r.url().endsWith('/api/v1/sites/iso-omena/tickets') && r.request().method() === 'POST');
  await kiosk.page.click('[data-act="take"]');
  assert.equal((await taken).status(), 201);
  await kiosk.page.locator('.big-number').waitFor();

  // The console, reloaded: in use, last used from this machine; the code is gone once used.
  await page.locator('#code-close').click();
  assert.equal(await page.locator('#code-panel').isHidden(), true);
  assert.equal(await page.evaluate(() => document.activeElement.closest('tr')?.dataset.device), 'kiosk-9', 'focus back on its row');
  await page.reload();
  await k9.waitFor();
  assert.equal(await k9.getAttribute('data-active'), 'true');
  assert.match(await k9.textContent(), /127\.0\.0\.1/);
  const reused = await apiCall(daemon.url, '/api/v1/devices/enrol', { method: 'POST', body: { code } });
  assert.equal(reused.status, 422, 'a code works once');

  // Revoked: confirmed in a dialog; the kiosk's next ticket is refused and it asks staff to set it up.
  await k9.locator('button.revoke').click();
  await page.locator('#revoke-dialog[open]').waitFor();
  assert.match(await page.locator('#revoke-text').textContent(), /kiosk-9/);
  await noAxe(page, 'the revoke dialog');
  await page.click('#revoke-dialog button[value="ok"]');
  await page.locator('#admin-devices-body tr[data-device="kiosk-9"][data-active="false"]').waitFor();
  assert.match(await k9.textContent(), new RegExp(desk.fi.ad_state_revoked));
  assert.equal(await k9.locator('button.revoke').isDisabled(), true);
  const gone = await apiCall(daemon.url, '/api/v1/devices/me', { token: stored });
  assert.equal(gone.status, 401);
  await kiosk.page.click('[data-act="done"]');
  await kiosk.page.locator('html[data-screen="services"]').waitFor();
  await kiosk.page.click('button.svc[data-service="joint-service"]');
  await kiosk.page.locator('[data-act="take"]').waitFor();
  const refused = kiosk.page.waitForResponse((r) => r.url().endsWith('/api/v1/sites/iso-omena/tickets') && r.request().method() === 'POST');
  await kiosk.page.click('[data-act="take"]');
  assert.equal((await refused).status(), 401);
  await kiosk.page.locator('#enrol-token').waitFor({ timeout: 5000 });
  assert.equal(await kiosk.page.locator('form.enrol [role="alert"]').textContent(), kioskStrings['enrol.invalid']);
  assert.equal(await kiosk.page.evaluate(() => localStorage.getItem('vuoro.kiosk.kiosk-9.token')), null);

  // Swedish and English are complete.
  for (const l of ['sv', 'en']) {
    await page.selectOption('#lang', l);
    await page.locator(`html[lang="${l}"]`).waitFor();
    assert.equal(await page.locator('#ad-heading').textContent(), desk[l].ad_heading);
    assert.match(await k9.textContent(), new RegExp(desk[l].ad_state_revoked));
  }
  await noAxe(page, 'the devices list in English');
  assert.deepEqual(errors, []);
  assert.deepEqual(kerrors, []);
  assert.deepEqual([...foreign, ...kiosk.foreign], []);
  await kiosk.context.close();
  await context.close();
});

test('a service renamed and given new hours in the console: the kiosk shows the name within 2 s, no restart; kept after a restart, audited, restorable', async () => {
  const kiosk = await originBoundPage(browser, daemon.url, KIOSK);
  await kiosk.page.goto(`${daemon.url}/kiosk/?device=kiosk-1`);
  await kiosk.page.locator('html[data-screen="services"]').waitFor({ timeout: 10000 });
  const kioskName = () => kiosk.page.locator('button.svc[data-service="joint-service"] .svc-name').textContent();
  assert.equal(await kioskName(), 'Neuvonta ja asiointi');

  const { page, context, foreign } = await originBoundPage(browser, daemon.url, VIEW);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${daemon.url}/admin/`);
  await signIn(page, 'admin');
  const svcRow = page.locator('#admin-services-body tr[data-service="joint-service"]');
  await svcRow.waitFor();
  assert.match(await svcRow.textContent(), new RegExp(desk.fi.ad_hours_site));
  await svcRow.locator('button.edit').click();
  await page.locator('#svc-form:not([hidden])').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'svc-form');
  // A name field per site language, labelled with the language's own name; the days off until "own hours".
  assert.equal(await page.locator('#svc-names input').count(), 9);
  assert.equal(await page.locator('label[for="svc-name-sv"]').textContent(), 'Svenska');
  assert.equal(await page.locator('#svc-day-mon').isDisabled(), true);
  await noAxe(page, 'the service form');

  // A mistake first: refused with the reason, nothing changed.
  await page.check('#svc-hours-own');
  await page.fill('#svc-day-mon', '8-16');
  await page.click('#svc-form button[type="submit"]');
  await page.locator('#svc-error:not([hidden])').waitFor();
  assert.match(await page.locator('#svc-error').textContent(), new RegExp(desk.fi.ad_refused));
  assert.equal(await kioskName(), 'Neuvonta ja asiointi');

  await page.fill('#svc-name-fi', 'Neuvonta ja opastus');
  await page.fill('#svc-day-mon', '08:00-16:00');
  await page.fill('#svc-day-sat', '10:00-14:00');
  const t0 = Date.now();
  await page.click('#svc-form button[type="submit"]');
  await kiosk.page.waitForFunction(() => document.querySelector('button.svc[data-service="joint-service"] .svc-name')?.textContent === 'Neuvonta ja opastus', null, { timeout: 2000 });
  const took = Date.now() - t0;
  assert.ok(took < 2000, `the kiosk showed the new name after ${took} ms`);
  await page.locator('#svc-form[hidden]').waitFor({ state: 'attached' });
  await page.locator('#message:not([hidden])').waitFor();
  assert.match(await page.locator('#message').textContent(), /Neuvonta ja opastus/);
  assert.match(await svcRow.textContent(), /ma 08:00-16:00; la 10:00-14:00/);
  assert.equal(await page.evaluate(() => document.activeElement.closest('tr')?.dataset.service), 'joint-service');

  // In the change history, by the admin; in the audit trail.
  const top = page.locator('#admin-versions-body tr').first();
  assert.match(await top.textContent(), new RegExp(`admin.*${desk.fi.ad_source_console}`));
  const token = await apiCall(daemon.url, '/api/v1/auth/login', { method: 'POST', body: { username: 'admin', password: 'demo' } });
  const audit = await apiCall(daemon.url, '/api/v1/audit', { token: token.data.token });
  const audited = audit.data.entries.filter((e) => e.action === 'PUT /api/v1/admin/sites/iso-omena/services/joint-service');
  assert.deepEqual(audited.map((e) => [e.actor.id, e.status]), [['admin', 422], ['admin', 200]]);
  await noAxe(page, 'the console after a change');

  // A restart keeps it.
  await kiosk.context.close();
  await context.close();
  daemon = await daemon.restart();
  const again = await originBoundPage(browser, daemon.url, KIOSK);
  await again.page.goto(`${daemon.url}/kiosk/?device=kiosk-1`);
  await again.page.locator('button.svc[data-service="joint-service"]').waitFor({ timeout: 10000 });
  assert.equal(await again.page.locator('button.svc[data-service="joint-service"] .svc-name').textContent(), 'Neuvonta ja opastus');

  // The version before is restored from the history: the old name is back on the kiosk.
  const admin2 = await originBoundPage(browser, daemon.url, VIEW);
  await admin2.page.goto(`${daemon.url}/admin/`);
  await signIn(admin2.page, 'admin');
  const previous = admin2.page.locator('#admin-versions-body tr').nth(1);
  await previous.waitFor();
  await previous.locator('button.restore').click();
  await admin2.page.locator('#restore-dialog[open]').waitFor();
  await noAxe(admin2.page, 'the restore dialog');
  await admin2.page.click('#restore-dialog button[value="ok"]');
  await again.page.waitForFunction(() => document.querySelector('button.svc[data-service="joint-service"] .svc-name')?.textContent === 'Neuvonta ja asiointi', null, { timeout: 2000 });
  const restored = admin2.page.locator('#admin-versions-body tr[data-version="3"]');
  await restored.waitFor();
  assert.match(await restored.textContent(), new RegExp(`${desk.fi.ad_current}.*admin.*${desk.fi.ad_source_restore}`));
  assert.deepEqual(errors, []);
  assert.deepEqual([...foreign, ...again.foreign, ...admin2.foreign], []);
  await again.context.close();
  await admin2.context.close();
});

test('all settings as text: a mistake is refused with its line and changes nothing; a fix is in force at once', async () => {
  const { page, context } = await originBoundPage(browser, daemon.url, VIEW);
  await page.goto(`${daemon.url}/admin/#whole`);
  await signIn(page, 'admin');
  await page.locator('[data-screen="admin"]:not([hidden])').waitFor();
  await page.waitForFunction(() => document.getElementById('whole-text').value.includes('[[site]]'));
  const text = await page.inputValue('#whole-text');
  const siteName = async () => (await apiCall(daemon.url, '/api/v1/sites')).data.sites.find((x) => x.id === 'iso-omena').name.fi;
  assert.equal(await siteName(), 'Iso Omenan palvelutori');
  await page.fill('#whole-text', text.replace('Iso Omenan palvelutori', 'Iso Omenan palvelutori ja kirjasto').replace('series = "Y"', 'series = 5'));
  await page.click('#whole-form button[type="submit"]');
  await page.locator('#whole-error:not([hidden])').waitFor();
  assert.match(await page.locator('#whole-error').textContent(), /line \d+/);
  assert.equal(await siteName(), 'Iso Omenan palvelutori');
  await noAxe(page, 'the settings text with a mistake');
  await page.fill('#whole-text', text.replace('Iso Omenan palvelutori', 'Iso Omenan palvelutori ja kirjasto'));
  await page.click('#whole-form button[type="submit"]');
  await page.locator('#message:not([hidden])').waitFor();
  const latest = (await apiCall(daemon.url, '/api/v1/admin/config/versions', { token: (await apiCall(daemon.url, '/api/v1/auth/login', { method: 'POST', body: { username: 'admin', password: 'demo' } })).data.token })).data.versions[0];
  assert.equal(latest.source, 'console');
  assert.match(await page.locator('#message').textContent(), new RegExp(`\\b${latest.version}\\b`));
  assert.equal(await siteName(), 'Iso Omenan palvelutori ja kirjasto');
  assert.equal(await page.locator('#whole-error').isHidden(), true);
  await context.close();
});

test('a supervisor changes the services of their own units only; an agent is told the console is not theirs', async () => {
  const { page, context } = await originBoundPage(browser, daemon.url, VIEW);
  await page.goto(`${daemon.url}/admin/`);
  await signIn(page, 'supervisor');
  await page.locator('[data-screen="admin"]:not([hidden])').waitFor();
  await page.locator('#admin-services-body tr').first().waitFor();
  for (const id of ['devices', 'versions', 'whole']) assert.equal(await page.locator(`#${id}`).isHidden(), true, `${id} is the admins'`);
  const token = (await apiCall(daemon.url, '/api/v1/auth/login', { method: 'POST', body: { username: 'supervisor', password: 'demo' } })).data;
  const units = token.user.units;
  const listed = await page.locator('#admin-services-body tr').evaluateAll((rows) => rows.map((r) => r.dataset.service));
  const scoped = await apiCall(daemon.url, '/api/v1/admin/sites/iso-omena/services', { token: token.token });
  assert.deepEqual(listed, scoped.data.services.map((x) => x.id));
  assert.ok(scoped.data.services.every((x) => units.includes(x.unit)), JSON.stringify(units));
  assert.equal((await apiCall(daemon.url, '/api/v1/admin/devices', { token: token.token })).status, 403);
  await noAxe(page, 'the console as a supervisor');
  // Signing out everywhere ends the session the test opened beside the page's, too.
  await page.click('#sign-out-all');
  await page.locator('#login-note:not([hidden])').waitFor();
  assert.equal(await page.locator('#login-note').textContent(), desk.fi.login_note_everywhere);
  assert.equal((await apiCall(daemon.url, '/api/v1/auth/me', { token: token.token })).status, 401);
  await context.close();

  const agent = await originBoundPage(browser, daemon.url, VIEW);
  await agent.page.goto(`${daemon.url}/admin/`);
  await signIn(agent.page, 'agent1');
  await agent.page.locator('[data-screen="denied"]:not([hidden])').waitFor();
  assert.equal(await agent.page.locator('#denied-heading').textContent(), desk.fi.ad_denied_heading);
  assert.equal(await agent.page.locator('#admin-devices-body tr').count(), 0);
  await noAxe(agent.page, 'the refusal');
  await agent.context.close();
});

test('every desk string file has the console\'s strings, each filled', () => {
  const keys = Object.keys(desk.en).filter((k) => k.startsWith('ad_'));
  assert.ok(keys.length > 20);
  for (const l of ['fi', 'sv']) {
    for (const k of keys) assert.ok(typeof desk[l][k] === 'string' && desk[l][k].trim(), `${l}.${k}`);
    for (const k of keys) for (const ph of desk.en[k].match(/\{\w+\}/g) || []) assert.ok(desk[l][k].includes(ph), `${l}.${k} keeps ${ph}`);
  }
});
