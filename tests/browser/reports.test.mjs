// The reports screen (/desk/reports.html) in headless Chromium against the real daemon: real activity
// through the API (tickets from a kiosk, calls and finishes at counters, a pop-up site staffed for a
// while), then a supervisor picks ranges and groupings and checks the figures in the table, the charts,
// the CSV link and file, the errors for a bad range, Finnish and Swedish, keyboard use, axe, and that an
// agent is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, launchBrowser, originBoundPage, axeViolations, apiCall, login, signIn, repo } from './lib.mjs';

const SITE = 'iso-omena';
const POPUP = 'popup-senior';
const TZ = 'Europe/Helsinki';
const shots = join(repo, 'docs', 'screenshots');
mkdirSync(shots, { recursive: true });

// The demo hall plus a pop-up service point at a senior centre: its own site, open when its staff open
// the counter, in a unit the demo supervisor supervises (so the site comparison shows both).
const POPUP_TOML = `
[[site]]
id = "${POPUP}"
name = { fi = "Pop-up: Leppävaaran seniorikeskus", sv = "Pop up: Alberga seniorcenter", en = "Pop-up: Leppävaara senior centre" }
timezone = "${TZ}"
languages = ["fi", "sv", "en"]
always_open = true

[[site.zone]]
id = "main"
name = { fi = "Aula", sv = "Aulan", en = "Lobby" }
voice = "chime"

[[site.unit]]
id = "kela"
name = { fi = "Kela", sv = "FPA", en = "Kela" }

[[site.series]]
letter = "S"

[[site.service]]
id = "popup-kela"
unit = "kela"
series = "S"
icon = "benefits"
name = { fi = "Kelan neuvonta", sv = "FPA:s rådgivning", en = "Kela advice" }
expected_service_minutes = 10

[[site.counter]]
id = "popup-1"
unit = "kela"
name = { fi = "Pop-up-piste", sv = "Pop up-punkt", en = "Pop-up desk" }
location = { fi = "Aula", sv = "Aulan", en = "Lobby" }
zone = "main"
services = [{ service = "popup-kela", tier = 1 }]
`;

let daemon;
let configDir;
let browser;
let kiosk;
let supervisorToken;
const pages = [];
// bypassCSP: the daemon's Content-Security-Policy (rightly) forbids inline scripts, and axe is injected as one.
const VIEW = { viewport: { width: 1366, height: 900 }, locale: 'en-GB', bypassCSP: true };

