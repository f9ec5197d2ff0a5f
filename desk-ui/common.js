// Shared by the desk (index.html), the supervisor view (supervisor.html) and the reports (reports.html):
// translations, the language switch, signing in (with a password or through a single sign-on issuer, and
// again after a session ends), the idle lock, and small formatting helpers.
// Everything the staff member was doing stays in the page; the daemon holds the state, so after a sign-in
// or a reconnect the page only resynchronises.
import { api, ApiError, loadStrings, fill, pick } from '/shared/vuoro.js';

export const UI_LANGS = [
  { code: 'fi', name: 'Suomi' },
  { code: 'sv', name: 'Svenska' },
  { code: 'en', name: 'English' },
];

const LANG_KEY = 'vuoro.desk.lang';
let strings = {};
let fallback = {};
export let lang = 'fi';

/** The translated text for `key`, with {placeholders} filled. */
export function t(key, vars) {
  const s = strings[key] ?? fallback[key] ?? key;
  return vars ? fill(s, vars) : s;
}

/** Chooses the starting language: the saved one, else the browser's if offered, else Finnish. */
function initialLang() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved && UI_LANGS.some((l) => l.code === saved)) return saved;
  for (const l of navigator.languages || []) {
    const c = l.slice(0, 2).toLowerCase();
    if (UI_LANGS.some((x) => x.code === c)) return c;
  }
  return 'fi';
}

/** Loads the strings of a language and fills every [data-i18n] element. */
export async function setLang(code) {
  lang = code;
  localStorage.setItem(LANG_KEY, code);
  strings = await loadStrings('/desk/i18n', code);
  if (code !== 'en' && !Object.keys(fallback).length) {
    try {
      fallback = await loadStrings('/desk/i18n', 'en');
    } catch (e) {
      fallback = {};
    }
  }
  document.documentElement.lang = code;
  applyStrings(document);
  if (signInChoices) renderSignInChoices();
}

/** Fills [data-i18n] (text) and [data-i18n-attr="attr:key;attr:key"] in `root`. */
export function applyStrings(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':');
      if (attr && key) el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
  if (document.body.dataset.titleKey) document.title = t(document.body.dataset.titleKey);
}

/** Builds the language switch in `select` (each language named in its own language). */
export async function initLang(select, onChange) {
  const code = initialLang();
  select.replaceChildren(
    ...UI_LANGS.map((l) => {
      const o = document.createElement('option');
      o.value = l.code;
      o.lang = l.code;
      o.textContent = l.name;
      return o;
    }),
  );
  select.value = code;
  await setLang(code);
  select.addEventListener('change', async () => {
    await setLang(select.value);
    onChange && onChange(select.value);
  });
}

// ---- small helpers ------------------------------------------------------------------------------

/** Creates an element: el('button', {class: 'x', onclick}, 'text', child). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/**
 * Re-renders part of a live page without taking the user's place away: elements marked with
 * data-keep="name" keep their value (selects, inputs) and the focus across `render()`.
 */
export function keepPlace(container, render) {
  const values = new Map();
  for (const e of container.querySelectorAll('[data-keep]')) if ('value' in e && e.tagName !== 'BUTTON') values.set(e.dataset.keep, e.value);
  const active = document.activeElement;
  const focused = active && container.contains(active) && active.dataset ? active.dataset.keep : null;
  render();
  for (const e of container.querySelectorAll('[data-keep]')) {
    if (values.has(e.dataset.keep) && [...(e.options || [])].some((o) => o.value === values.get(e.dataset.keep))) e.value = values.get(e.dataset.keep);
  }
  if (focused) {
    const again = [...container.querySelectorAll('[data-keep]')].find((e) => e.dataset.keep === focused);
    if (again && !again.disabled) again.focus({ preventScroll: true });
  }
}

/** Seconds as "m:ss" or "h:mm:ss". */
export function clock(secs) {
  secs = Math.max(0, Math.floor(secs));
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = secs % 60;
  const mm = h ? String(m).padStart(2, '0') : String(m);
  return (h ? h + ':' : '') + mm + ':' + String(s).padStart(2, '0');
}

