// Branding from the config ([brand], docs/operations.md "Branding") in headless Chromium against the real
// daemon: every client (kiosk, phone page, public page, hall display, desk) takes the brand's colour on its
// primary element from /brand.css and shows the logo with the brand's name in the page's language;
// axe-core (WCAG 2.2 AA) finds nothing on each; without a logo none shows; `vuoro check-config` refuses a
// brand whose text colour is too faint on its colour, naming the line.
// Screenshots: docs/screenshots/brand-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, launchBrowser, originBoundPage, axeViolations, apiCall, login, vuoroBin, repo } from './lib.mjs';

const SITE = 'iso-omena';
const SHOTS = join(repo, 'docs', 'screenshots');
const PRIMARY = '#6b1d4f'; // plum: white on it 11.5:1, on the page 9.4:1
const ON_PRIMARY = '#ffffff';
const ACCENT = '#e8a317';
const NAME = { fi: 'Testilän kaupunki', sv: 'Teststads stad', en: 'City of Testville' };
const rgb = (hex) => `rgb(${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(', ')})`;

const LOGO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="160" height="48" viewBox="0 0 160 48">
<rect width="160" height="48" rx="8" fill="${ACCENT}"/><circle cx="24" cy="24" r="14" fill="${PRIMARY}"/>
<rect x="48" y="16" width="96" height="16" rx="4" fill="${PRIMARY}"/></svg>
`;

/** The demo config with its [brand] table replaced by `brand` (TOML text). */
function demoWithBrand(brand) {
  const demo = readFileSync(join(repo, 'config', 'demo.toml'), 'utf8');
  const withoutBrand = demo.replace(/^\[brand\]\n(?:[^[\n].*\n)*/m, '');
  assert.ok(!/^\[brand\]/m.test(withoutBrand), 'the demo\'s [brand] was taken out');
  return `${withoutBrand}\n${brand}`;
}

let dir;
let daemon;
let browser;
const contexts = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vuoro-brand-'));
  mkdirSync(SHOTS, { recursive: true });
  writeFileSync(join(dir, 'logo.svg'), LOGO_SVG);
  const brand = [
    '[brand]',
    `name = { fi = "${NAME.fi}", sv = "${NAME.sv}", en = "${NAME.en}" }`,
    `logo = "${join(dir, 'logo.svg')}"`,
    `primary = "${PRIMARY}"`,
    `on_primary = "${ON_PRIMARY}"`,
    `accent = "${ACCENT}"`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'brand.toml'), demoWithBrand(brand));
  daemon = await startDaemon({ config: join(dir, 'brand.toml') });
  browser = await launchBrowser();
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  if (browser) await browser.close();
  if (daemon) {
    await daemon.stop();
    daemon.cleanup();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A page on the daemon, axe-ready (the CSP forbids the inline script axe is injected as). */
async function open(base, path, viewport) {
  const p = await originBoundPage(browser, base, { viewport, bypassCSP: true });
  contexts.push(p.context);
  p.errors = [];
  p.page.on('pageerror', (e) => p.errors.push(e.message));
  await p.page.goto(base + path);
  return p;
}

/** The logo: shown, loaded, its text the brand's name in the page's language. */
async function logoShown(page, where) {
  const logo = page.locator('img[data-brand-logo]');
  await logo.waitFor({ state: 'visible', timeout: 10000 });
  const { alt, width, lang, src } = await logo.evaluate(async (img) => {
    await img.decode();
    return { alt: img.alt, width: img.naturalWidth, lang: document.documentElement.lang, src: img.getAttribute('src') };
  });
  assert.equal(src, '/brand/logo', where);
  assert.ok(width > 0, `${where}: the logo loaded`);
  const expected = NAME[lang] ?? (lang !== 'fi' && lang !== 'sv' ? NAME.en : NAME.fi);
  assert.equal(alt, expected, `${where}: the logo's text is the brand's name in '${lang}'`);
}

async function style(page, selector, prop) {
  return page.locator(selector).first().evaluate((el, p) => getComputedStyle(el)[p], prop);
}

async function clean(p, where) {
  assert.deepEqual(await axeViolations(p.page), [], `${where}: axe-core wcag22aa`);
  assert.deepEqual(p.foreign, [], `${where}: nothing from another origin`);
  assert.deepEqual(p.errors, [], `${where}: no script errors`);
}

test('the daemon serves the brand: /brand.css from the config, the logo with its type, the name', async () => {
  const css = await fetch(`${daemon.url}/brand.css`);
  assert.equal(css.status, 200);
  assert.match(css.headers.get('content-type'), /^text\/css/);
  const text = await css.text();
  assert.match(text, new RegExp(`--brand-primary: ${PRIMARY};`));
  assert.match(text, new RegExp(`--brand-on-primary: ${ON_PRIMARY};`));
  assert.match(text, new RegExp(`--brand-accent: ${ACCENT};`));
  const logo = await fetch(`${daemon.url}/brand/logo`);
  assert.equal(logo.status, 200);
  assert.equal(logo.headers.get('content-type'), 'image/svg+xml');
  assert.match(logo.headers.get('content-security-policy'), /sandbox/, 'an SVG opened on its own runs nothing');
  assert.equal(await logo.text(), LOGO_SVG);
  const json = await apiCall(daemon.url, '/brand.json');
  assert.deepEqual(json.data, { name: NAME, logo: '/brand/logo' });
});

test('kiosk: the chosen language in the brand colour, the logo in the header (fi, then ar), axe clean', async () => {
  const p = await open(daemon.url, '/kiosk/?device=kiosk-1', { width: 1080, height: 1920 });
  const { page } = p;
  const chosen = '.lang-row .lang-btn[aria-current="true"]';
  await page.locator(chosen).waitFor();
  assert.equal(await style(page, chosen, 'backgroundColor'), rgb(PRIMARY));
  assert.equal(await style(page, chosen, 'color'), rgb(ON_PRIMARY));
  await logoShown(page, 'kiosk fi');
  assert.equal(await page.locator('header img[data-brand-logo]').count(), 1, 'the logo is in the header');
  await clean(p, 'kiosk start');
  await page.screenshot({ path: join(SHOTS, 'brand-kiosk.png') });
  // Arabic (the brand has no Arabic name): the English one, right to left.
  await page.locator('.lang-btn[lang="ar"]').click();
  await page.waitForFunction(() => document.documentElement.lang === 'ar');
  assert.equal(await page.getAttribute(chosen, 'lang'), 'ar');
  assert.equal(await style(page, chosen, 'backgroundColor'), rgb(PRIMARY));
  await logoShown(page, 'kiosk ar');
  await clean(p, 'kiosk ar');
  await page.screenshot({ path: join(SHOTS, 'brand-kiosk-ar.png') });
  // High contrast keeps its own yellow on black, whatever the brand.
  await page.locator('#b-contrast').click();
  await page.waitForFunction(() => document.documentElement.classList.contains('contrast'));
  assert.equal(await style(page, chosen, 'backgroundColor'), rgb('#ffe14d'));
  await clean(p, 'kiosk ar, high contrast');
});

test('phone page: the called alert in the brand colour, the logo in the header, axe clean', async () => {
  const kioskToken = (await apiCall(daemon.url, '/api/v1/demo/device-token?device=kiosk-1')).data.token;
  const r = await apiCall(daemon.url, `/api/v1/sites/${SITE}/tickets`, { method: 'POST', token: kioskToken, body: { service: 'lab-sample', lang: 'sv', priority: 'normal' } });
  assert.equal(r.status, 201, JSON.stringify(r.data));
  const tk = r.data;
  const p = await open(daemon.url, `/kiosk/track.html#t=${tk.token}`, { width: 390, height: 844 });
  const { page } = p;
  await page.locator('#card:not([hidden])').waitFor();
  await logoShown(page, 'phone sv');
  await clean(p, 'phone waiting');
  const staff = await login(daemon.url, 'supervisor');
  assert.equal((await apiCall(daemon.url, '/api/v1/counters/l1/open', { method: 'POST', token: staff, body: {} })).status, 200);
  let called = null;
  for (let i = 0; i < 30 && (!called || called.number !== tk.number); i++) {
    const c = await apiCall(daemon.url, '/api/v1/counters/l1/call-next', { method: 'POST', token: staff, body: {} });
    assert.equal(c.status, 200, JSON.stringify(c.data));
    called = c.data.ticket;
  }
  assert.equal(called.number, tk.number);
  await page.locator('#alert[data-kind="called"]').waitFor({ timeout: 10000 });
  assert.equal(await style(page, '#alert', 'backgroundColor'), rgb(PRIMARY));
  assert.equal(await style(page, '#alert', 'color'), rgb(ON_PRIMARY));
  await clean(p, 'phone called');
  await page.screenshot({ path: join(SHOTS, 'brand-phone.png'), fullPage: true });
});