/** Today, and n days from it, as the site's local date (the daemon counts in the site's time zone). */
function today(n = 0) {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(new Date());
  const get = (type) => parts.find((p) => p.type === type).value;
  const d = new Date(`${get('year')}-${get('month')}-${get('day')}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

// What was done, checked against the screen: arrivals, called and served per service and counter.
const done = {
  'kela-general': { arrivals: 3, called: 2, served: 2 },
  'joint-service': { arrivals: 2, called: 1, served: 1 },
  c2: { served: 2 },
  c5: { served: 1 },
  popup: { arrivals: 2, served: 1 },
};

async function verb(token, counter, name, body = {}) {
  const r = await apiCall(daemon.url, `/api/v1/counters/${counter}/${name}`, { method: 'POST', token, body });
  assert.ok(r.status === 200 || r.status === 204, `${counter} ${name}: ${r.status} ${JSON.stringify(r.data)}`);
  return r.data;
}

async function issue(site, service, token = kiosk) {
  const r = await apiCall(daemon.url, `/api/v1/sites/${site}/tickets`, { method: 'POST', token, body: { service, lang: 'fi' } });
  assert.equal(r.status, 201, JSON.stringify(r.data));
  return r.data;
}

before(async () => {
  configDir = mkdtempSync(join(tmpdir(), 'vuoro-reports-config-'));
  const config = join(configDir, 'two-sites.toml');
  writeFileSync(config, readFileSync(join(repo, 'config', 'demo.toml'), 'utf8') + POPUP_TOML);
  daemon = await startDaemon({ config });
  browser = await launchBrowser();
  const r = await apiCall(daemon.url, '/api/v1/demo/device-token?device=kiosk-1');
  assert.equal(r.status, 200, JSON.stringify(r.data));
  kiosk = r.data.token;
  supervisorToken = await login(daemon.url, 'supervisor');

  // The hall: three Kela tickets (two called and served at c2, one still waiting), two joint-service
  // tickets (one served at c5).
  for (let i = 0; i < 3; i++) await issue(SITE, 'kela-general');
  const joint = [];
  for (let i = 0; i < 2; i++) joint.push(await issue(SITE, 'joint-service'));
  const a1 = await login(daemon.url, 'agent1');
  const a2 = await login(daemon.url, 'agent2');
  await verb(a1, 'c2', 'open');
  await verb(a1, 'c2', 'call-next');
  await verb(a1, 'c2', 'start');
  await verb(a1, 'c2', 'finish');
  await verb(a1, 'c2', 'call-next');
  await verb(a1, 'c2', 'finish');
  await verb(a1, 'c2', 'close');
  await verb(a2, 'c5', 'open');
  await verb(a2, 'c5', 'call-next');
  await verb(a2, 'c5', 'finish');
  // Its customer answers the feedback question, with a comment.
  const fb = await apiCall(daemon.url, `/api/v1/tickets/${joint[0].token}/feedback`, {
    method: 'POST',
    body: { rating: 5, comment: 'Clear advice, thank you' },
  });
  assert.equal(fb.status, 201, JSON.stringify(fb.data));
  // The pop-up: staff issue two tickets there, open its counter, serve one, close it.
  await issue(POPUP, 'popup-kela', a1);
  await issue(POPUP, 'popup-kela', a1);
  await verb(a1, 'popup-1', 'open');
  await verb(a1, 'popup-1', 'call-next');
  await verb(a1, 'popup-1', 'finish');
  await new Promise((r) => setTimeout(r, 2100)); // open for two seconds at least: opening hours > 0
  await verb(a1, 'popup-1', 'close');
});

after(async () => {
  if (browser) await browser.close();
  if (daemon) {
    await daemon.stop();
    daemon.cleanup();
  }
  if (configDir) rmSync(configDir, { recursive: true, force: true });
});

// ---- helpers ------------------------------------------------------------------------------------

async function newPage(opts = {}) {
  const p = await originBoundPage(browser, daemon.url, { ...VIEW, ...opts });
  p.errors = [];
  p.reportRequests = [];
  p.page.on('pageerror', (e) => p.errors.push(e.message));
  p.page.on('request', (r) => r.url().includes('/api/v1/reports') && p.reportRequests.push(r.url()));
  pages.push(p);
  return p;
}

/** Waits until the report on screen is the one for `parts` (every key=value in the query). */
async function waitReport(page, parts) {
  await page.waitForFunction(
    (parts) => {
      const r = document.querySelector('#results');
      if (!r || r.hidden || r.getAttribute('aria-busy') === 'true') return false;
      const q = new URLSearchParams(r.dataset.query || '');
      return Object.entries(parts).every(([k, v]) => (v === null ? !q.has(k) : q.get(k) === v));
    },
    parts,
    { timeout: 15000 },
  );
}

/** A figure from the table: the row with data-key `key`, the column `col`, as text. */
async function cell(page, key, col) {
  return page.$eval(`#report-body tr[data-key="${key}"] [data-col="${col}"]`, (c) => c.textContent.trim());
}

/** Picks the form's values and presses "Show report". */
async function showReport(page, { site, from, to, group }) {
  if (site) await page.selectOption('#r-site', site);
  if (from) await page.fill('#r-from', from);
  if (to) await page.fill('#r-to', to);
  if (group) await page.selectOption('#r-group', group);
  await page.click('#r-submit');
}

function assertNoAxe(violations, where) {
  assert.deepEqual(violations, [], `axe on ${where}: ${JSON.stringify(violations, null, 1)}`);
}

/** The reports screen, signed in as the supervisor (through the supervisor view's link). */
let sv; // { page, ... } shared by the tests below, in order

// ---- tests --------------------------------------------------------------------------------------

test('every reports string is in Finnish, Swedish and English', () => {
  const dir = join(repo, 'desk-ui', 'i18n');
  const files = Object.fromEntries(['fi', 'sv', 'en'].map((l) => [l, JSON.parse(readFileSync(join(dir, `${l}.json`), 'utf8'))]));
  const keys = new Set(Object.values(files).flatMap((f) => Object.keys(f)));
  for (const [l, f] of Object.entries(files)) {
    for (const k of keys) assert.ok(typeof f[k] === 'string' && f[k].trim(), `${l}.json lacks "${k}"`);
  }
  // Every key the page and its script use exists.
  const html = readFileSync(join(repo, 'desk-ui', 'reports.html'), 'utf8');
  const js = readFileSync(join(repo, 'desk-ui', 'reports.js'), 'utf8');
  const used = new Set([...html.matchAll(/data-i18n="([^"]+)"/g)].map((m) => m[1]));
  for (const m of html.matchAll(/data-i18n-attr="([^"]+)"/g)) for (const pair of m[1].split(';')) used.add(pair.split(':')[1]);
  for (const m of js.matchAll(/\bt\('([a-z0-9_]+[a-z0-9])'/g)) used.add(m[1]);
  // Keys made from a name: groupings, and every column the daemon answers (docs/reports.md).
  for (const g of ['service', 'unit', 'counter', 'staff', 'hour', 'day', 'week', 'month', 'site']) used.add('rp_group_' + g).add('rp_by_' + g);
  const labels = ['service', 'service_name', 'unit', 'unit_name', 'counter', 'counter_name', 'staff', 'hour', 'date', 'week_start', 'week', 'month_start', 'month', 'site', 'site_name'];
  const figures = ['arrivals', 'called', 'served', 'no_shows', 'cancelled', 'day_ended', 'transfers', 'pass_ons', 'wait_mean_minutes', 'wait_median_minutes',
    'wait_p90_minutes', 'within_target_share', 'service_mean_minutes', 'service_median_minutes', 'open_hours', 'busy_hours', 'idle_hours', 'idle_share',
    'opening_hours', 'visits_per_opening_hour'];
  for (const c of labels) used.add('rp_col_' + c);
  for (const c of figures) used.add('rp_col_' + c).add('rp_help_' + c);
  for (const k of used) assert.ok(k in files.en, `"${k}" is used but not in the strings`);
});

test('the supervisor view links to the reports screen, which opens on the same session', async () => {
  sv = await newPage();
  const { page } = sv;
  await page.goto(daemon.url + '/desk/supervisor.html');
  await signIn(page, 'supervisor');
  await page.waitForSelector('[data-screen="sv"]:not([hidden])');
  await page.waitForFunction(() => document.querySelector('#reports-link').getAttribute('href').includes('#site='));
  await page.click('#reports-link');
  await page.waitForURL(/\/desk\/reports\.html/);
  // No second sign-in: the session cookie is the same.
  await page.waitForSelector('[data-screen="reports"]:not([hidden])');
  assert.equal(await page.isHidden('[data-screen="login"]'), true);
  await waitReport(page, { site: SITE, group: 'service' });
});

test('by default the last 7 days by service; the table shows what was done', async () => {
  const { page } = sv;
  assert.equal(await page.inputValue('#r-from'), today(-6));
  assert.equal(await page.inputValue('#r-to'), today());
  assert.equal(await page.inputValue('#r-group'), 'service');
  await waitReport(page, { site: SITE, from: today(-6), to: today(), group: 'service', lang: 'en' });

  for (const id of ['kela-general', 'joint-service']) {
    for (const [col, n] of Object.entries(done[id])) assert.equal(await cell(page, id, col), String(n), `${id} ${col}`);
  }
  // The same as the daemon answers.
  const api = (await apiCall(daemon.url, `/api/v1/reports?site=${SITE}&from=${today(-6)}&to=${today()}&group=service&lang=en`, { token: supervisorToken })).data;
  assert.equal(await page.$$eval('#report-body tr', (r) => r.length), api.rows.length);
  for (const row of api.rows) {
    assert.equal(await cell(page, row.service, 'service_name'), row.service_name);
    assert.equal(await cell(page, row.service, 'arrivals'), String(row.arrivals));
    assert.equal(await cell(page, row.service, 'served'), String(row.served));
  }
  // A proper table: a caption, column headers with scope, a row header per row, every API column, units in
  // headers, numbers right-aligned.
  assert.match(await page.textContent('#report-caption'), /Figures by service: Iso Omena Service Square/);
  const heads = await page.$$eval('#report-head th[data-col]', (t) => t.map((h) => [h.dataset.col, h.getAttribute('scope'), h.textContent.trim()]));
  // Every API column but the service id, which the service's name stands for.
  assert.deepEqual(heads.map((h) => h[0]).sort(), api.columns.filter((c) => c !== 'service').sort());
  // No internal id on screen: services and units by their names in the UI language.
  const shown = await page.innerText('#report-table');
  for (const id of ['kela-general', 'joint-service', 'yhteispalvelu']) assert.ok(!shown.includes(id), `"${id}" shown in the table`);
  const units = (await apiCall(daemon.url, `/api/v1/sites/${SITE}/units`, { token: supervisorToken })).data.units;
  assert.equal(await cell(page, 'joint-service', 'unit'), units.find((u) => u.id === 'yhteispalvelu').name.en);
  assert.match(heads.find(([c]) => c === 'unit')[2], /^Unit$/);
  assert.ok(heads.every((h) => h[1] === 'col'));
  assert.ok(heads.some(([c, , text]) => c === 'wait_mean_minutes' && /\(min\)/.test(text)));
  assert.ok(heads.some(([c, , text]) => c === 'within_target_share' && /\(%\)/.test(text)));
  assert.equal(await page.$$eval('#report-body tr th[scope="row"]', (t) => t.length), api.rows.length);
  assert.equal(await page.$eval('#report-body td[data-col="arrivals"]', (td) => getComputedStyle(td).textAlign), 'right');
  // An empty figure says so to a screen reader, not just a dash.
  assert.match(await cell(page, 'kela-general', 'open_hours'), /no value/);

  // Charts: SVG images with a name and a description that sums them up.
  const volume = page.getByRole('img', { name: /Arrivals and served, by service/ });
  assert.equal(await volume.count(), 1);
  assert.ok((await page.$$eval('#chart-volume svg rect', (r) => r.length)) >= 2);
  const desc = await page.$eval('#chart-volume svg desc', (d) => d.textContent);
  assert.match(desc, /Arrivals: 5 in total, most in Kela benefits \(3\)/);
  assert.match(desc, /Served: 3 in total/);
  assert.equal(await page.getByRole('img', { name: /Waiting time in minutes/ }).count(), 1);
  assert.equal(await page.isVisible('#provisional'), true, 'today is provisional');
  // Feedback: counted per service, and the comment listed for the supervisor with day, service and rating.
  assert.equal(await cell(page, 'joint-service', 'feedback'), '1');
  assert.equal(await cell(page, 'joint-service', 'feedback_mean'), '5.00');
  await page.locator('#fb-comments').waitFor({ state: 'visible' });
  const comments = await page.innerText('#fb-comments-list');
  assert.match(comments, /Clear advice, thank you/);
  assert.match(comments, /Advice and errands · rating 5\/5/);

  await page.screenshot({ path: join(shots, 'reports.png'), fullPage: true });
  assertNoAxe(await axeViolations(page), 'reports, English');
  await page.click('#columns-help summary');
  assert.match(await page.textContent('#columns-list'), /Arrivals divided by opening hours/);
  assertNoAxe(await axeViolations(page), 'reports with the column help open');
});

test('a range and another grouping: counters, hours of the day, days', async () => {
  const { page } = sv;
  await showReport(page, { from: today(), to: today(), group: 'counter' });
  await waitReport(page, { from: today(), to: today(), group: 'counter' });
  assert.equal(await cell(page, 'c2', 'served'), String(done.c2.served));
  assert.equal(await cell(page, 'c5', 'served'), String(done.c5.served));
  assert.match(await cell(page, 'c2', 'arrivals'), /no value/, 'arrivals are not counted per counter');
  assert.match(await page.textContent('#results-heading'), /by counter/);
  assert.equal(await page.getByRole('img', { name: /Called and served, by counter/ }).count(), 1);
  assert.equal(await page.getByRole('img', { name: /Counter time in hours/ }).count(), 1);
  // The page address keeps the choice (for a bookmark), with nothing secret in it.
  const hash = new URLSearchParams((await page.evaluate(() => location.hash)).slice(1));
  assert.deepEqual(Object.fromEntries(hash), { site: SITE, from: today(), to: today(), group: 'counter' });

  await showReport(page, { group: 'hour' });
  await waitReport(page, { group: 'hour' });
  const arrivals = await page.$$eval('#report-body td[data-col="arrivals"]', (c) => c.reduce((a, td) => a + Number(td.textContent), 0));
  assert.equal(arrivals, 5);
  await page.waitForSelector('#busiest:not([hidden]) #busiest-list li');
  assert.match(await page.textContent('#busiest-list'), /arrivals per open day/);
  assert.equal(await page.getByRole('img', { name: /Arrivals and served, by hour of the day/ }).count(), 1);

  await showReport(page, { from: today(-6), group: 'day' });
  await waitReport(page, { from: today(-6), to: today(), group: 'day' });
  assert.equal(await page.$$eval('#report-body tr', (r) => r.length), 7, 'every day of the range, zeros included');
  assert.equal(await cell(page, today(), 'arrivals'), '5');
  assert.equal(await cell(page, today(-1), 'arrivals'), '0');
  assertNoAxe(await axeViolations(page), 'reports by day');
});

test('the CSV link carries the same filters, and the file has the same figures', async () => {
  const { page } = sv;
  await showReport(page, { from: today(), to: today(), group: 'service' });
  await waitReport(page, { from: today(), to: today(), group: 'service' });
  const href = await page.getAttribute('#csv-link', 'href');
  assert.ok(href.startsWith('/api/v1/reports?'), `same-origin link: ${href}`);
  assert.equal(await page.getAttribute('#csv-link', 'download'), '');
  const q = Object.fromEntries(new URL(href, daemon.url).searchParams);
  assert.deepEqual(q, { site: SITE, from: today(), to: today(), group: 'service', lang: 'en', format: 'csv' });

  // Fetched in the page, with the session cookie (a plain GET, as the link does).
  const got = await page.evaluate(async (href) => {
    const r = await fetch(href, { credentials: 'same-origin' });
    return { status: r.status, type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'), text: await r.text() };
  }, href);
  assert.equal(got.status, 200);
  assert.match(got.type, /^text\/csv/);
  assert.match(got.disposition, /attachment; filename="vuoro-iso-omena-service-/);
  const lines = got.text.replace(/^\uFEFF/, '').trim().split(/\r\n/);
  const header = lines[0].split(',');
  assert.equal(header[0], 'service');
  assert.ok(header.includes('arrivals') && header.includes('served'));
  const row = lines.slice(1).map((l) => l.split(',')).find((f) => f[0] === 'kela-general');
  assert.ok(row, got.text);
  assert.equal(row[header.indexOf('arrivals')], String(done['kela-general'].arrivals));
  assert.equal(row[header.indexOf('served')], String(done['kela-general'].served));
  assert.equal(lines.length - 1, await page.$$eval('#report-body tr', (r) => r.length), 'as many rows as the table');
});

test('a bad range is refused with a clear message and changes nothing', async () => {
  const { page } = sv;
  const before = {
    table: await page.innerHTML('#report-table'),
    csv: await page.getAttribute('#csv-link', 'href'),
    hash: await page.evaluate(() => location.hash),
    heading: await page.textContent('#results-heading'),
  };
  const unchanged = async (what) => {
    assert.equal(await page.innerHTML('#report-table'), before.table, `${what}: table`);
    assert.equal(await page.getAttribute('#csv-link', 'href'), before.csv, `${what}: CSV link`);
    assert.equal(await page.evaluate(() => location.hash), before.hash, `${what}: address`);
    assert.equal(await page.textContent('#results-heading'), before.heading, `${what}: heading`);
  };

  // The last day before the first: told on the page, no request made.
  const requests = sv.reportRequests.length;
  await showReport(page, { from: today(), to: today(-1) });
  await page.waitForSelector('#form-error:not([hidden])');
  assert.match(await page.textContent('#form-error'), /The last day is before the first day/);
  assert.equal(await page.getAttribute('#r-to', 'aria-invalid'), 'true');
  assert.match(await page.getAttribute('#r-to', 'aria-describedby'), /form-error/);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'r-to');
  assert.equal(sv.reportRequests.length, requests, 'no request for a range the page knows is wrong');
  await unchanged('to before from');

  // More than three years: the daemon refuses, and its reason is shown as it gave it.
  await showReport(page, { from: '2020-01-01', to: today() });
  await page.waitForFunction(() => /three years/.test(document.querySelector('#form-error').textContent));
  assert.match(await page.textContent('#form-error'), /^The report was refused: a report covers at most three years/);
  assert.equal(await page.getAttribute('#form-error', 'role'), 'alert');
  await unchanged('more than three years');

  // A good range clears the message.
  await showReport(page, { from: today(), to: today() });
  await waitReport(page, { from: today(), to: today(), group: 'service' });
  assert.equal(await page.isHidden('#form-error'), true);
  assert.equal(await page.getAttribute('#r-to', 'aria-invalid'), null);
});

test('comparing every site, a pop-up included: visits per opening hour', async () => {
  const { page } = sv;
  await page.selectOption('#r-site', '*');
  assert.equal(await page.inputValue('#r-group'), 'site');
  assert.equal(await page.$eval('#r-group option[value="service"]', (o) => o.disabled), true);
  assert.equal(await page.isVisible('#r-group-hint'), true);
  await showReport(page, { from: today(-6), to: today() });
  await waitReport(page, { site: null, group: 'site', from: today(-6) });
  assert.equal(await cell(page, SITE, 'arrivals'), '5');
  assert.equal(await cell(page, POPUP, 'arrivals'), String(done.popup.arrivals));
  assert.equal(await cell(page, POPUP, 'served'), String(done.popup.served));
  assert.equal(await cell(page, POPUP, 'site_name'), 'Pop-up: Leppävaara senior centre');
  // Opening hours come from the counters' open and close events: the pop-up was open for a moment.
  assert.doesNotMatch(await cell(page, POPUP, 'opening_hours'), /no value/);
  assert.doesNotMatch(await cell(page, POPUP, 'visits_per_opening_hour'), /no value/);
  assert.equal(await page.getByRole('img', { name: /Visits per opening hour, by site/ }).count(), 1);
  const q = Object.fromEntries(new URL(await page.getAttribute('#csv-link', 'href'), daemon.url).searchParams);
  assert.deepEqual(q, { from: today(-6), to: today(), group: 'site', lang: 'en', format: 'csv' });
  await page.screenshot({ path: join(shots, 'reports-sites.png'), fullPage: true });
  assertNoAxe(await axeViolations(page), 'site comparison');
  // Back to one site: every grouping can be chosen again.
  await page.selectOption('#r-site', SITE);
  assert.equal(await page.$eval('#r-group option[value="service"]', (o) => o.disabled), false);
});

test('in Finnish and Swedish: the screen, the names from the daemon and the CSV language follow', async () => {
  const { page } = sv;
  await showReport(page, { site: SITE, from: today(-6), to: today(), group: 'service' });
  await waitReport(page, { site: SITE, group: 'service', lang: 'en' });
  await page.selectOption('#lang', 'fi');
  await waitReport(page, { site: SITE, group: 'service', lang: 'fi' });
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'fi');
  assert.equal(await page.textContent('#rp-heading'), 'Raportit');
  assert.equal(await page.textContent('label[for="r-from"]'), 'Alkaen');
  assert.match(await page.textContent('#results-heading'), /palveluittain/);
  assert.equal(await cell(page, 'kela-general', 'service_name'), 'Kelan etuudet');
  assert.match(await page.textContent('#report-head th[data-col="arrivals"]'), /Saapuneet/);
  assert.equal(await page.getByRole('img', { name: /Saapuneet ja palvellut, palveluittain/ }).count(), 1);
  assert.match(await page.getAttribute('#csv-link', 'href'), /lang=fi/);
  assert.equal(await page.textContent('#csv-link'), 'Lataa CSV');
  // Finnish number format in the table (a decimal comma), none of the English left.
  const text = await page.textContent('main');
  for (const en of ['Show report', 'Download CSV', 'Arrivals', 'Waiting time', 'no value']) assert.ok(!text.includes(en), `English left in Finnish: ${en}`);
  await page.screenshot({ path: join(shots, 'reports-fi.png'), fullPage: true });
  assertNoAxe(await axeViolations(page), 'reports, Finnish');

  await page.selectOption('#lang', 'sv');
  await waitReport(page, { site: SITE, group: 'service', lang: 'sv' });
  assert.equal(await page.textContent('#rp-heading'), 'Rapporter');
  assert.equal(await cell(page, 'kela-general', 'service_name'), 'FPA:s förmåner');
  assert.equal(await page.textContent('#csv-link'), 'Ladda ner CSV');
  const units = (await apiCall(daemon.url, `/api/v1/sites/${SITE}/units`, { token: supervisorToken })).data.units;
  const joint = units.find((u) => u.id === 'yhteispalvelu').name.sv;
  assert.ok(joint && joint !== 'yhteispalvelu');
  assert.equal(await cell(page, 'joint-service', 'unit'), joint, 'the unit by its Swedish name');
  await page.screenshot({ path: join(shots, 'reports-sv.png'), fullPage: true });
  assertNoAxe(await axeViolations(page), 'reports, Swedish');
  await page.selectOption('#lang', 'en');
  await waitReport(page, { lang: 'en' });
});

test('keyboard only: a quick choice and a grouping, with a visible focus', async () => {
  const { page } = sv;
  // A quick choice with the keyboard shows that range at once.
  await page.focus('#r-submit');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.range), 'today');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle + ' ' + getComputedStyle(document.activeElement).outlineWidth);
  assert.equal(outline, 'solid 3px');
  for (let i = 0; i < 4; i++) await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.range), 'last-30');
  await page.keyboard.press('Enter');
  await waitReport(page, { from: today(-29), to: today() });
  assert.equal(await page.inputValue('#r-from'), today(-29));
  // The grouping from the keyboard, then Enter on the button.
  await page.focus('#r-group');
  await page.keyboard.press('Home');
  assert.equal(await page.inputValue('#r-group'), 'service');
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.inputValue('#r-group'), 'unit');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'r-submit');
  await page.keyboard.press('Enter');
  await waitReport(page, { group: 'unit', from: today(-29) });
  assert.equal(await cell(page, 'kela', 'arrivals'), '3');
  // Enter in a date field sends the form too.
  await page.fill('#r-from', today());
  await page.focus('#r-from');
  await page.keyboard.press('Enter');
  await waitReport(page, { group: 'unit', from: today() });
  // The table scrolls sideways: it can take the focus to be scrolled with the arrow keys.
  assert.equal(await page.getAttribute('#table-wrap', 'tabindex'), '0');
  assert.deepEqual(sv.errors, []);
});

test('an agent is refused: the page says so and the daemon answers 403', async () => {
  const { page } = await newPage();
  await page.goto(daemon.url + '/desk/reports.html');
  await signIn(page, 'agent1');
  await page.waitForSelector('[data-screen="denied"]:not([hidden])');
  assert.equal(await page.isHidden('[data-screen="reports"]'), true);
  assert.match(await page.textContent('#denied-heading'), /Reports are for supervisors/);
  const status = await page.evaluate(async (site) => (await fetch(`/api/v1/reports?site=${site}&format=csv`, { credentials: 'same-origin' })).status, SITE);
  assert.equal(status, 403);
  assertNoAxe(await axeViolations(page), 'refused agent');
  // Without a session at all, neither JSON nor CSV.
  assert.equal((await apiCall(daemon.url, `/api/v1/reports?site=${SITE}&format=csv`)).status, 401);
});

test('no page made a request to another origin or failed', () => {
  assert.deepEqual(pages.flatMap((p) => p.foreign), []);
  assert.deepEqual(pages.flatMap((p) => p.errors), []);
});