/** Seconds as whole minutes for lists ("12 min"). */
export function minutes(secs) {
  return t('minutes_short', { n: Math.max(0, Math.floor(secs / 60)) });
}

/** A time of day in the UI language, in the site's time zone when known. */
export function timeOfDay(iso, timeZone) {
  if (!iso) return '';
  try {
    return new Date(iso).toLocaleTimeString(lang === 'en' ? 'en-GB' : lang, { hour: '2-digit', minute: '2-digit', timeZone });
  } catch (e) {
    return new Date(iso).toLocaleTimeString();
  }
}

/** Announces a message to screen readers through the page's polite (or assertive) live region. */
export function announce(text, assertive = false) {
  const region = document.getElementById(assertive ? 'announce-assertive' : 'announce-polite');
  if (!region) return;
  region.textContent = '';
  // A fresh text node after a tick, so the same message twice is read twice.
  setTimeout(() => (region.textContent = text), 30);
}

/** Shows a short status line in the page's message area (errors stay until the next action). */
export function showMessage(text, kind = 'info') {
  const box = document.getElementById('message');
  if (!box) return;
  box.hidden = !text;
  box.className = 'message ' + kind;
  box.textContent = text || '';
  if (text) announce(text, kind === 'error');
}

/** A readable sentence for an API error. */
export function errorText(e) {
  if (!(e instanceof ApiError)) return t('error_unknown');
  if (e.code === 'network') return t('error_network');
  const key = 'error_' + e.code;
  const known = t(key);
  if (known !== key) return known;
  return e.message || t('error_unknown');
}

/** The alert an `alert` event raises (`alert` is its id), as the site snapshot lists alerts; null for other events. */
export function alertOf(ev) {
  if (ev.kind !== 'alert') return null;
  return { id: ev.alert, kind: ev.alert_kind, device: ev.device, service: ev.service, message: ev.message, at: ev.at };
}

/** A `printer_status` event applied to the site snapshot's entry for that printer (which has its `location`). */
export function printerOf(prev, ev) {
  return { device: ev.device, location: prev ? prev.location : null, status: ev.status, detail: ev.detail, at: ev.at };
}

export { api, ApiError, pick, fill };

// ---- session ------------------------------------------------------------------------------------

/**
 * Signing in. `session.user` is the signed-in user or null. Any API call that answers 401 shows the
 * login form again (the page behind it stays as it was) and resumes with `onSignedIn` afterwards.
 */
export const session = {
  user: null,
  onSignedIn: null, // async (user, { relogin }) => ...
  onSignedOut: null, // () => ...  (stop live updates etc.)
  lockedReason: null,
};