test('public page: the chosen language in the brand colour, the logo in the header, axe clean', async () => {
  const p = await open(daemon.url, `/public/?site=${SITE}&lang=en`, { width: 1280, height: 900 });
  const { page } = p;
  await page.waitForSelector('#status[data-state="live"]', { timeout: 15000 });
  assert.equal(await style(page, '.languages a[aria-current="true"]', 'backgroundColor'), rgb(PRIMARY));
  assert.equal(await style(page, 'a[href]', 'color'), rgb(PRIMARY), 'links');
  await logoShown(page, 'public en');
  await clean(p, 'public');
  await page.screenshot({ path: join(SHOTS, 'brand-public.png'), fullPage: true });
});

test('hall display: the top bar in the brand colour with the logo, the shared typeface, axe clean', async () => {
  const p = await open(daemon.url, `/display/?site=${SITE}&id=hall`, { width: 1920, height: 1080 });
  const { page } = p;
  await page.waitForFunction(() => document.body.dataset.status === 'live', null, { timeout: 15000 });
  assert.equal(await style(page, 'header.top', 'backgroundColor'), rgb(PRIMARY));
  assert.equal(await style(page, 'header.top', 'color'), rgb(ON_PRIMARY));
  assert.equal(await style(page, 'header.top', 'borderBottomColor'), rgb(ACCENT));
  assert.equal(await style(page, 'body', 'backgroundColor'), 'rgb(11, 26, 46)', 'the dark scheme of theme.css');
  const themeFont = await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--v-font').trim());
  assert.ok(themeFont.length > 0);
  assert.equal(await style(page, 'body', 'fontFamily'), themeFont, 'one typeface stack');
  assert.equal(await page.locator('header.top img[data-brand-logo]').count(), 1);
  await logoShown(page, 'display');
  await clean(p, 'hall display');
  await page.screenshot({ path: join(SHOTS, 'brand-display.png') });
});

