// Shared harness for the browser tests: the real daemon on a free loopback port with a fresh data
// folder, Debian's headless Chromium through playwright-core, axe-core checks, and a physical-size check.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = join(here, '..', '..');

/** The vuoro binary: VUORO_BIN, else target/debug/vuoro (the test command builds it first). */
export function vuoroBin() {
  const bin = process.env.VUORO_BIN || join(repo, 'target', 'debug', 'vuoro');
  if (!existsSync(bin)) throw new Error(`no daemon binary at ${bin}: run cargo build first`);
  return bin;
}

let daemons = 0;

/**
 * A file of its own for a daemon's record of the WebSocket messages it sends (VUORO_RECORD_WS), under the
 * folder VUORO_WS_RECORD_DIR names (tests/run-all.sh sets it, then checks every record against the AsyncAPI
 * document); none when it is not set.
 */
function wsRecord() {
  const dir = process.env.VUORO_WS_RECORD_DIR;
  return dir ? { VUORO_RECORD_WS: join(dir, `browser-${process.pid}-${daemons++}.jsonl`) } : {};
}

/**
 * Starts the daemon. Returns { url, stop(), restart(), dataDir, logs() }.
 * opts.config: a config file (default: the demo); opts.env: extra environment; opts.dataDir: reuse a folder.
 */
export async function startDaemon(opts = {}) {
  const dataDir = opts.dataDir || mkdtempSync(join(tmpdir(), 'vuoro-browser-'));
  const args = ['serve', '--listen', opts.listen || '127.0.0.1:0', '--data', dataDir];
  if (opts.config) args.push('--config', opts.config);
  let out = '';
  const child = spawn(vuoroBin(), args, {
    cwd: repo,
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info', ...wsRecord(), ...(opts.env || {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('daemon did not start in 20 s:\n' + out)), 20000);
    const check = () => {
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    child.on('exit', (code) => reject(new Error(`daemon exited (${code}):\n${out}`)));
  });
  const stop = async () => {
    if (child.exitCode !== null) return;
    const done = new Promise((r) => child.on('exit', r));
    child.kill('SIGTERM');
    await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  return {
    url,
    dataDir,
    child,
    logs: () => out,
    stop,
    /** Stops it and starts it again on the same port and data. */
    async restart() {
      await stop();
      const port = new URL(url).port;
      return startDaemon({ ...opts, dataDir, listen: `127.0.0.1:${port}` });
    },
    cleanup() {
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Launches Debian's Chromium headless with the flags this machine needs. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/**
 * A page that fails the test on any request leaving the daemon's origin (it is aborted and recorded).
 * Returns { page, foreign } where foreign is the list of such URLs.
 */
export async function originBoundPage(browser, baseUrl, contextOpts = {}) {
  const context = await browser.newContext(contextOpts);
  const origin = new URL(baseUrl).origin;
  const foreign = [];
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(origin) || u.startsWith('data:') || u.startsWith('blob:')) return route.continue();
    foreign.push(u);
    return route.abort();
  });
  const page = await context.newPage();
  return { page, context, foreign };
}

const axeSource = readFileSync(join(here, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

/** Runs axe-core with the WCAG 2.2 A/AA tags; returns the violations (an empty list is a pass). */
export async function axeViolations(page) {
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    return axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] } });
  });
  return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
}

/**
 * CSS pixels per millimetre of a panel: `diagonalInch` inches with `widthPx` x `heightPx` CSS pixels.
 * A 21.5" full-HD panel gives about 4.0 px/mm, so 20 mm is about 81 px.
 */
export function pxPerMm(diagonalInch, widthPx, heightPx) {
  const diagPx = Math.hypot(widthPx, heightPx);
  return diagPx / (diagonalInch * 25.4);
}

/** Every visible control smaller than `minMm` x `minMm` on a panel with `pxmm` CSS px per mm. */
export async function undersizedControls(page, pxmm, minMm = 20) {
  return page.evaluate(
    ({ pxmm, minMm }) => {
      const min = pxmm * minMm;
      const out = [];
      for (const el of document.querySelectorAll('button, a[href], input, select, textarea, [role="button"], [tabindex]:not([tabindex="-1"])')) {
        const r = el.getBoundingClientRect();
        const style = getComputedStyle(el);
        if (r.width === 0 || r.height === 0 || style.visibility === 'hidden' || style.display === 'none') continue;
        if (r.width + 0.5 < min || r.height + 0.5 < min) {
          out.push({ el: el.outerHTML.slice(0, 80), widthMm: +(r.width / pxmm).toFixed(1), heightMm: +(r.height / pxmm).toFixed(1) });
        }
      }
      return out;
    },
    { pxmm, minMm },
  );
}

/** JSON API call from the test itself (Node's fetch), with an optional bearer token. */
export async function apiCall(baseUrl, path, { method = 'GET', body, token, headers = {} } = {}) {
  const h = { ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (token) h.Authorization = `Bearer ${token}`;
  const res = await fetch(baseUrl + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = text;
  }
  return { status: res.status, data };
}

/** Logs in a demo user and returns their bearer token. */
export async function login(baseUrl, username, password = 'demo') {
  const r = await apiCall(baseUrl, '/api/v1/auth/login', { method: 'POST', body: { username, password } });
  if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.data)}`);
  return r.data.token;
}

/** Signs a demo user in through a staff page's login form (desk, supervisor, reports). */
export async function signIn(page, username, password = 'demo') {
  await page.waitForSelector('#login-username', { state: 'visible' });
  await page.fill('#login-username', username);
  await page.fill('#login-password', password);
  await page.click('#login-form button[type="submit"]');
}