/** GET /auth/me: the user, or null when not signed in. */
export async function whoAmI() {
  try {
    const r = await api('/api/v1/auth/me');
    return (r && r.user) || null;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

/**
 * Calls the API as the signed-in user. On 401 the login form comes back and the promise rejects with the
 * ApiError (callers may keep what they were doing and try again after signing in).
 */
export async function staffApi(path, opts) {
  try {
    return await api(path, opts);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) sessionExpired('session_expired');
    throw e;
  }
}

let loginWired = false;

/** GET /auth/providers, once: the single sign-on issuers and whether passwords are accepted. */
let signInChoices = null;

async function loadSignInChoices() {
  if (!signInChoices) {
    try {
      signInChoices = await api('/api/v1/auth/providers');
    } catch (e) {
      return null;
    }
  }
  return signInChoices;
}

/**
 * A button per single sign-on issuer above the password form (each named in the page's language, each
 * returning to this page), and the password form hidden when sign-in with a password is switched off.
 */
function renderSignInChoices() {
  const form = document.getElementById('login-form');
  if (!form || !signInChoices) return;
  let box = document.getElementById('login-sso');
  const list = signInChoices.providers || [];
  if (!box) {
    box = el('div', { id: 'login-sso', class: 'login-sso' });
    form.before(box);
  }
  box.hidden = list.length === 0;
  const back = location.pathname + location.search;
  box.replaceChildren(
    el('h2', { id: 'login-sso-heading' }, t('login_sso_heading')),
    el(
      'ul',
      { class: 'sso-list', 'aria-labelledby': 'login-sso-heading' },
      ...list.map((p) =>
        el('li', {}, el('a', {
          class: 'button sso-button',
          href: `/api/v1/auth/oidc/${encodeURIComponent(p.id)}/login?return=${encodeURIComponent(back)}`,
          dataset: { provider: p.id },
        }, pick(p.name, lang))),
      ),
    ),
    ...(signInChoices.local_sign_in ? [el('p', { class: 'login-or' }, t('login_or_password'))] : []),
  );
  form.hidden = !signInChoices.local_sign_in;
}

/** Shows the login form. `reason` is a message key ('session_expired', 'locked', or null). */
export function showLogin(reason) {
  session.lockedReason = reason || null;
  session.user = null;
  if (session.onSignedOut) session.onSignedOut(reason);
  const form = document.getElementById('login-form');
  const note = document.getElementById('login-note');
  note.hidden = !reason;
  note.textContent = reason ? t('login_note_' + reason) : '';
  document.getElementById('login-error').hidden = true;
  showScreen('login');
  document.getElementById('signed-in').hidden = true;
  wireLogin(form);
  const pw = form.querySelector('#login-password');
  pw.value = '';
  const user = form.querySelector('#login-username');
  (user.value ? pw : user).focus();
  loadSignInChoices().then((c) => {
    if (!c) return;
    renderSignInChoices();
    if (!c.local_sign_in) document.querySelector('#login-sso a')?.focus();
  });
}

function sessionExpired(reason) {
  if (session.user === null && !document.querySelector('[data-screen="login"]').hidden) return;
  showLogin(reason);
}

function wireLogin(form) {
  if (loginWired) return;
  loginWired = true;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = document.getElementById('login-error');
    err.hidden = true;
    const username = form.querySelector('#login-username').value.trim();
    const password = form.querySelector('#login-password').value;
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const r = await api('/api/v1/auth/login', { method: 'POST', body: { username, password } });
      form.querySelector('#login-password').value = '';
      const relogin = session.lockedReason;
      session.lockedReason = null;
      setUser(r.user);
      if (session.onSignedIn) await session.onSignedIn(r.user, { relogin });
    } catch (e) {
      err.hidden = false;
      err.textContent = e instanceof ApiError && e.status === 401 ? t('login_wrong') : errorText(e);
      form.querySelector('#login-password').focus();
    } finally {
      button.disabled = false;
    }
  });
}

/** Shows the page's screen `name` (the elements with `data-screen`), hiding the others. */
export function showScreen(name) {
  for (const s of document.querySelectorAll('[data-screen]')) s.hidden = s.dataset.screen !== name;
}

/**
 * At page start: asks the daemon who is signed in and goes on with `afterSignIn(user)`, or shows the login
 * form (with a message when the daemon could not be asked).
 */
export async function resumeSession(afterSignIn) {
  let user = null;
  try {
    user = await whoAmI();
  } catch (e) {
    showMessage(errorText(e), 'error');
  }
  if (!user) {
    showLogin(null);
    return;
  }
  setUser(user);
  await afterSignIn(user);
}

/** Records the signed-in user and shows their name in the header. */
export function setUser(user) {
  session.user = user;
  const box = document.getElementById('signed-in');
  box.hidden = !user;
  document.getElementById('user-name').textContent = user ? user.display_name || user.username : '';
  // "Sign out everywhere", beside "Sign out" on every staff page: ends this user's sessions on every
  // browser (a forgotten session on another PC, a lost phone).
  const one = document.getElementById('sign-out');
  if (one && !document.getElementById('sign-out-all')) {
    const all = el('button', { type: 'button', id: 'sign-out-all', class: 'subtle', 'data-i18n': 'sign_out_all' }, t('sign_out_all'));
    all.addEventListener('click', signOutEverywhere);
    one.after(all);
  }
}