test('desk sign-in: the top bar and the sign-in button in the brand colour, the logo follows the language', async () => {
  const p = await open(daemon.url, '/desk/', { width: 1366, height: 768 });
  const { page } = p;
  await page.waitForSelector('#login-username', { state: 'visible' });
  assert.equal(await style(page, '.topbar', 'backgroundColor'), rgb(PRIMARY));
  assert.equal(await style(page, '.topbar', 'color'), rgb(ON_PRIMARY));
  assert.equal(await style(page, '#login-form button.primary', 'backgroundColor'), rgb(PRIMARY));
  assert.equal(await style(page, '#login-form button.primary', 'color'), rgb(ON_PRIMARY));
  const themeFont = await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--v-font').trim());
  assert.equal(await style(page, 'body', 'fontFamily'), themeFont, 'one typeface stack');
  assert.equal(await page.locator('.topbar img[data-brand-logo]').count(), 1);
  await logoShown(page, 'desk fi');
  await clean(p, 'desk sign-in fi');
  await page.selectOption('#lang', 'sv');
  await page.waitForFunction(() => document.documentElement.lang === 'sv');
  await logoShown(page, 'desk sv');
  await page.screenshot({ path: join(SHOTS, 'brand-desk.png') });
});

test('without a logo none shows and /brand/logo is 404; colours left out fall back to the theme', async () => {
  const cfg = join(dir, 'no-logo.toml');
  writeFileSync(cfg, demoWithBrand(`[brand]\nname = { fi = "${NAME.fi}" }\n`));
  const d = await startDaemon({ config: cfg });
  try {
    assert.equal((await fetch(`${d.url}/brand/logo`)).status, 404);
    const css = await (await fetch(`${d.url}/brand.css`)).text();
    assert.doesNotMatch(css, /--brand-/);
    const p = await open(d.url, '/desk/', { width: 1366, height: 768 });
    await p.page.waitForSelector('#login-username', { state: 'visible' });
    assert.equal(await style(p.page, '.topbar', 'backgroundColor'), rgb('#0b4f9c'), 'the theme\'s own colour');
    // brand.js has had its answer once the request for it is over; the logo stays hidden.
    await p.page.waitForLoadState('networkidle');
    assert.equal(await p.page.locator('img[data-brand-logo]').isHidden(), true);
    await clean(p, 'desk without a logo');
  } finally {
    await d.stop();
    d.cleanup();
  }
});

test('a logo file that is missing or not what its name says is refused; one removed later is not shown', async () => {
  const cases = [
    ['missing.svg', null],
    ['fake.png', '<svg xmlns="http://www.w3.org/2000/svg"/>'],
  ];
  for (const [file, content] of cases) {
    if (content !== null) writeFileSync(join(dir, file), content);
    const cfg = join(dir, `logo-${file}.toml`);
    writeFileSync(cfg, demoWithBrand(`[brand]\nname = { fi = "${NAME.fi}" }\nlogo = "${join(dir, file)}"\n`));
    let status = 0;
    let out = '';
    try {
      execFileSync(vuoroBin(), ['check-config', cfg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      status = e.status;
      out = `${e.stdout}${e.stderr}`;
    }
    assert.notEqual(status, 0, `${file}: refused`);
    assert.match(out, new RegExp(file.replace('.', '\\.')), out);
  }
  // A good logo that disappears while the daemon runs: no broken image, no logo named.
  const good = join(dir, 'later.svg');
  writeFileSync(good, '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
  const cfg = join(dir, 'logo-later.toml');
  writeFileSync(cfg, demoWithBrand(`[brand]\nname = { fi = "${NAME.fi}" }\nlogo = "${good}"\n`));
  const d = await startDaemon({ config: cfg });
  try {
    assert.equal((await fetch(`${d.url}/brand/logo`)).status, 200);
    rmSync(good);
    const json = await apiCall(d.url, '/brand.json');
    assert.deepEqual(json.data, { name: { fi: NAME.fi }, logo: null });
    assert.equal((await fetch(`${d.url}/brand/logo`)).status, 404);
  } finally {
    await d.stop();
    d.cleanup();
  }
});

test('check-config refuses a brand whose text colour is too faint on it, naming the line', async () => {
  const cfg = join(dir, 'faint.toml');
  const text = demoWithBrand(`[brand]\nname = { fi = "${NAME.fi}" }\nprimary = "#0b4f9c"\non_primary = "#3d6fb0"\n`);
  writeFileSync(cfg, text);
  const line = text.split('\n').findIndex((l) => l.startsWith('on_primary')) + 1;
  let out = '';
  let status = 0;
  try {
    execFileSync(vuoroBin(), ['check-config', cfg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    status = e.status;
    out = `${e.stdout}${e.stderr}`;
  }
  assert.notEqual(status, 0, 'refused');
  assert.match(out, new RegExp(`faint\\.toml:${line}: brand\\.on_primary #3d6fb0 on brand\\.primary #0b4f9c has a contrast of 1\\.\\d\\d:1; text needs at least 4\\.5:1`), out);
  // The same config with a white text colour passes.
  writeFileSync(cfg, text.replace('#3d6fb0', '#ffffff'));
  execFileSync(vuoroBin(), ['check-config', cfg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
});