/** Ends every session of the signed-in user, then shows the login form saying so. */
export async function signOutEverywhere() {
  try {
    await api('/api/v1/auth/logout-everywhere', { method: 'POST', body: {} });
  } catch (e) {
    // Signed out already, or the daemon is away: the form comes back either way.
  }
  showLogin('everywhere');
}

/**
 * Signs out on the daemon, then shows the login form. A user who chose to sign out of a single sign-on
 * session goes on to the issuer's logout, which ends the issuer's session too and comes back to the desk.
 */
export async function signOut(reason = null) {
  let r = null;
  try {
    r = await api('/api/v1/auth/logout', { method: 'POST', body: {} });
  } catch (e) {
    // Signed out already, or the daemon is away: the form comes back either way.
  }
  if (reason === null && r && typeof r.end_session_url === 'string') {
    session.user = null;
    location.assign(r.end_session_url);
    return;
  }
  showLogin(reason);
}

/** Whether the user may use the supervisor view. */
export function isSupervisor(user) {
  return !!user && (user.roles || []).some((r) => r === 'supervisor' || r === 'admin');
}

/** Whether the user's units include `unit` (admin with no units: every unit). */
export function hasUnit(user, unit) {
  if (!user) return false;
  const units = user.units || [];
  if (units.length === 0 && (user.roles || []).includes('admin')) return true;
  return units.includes(unit);
}

// ---- idle lock ----------------------------------------------------------------------------------

/**
 * Locks a shared screen after `idleSecs` without a key press, a click or a touch, warning `warnSecs`
 * before. Locking signs out on the daemon and shows the login form; signing in again returns to the same
 * counter. The times come from the page address (?idle=600&warn=60), else 10 minutes and 60 seconds.
 */
export function idleLock({ idleSecs, warnSecs, isActive }) {
  const dialog = document.getElementById('idle-dialog');
  const count = document.getElementById('idle-count');
  let last = Date.now();
  let warning = false;
  const reset = () => {
    last = Date.now();
    if (warning) {
      warning = false;
      if (dialog.open) dialog.close();
    }
  };
  for (const ev of ['keydown', 'pointerdown', 'wheel', 'touchstart']) document.addEventListener(ev, reset, { capture: true, passive: true });
  document.getElementById('idle-stay').addEventListener('click', reset);
  dialog.addEventListener('cancel', reset);
  setInterval(() => {
    if (!isActive()) {
      last = Date.now();
      return;
    }
    const idle = (Date.now() - last) / 1000;
    const left = Math.ceil(idleSecs - idle);
    if (left <= 0) {
      warning = false;
      if (dialog.open) dialog.close();
      signOut('locked');
    } else if (left <= warnSecs) {
      count.textContent = t('idle_left', { n: left });
      if (!warning) {
        warning = true;
        for (const d of document.querySelectorAll('dialog[open]')) if (d !== dialog) d.close();
        dialog.showModal();
        announce(t('idle_warning_sr', { n: left }), true);
      }
    }
  }, 1000);
}

/** Reads a positive number from the page's query string. */
export function queryNumber(name, dflt) {
  const v = Number(new URLSearchParams(location.search).get(name));
  return Number.isFinite(v) && v > 0 ? v : dflt;
}

/** Site data shared by both views: the site, its services (names in the UI language) and counters. */
export async function loadSite(siteId) {
  const { sites } = await staffApi('/api/v1/sites');
  const site = sites.find((s) => s.id === siteId) || sites[0];
  if (!site) throw new ApiError(404, 'not_found', 'no site');
  return site;
}

export async function loadServices(siteId) {
  const { services } = await staffApi(`/api/v1/sites/${encodeURIComponent(siteId)}/services?lang=${lang}`);
  return services;
}
