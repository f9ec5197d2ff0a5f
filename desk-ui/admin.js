// The admin console: the services of each site (names in every site language, opening hours, the last
// ticket's time), changed through the whole config (`GET/PUT /api/v1/admin/config` as JSON, with its
// version as If-Match) and in force at once; the devices of the deployment (kiosks, hall displays, print
// agents) with their tokens' origin and last use, a one-time enrolment code (text and QR code) for a new
// or replaced device, and revocation of a lost one, which the daemon applies at once; the config's
// versions, each restorable.
// Signing in, the language switch and the idle lock are shared with the other staff pages (common.js);
// the daemon decides who may do what (admins).
import { qrSvg } from '/shared/qr.js';
import {
  t, lang, initLang, el, announce, showMessage, errorText, pick, session, staffApi, resumeSession, showScreen,
  signOut, isSupervisor, idleLock, queryNumber, ApiError,
} from '/desk/common.js';

const $ = (id) => document.getElementById(id);

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

const state = {
  svc: null, // the site's services this user may change: {version, etag, languages, units, services}
  siteIds: [],
  siteId: null,
  editing: null, // the id of the service in the form
  wholeLoaded: false, // the whole config's text is in the editor
  wholeEtag: null, // the version the editor's text was read at
  versions: [],
  devices: [],
  sites: new Map(), // id -> name object
  code: null, // { device, code, expires_at }: the code on screen
  codeTimer: null,
};

const isAdmin = (user) => !!user && (user.roles || []).includes('admin');

function when(iso) {
  if (!iso) return '';
  return new Intl.DateTimeFormat(lang, { dateStyle: 'short', timeStyle: 'short' }).format(new Date(iso));
}

async function boot() {
  await initLang($('lang'), render);
  session.onSignedIn = afterSignIn;
  session.onSignedOut = () => hideCode();
  idleLock({ idleSecs: queryNumber('idle', 900), warnSecs: queryNumber('warn', 60), isActive: () => !!session.user });
  $('sign-out').addEventListener('click', () => signOut(null));
  $('svc-site').addEventListener('change', async () => {
    state.siteId = $('svc-site').value;
    closeForm();
    await load();
  });
  $('svc-form').addEventListener('submit', saveService);
  $('whole-form').addEventListener('submit', saveWhole);
  $('whole-reload').addEventListener('click', loadWhole);
  $('svc-cancel').addEventListener('click', () => closeForm(true));
  for (const r of document.querySelectorAll('input[name="svc-hours-kind"]')) r.addEventListener('change', syncHoursKind);
  $('code-close').addEventListener('click', () => {
    const device = state.code && state.code.device;
    hideCode();
    const back = device && document.querySelector(`[data-device="${CSS.escape(device)}"] .enrol`);
    if (back) back.focus();
  });
  setInterval(() => session.user && isSupervisor(session.user) && load(), 30000);
  await resumeSession(afterSignIn);
}

async function afterSignIn(user) {
  showMessage('');
  if (!isSupervisor(user)) {
    showScreen('denied');
    return;
  }
  // A supervisor changes the services of their own units; devices, versions and the whole config are
  // the admins'.
  for (const id of ['devices', 'versions', 'whole']) {
    $(id).hidden = !isAdmin(user);
    document.querySelector(`.ad-nav a[href="#${id}"]`).hidden = !isAdmin(user);
  }
  try {
    const sites = await staffApi('/api/v1/sites');
    state.sites = new Map((sites.sites || []).map((s) => [s.id, s.name]));
    state.siteIds = (sites.sites || []).map((s) => s.id);
    if (!state.siteIds.includes(state.siteId)) state.siteId = state.siteIds[0];
    await load();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showMessage(errorText(e), 'error');
    return;
  }
  showScreen('admin');
}

async function load() {
  try {
    const services = await loadServices();
    if (!state.editing) state.svc = services;
    if (isAdmin(session.user)) {
      const [devices, versions] = await Promise.all([staffApi('/api/v1/admin/devices'), staffApi('/api/v1/admin/config/versions')]);
      state.devices = devices.devices || [];
      state.versions = versions.versions || [];
      if (!state.wholeLoaded) await loadWhole();
    }
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showMessage(errorText(e), 'error');
  }
  render();
}

/** The site's services this user may change, with the config's version as `etag`. */
async function loadServices() {
  const res = await fetch(`/api/v1/admin/sites/${encodeURIComponent(state.siteId)}/services`, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, (body.error && body.error.code) || 'error', (body.error && body.error.message) || res.statusText);
  return { ...body, etag: res.headers.get('ETag') };
}

const languageName = (code) => {
  const l = ((state.svc && state.svc.languages) || []).find((x) => x.code === code);
  return (l && l.name) || code;
};

function hoursText(h) {
  if (!h) return t('ad_hours_site');
  const days = DAYS.filter((d) => (h[d] || []).length).map((d) => `${t('ad_day_' + d)} ${h[d].join(', ')}`);
  return days.length ? days.join('; ') : t('ad_closed');
}

function renderServices() {
  const v = state.svc;
  $('site-field').hidden = state.siteIds.length < 2;
  $('svc-site').replaceChildren(...state.siteIds.map((id) => el('option', { value: id }, pick(state.sites.get(id), lang) || id)));
  if (state.siteId) $('svc-site').value = state.siteId;
  if (!v) return;
  const units = new Map((v.units || []).map((u) => [u.id, u.name]));
  $('admin-services-body').replaceChildren(
    ...(v.services || []).map((svc) => {
      const name = pick(svc.name, lang) || svc.id;
      const edit = el('button', { type: 'button', class: 'small edit', 'aria-label': t('ad_edit_for', { service: name }) }, t('ad_edit'));
      edit.addEventListener('click', () => openForm(svc.id));
      return el('tr', { 'data-service': svc.id },
        el('th', { scope: 'row' }, name),
        el('td', {}, pick(units.get(svc.unit), lang) || svc.unit),
        el('td', {}, hoursText(svc.hours)),
        el('td', { class: 'actions' }, edit));
    }),
  );
}

function openForm(id) {
  const svc = state.svc && (state.svc.services || []).find((x) => x.id === id);
  if (!svc) return;
  state.editing = id;
  $('svc-form-heading').textContent = t('ad_edit_heading', { service: pick(svc.name, lang) || svc.id });
  $('svc-names').replaceChildren(
    ...(state.svc.languages || []).map(({ code }) => {
      const input = el('input', { id: `svc-name-${code}`, 'data-lang': code, lang: code, dir: 'auto', value: (svc.name && svc.name[code]) || '' });
      return el('div', { class: 'field' }, el('label', { for: `svc-name-${code}` }, languageName(code)), input);
    }),
  );
  $('svc-days').replaceChildren(
    ...DAYS.map((d) => {
      const input = el('input', { id: `svc-day-${d}`, 'data-day': d, inputmode: 'numeric', autocomplete: 'off', 'aria-describedby': 'svc-hours-hint', value: ((svc.hours && svc.hours[d]) || []).join(', ') });
      return el('div', { class: 'field' }, el('label', { for: `svc-day-${d}` }, t('ad_day_name_' + d)), input);
    }),
  );
  $(svc.hours ? 'svc-hours-own' : 'svc-hours-site').checked = true;
  syncHoursKind();
  $('svc-last').value = svc.last_ticket_minutes_before_close || 0;
  $('svc-error').hidden = true;
  $('svc-form').hidden = false;
  $('svc-form').focus();
}

function syncHoursKind() {
  const own = $('svc-hours-own').checked;
  for (const i of $('svc-days').querySelectorAll('input')) i.disabled = !own;
}

function closeForm(refocus) {
  const id = state.editing;
  state.editing = null;
  $('svc-form').hidden = true;
  if (refocus && id) document.querySelector(`#admin-services-body tr[data-service="${CSS.escape(id)}"] .edit`)?.focus();
}

async function saveService(ev) {
  ev.preventDefault();
  const id = state.editing;
  if (!id) return;
  const name = {};
  for (const i of $('svc-names').querySelectorAll('input')) if (i.value.trim()) name[i.dataset.lang] = i.value.trim();
  let hours = null;
  if ($('svc-hours-own').checked) {
    hours = {};
    for (const i of $('svc-days').querySelectorAll('input')) {
      const spans = i.value.split(',').map((x) => x.trim()).filter(Boolean);
      if (spans.length) hours[i.dataset.day] = spans;
    }
  }
  const last = Number($('svc-last').value || 0);
  const err = $('svc-error');
  err.hidden = true;
  if (!Number.isInteger(last) || last < 0) {
    err.textContent = `${t('ad_refused')}\n${t('ad_last_ticket')}`;
    err.hidden = false;
    return;
  }
  try {
    const res = await fetch(`/api/v1/admin/sites/${encodeURIComponent(state.siteId)}/services/${encodeURIComponent(id)}`, {
      method: 'PUT',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'If-Match': state.svc.etag },
      body: JSON.stringify({ name, hours, last_ticket_minutes_before_close: last }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      const message = (body.error && body.error.message) || res.statusText;
      err.textContent = res.status === 409 && /version/.test(message) ? t('ad_changed_meanwhile') : res.status === 422 ? `${t('ad_refused')}\n${message}` : message;
      err.hidden = false;
      if (res.status === 401) showMessage(t('login_note_session_expired'), 'error');
      return;
    }
    const label = pick(name, lang) || id;
    state.editing = null;
    state.wholeLoaded = false;
    $('svc-form').hidden = true;
    await load();
    const saved = t('ad_saved', { service: label, version: body.version });
    showMessage(saved, 'info');
    announce(saved);
    document.querySelector(`#admin-services-body tr[data-service="${CSS.escape(id)}"] .edit`)?.focus();
  } catch (e) {
    err.textContent = errorText(e);
    err.hidden = false;
  }
}

/** The whole config as TOML into the editor, with the version it was read at. */
async function loadWhole() {
  const res = await fetch('/api/v1/admin/config', { headers: { Accept: 'application/toml' }, credentials: 'same-origin' });
  if (!res.ok) return;
  state.wholeEtag = res.headers.get('ETag');
  $('whole-text').value = await res.text();
  $('whole-error').hidden = true;
  state.wholeLoaded = true;
}

async function saveWhole(ev) {
  ev.preventDefault();
  const err = $('whole-error');
  err.hidden = true;
  try {
    const res = await fetch('/api/v1/admin/config', {
      method: 'PUT',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/toml', Accept: 'application/json', 'If-Match': state.wholeEtag },
      body: $('whole-text').value,
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      const message = (body.error && body.error.message) || res.statusText;
      err.textContent = res.status === 409 && /version/.test(message) ? t('ad_changed_meanwhile') : res.status === 422 ? `${t('ad_refused')}\n${message}` : message;
      err.hidden = false;
      err.focus?.();
      return;
    }
    state.wholeEtag = res.headers.get('ETag');
    const restart = (body.restart_needed || []).length ? ' ' + t('ad_restart_needed', { sections: body.restart_needed.join(', ') }) : '';
    const said = (body.changed ? t('ad_whole_saved', { version: body.version }) : t('ad_whole_same')) + restart;
    showMessage(said, 'info');
    announce(said);
    await load();
  } catch (e) {
    err.textContent = errorText(e);
    err.hidden = false;
  }
}

function renderVersions() {
  const sourceText = (src) => t('ad_source_' + src);
  $('admin-versions-body').replaceChildren(
    ...state.versions.map((v) => {
      const cells = [
        el('th', { scope: 'row' }, String(v.version), v.current ? el('span', { class: 'badge' }, ' ' + t('ad_current')) : null),
        el('td', {}, when(v.created_at)),
        el('td', {}, v.created_by),
        el('td', {}, sourceText(v.source)),
      ];
      const restore = el('button', { type: 'button', class: 'small restore', 'aria-label': t('ad_restore_for', { version: v.version }) }, t('ad_restore'));
      restore.disabled = v.current;
      restore.addEventListener('click', () => restoreVersion(v));
      return el('tr', { 'data-version': String(v.version) }, ...cells, el('td', { class: 'actions' }, restore));
    }),
  );
}

function restoreVersion(v) {
  const dialog = $('restore-dialog');
  $('restore-text').textContent = t('ad_restore_text', { version: v.version, when: when(v.created_at), who: v.created_by });
  dialog.returnValue = '';
  dialog.onclose = async () => {
    if (dialog.returnValue !== 'ok') return;
    try {
      const res = await fetch(`/api/v1/admin/config/versions/${v.version}/restore`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'If-Match': state.svc.etag },
        body: '{}',
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new ApiError(res.status, (body.error && body.error.code) || 'error', (body.error && body.error.message) || res.statusText);
      state.wholeLoaded = false;
      const said = t('ad_restored', { version: v.version, now: body.version });
      showMessage(said, 'info');
      announce(said);
    } catch (e) {
      showMessage(errorText(e), 'error');
    }
    await load();
  };
  dialog.showModal();
}

function statusOf(d) {
  if (d.active) return t('ad_state_active');
  if (d.tokens.some((x) => x.revoked_at)) return t('ad_state_revoked');
  return t('ad_state_new');
}

function lastSeen(d) {
  const seen = d.tokens.filter((x) => x.last_seen_at && !x.revoked_at).sort((a, b) => (a.last_seen_at < b.last_seen_at ? 1 : -1))[0];
  if (!seen) return t('ad_never');
  return t('ad_seen_from', { when: when(seen.last_seen_at), from: seen.last_seen_from || '' });
}

function render() {
  if (!session.user || !isSupervisor(session.user)) return;
  renderServices();
  if (!isAdmin(session.user)) return;
  renderVersions();
  const body = $('admin-devices-body');
  body.replaceChildren(
    ...state.devices.map((d) => {
      const name = pick(d.location, lang);
      const label = name ? `${d.id} (${name})` : d.id;
      const enrol = el('button', { type: 'button', class: 'small enrol', 'aria-label': t('ad_enrol_for', { device: label }) }, t('ad_enrol'));
      enrol.addEventListener('click', () => makeCode(d, label));
      const revoke = el('button', { type: 'button', class: 'small danger revoke', 'aria-label': t('ad_revoke_for', { device: label }) }, t('ad_revoke'));
      revoke.disabled = !d.active;
      revoke.addEventListener('click', () => revokeDevice(d, label));
      return el('tr', { 'data-device': d.id, 'data-active': String(d.active) },
        el('th', { scope: 'row' }, label),
        el('td', {}, t('ad_kind_' + d.kind)),
        el('td', {}, pick(state.sites.get(d.site), lang) || d.site),
        el('td', {}, statusOf(d)),
        el('td', {}, lastSeen(d)),
        el('td', { class: 'actions' }, enrol, ' ', revoke));
    }),
  );
  if (state.code) renderCode();
}

async function makeCode(d, label) {
  try {
    const r = await staffApi(`/api/v1/admin/devices/${encodeURIComponent(d.id)}/enrolment`, { method: 'POST', body: {} });
    state.code = { ...r, label, kind: d.kind };
  } catch (e) {
    showMessage(errorText(e), 'error');
    return;
  }
  renderCode();
  const panel = $('code-panel');
  panel.hidden = false;
  panel.focus();
  announce(t('ad_code_ready', { device: label }));
  clearInterval(state.codeTimer);
  state.codeTimer = setInterval(renderCode, 1000);
}

function renderCode() {
  const c = state.code;
  if (!c) return;
  $('code-heading').textContent = t('ad_code_heading', { device: c.label });
  $('code-how').textContent = t(c.kind === 'agent' ? 'ad_code_how_agent' : 'ad_code_how', { device: c.device });
  $('code-text').textContent = c.code;
  $('code-text').setAttribute('aria-label', c.code.split('').join(' '));
  if (!$('code-qr').dataset.code || $('code-qr').dataset.code !== c.code) {
    const svg = qrSvg(c.code);
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', t('ad_code_qr'));
    $('code-qr').replaceChildren(svg);
    $('code-qr').dataset.code = c.code;
  }
  const left = Math.max(0, Math.round((new Date(c.expires_at) - Date.now()) / 1000));
  $('code-expires').textContent = left > 0 ? t('ad_code_expires', { time: when(c.expires_at), minutes: Math.ceil(left / 60) }) : t('ad_code_expired');
  if (left === 0) clearInterval(state.codeTimer);
}

function hideCode() {
  state.code = null;
  clearInterval(state.codeTimer);
  $('code-panel').hidden = true;
  $('code-qr').replaceChildren();
  delete $('code-qr').dataset.code;
}

function revokeDevice(d, label) {
  const dialog = $('revoke-dialog');
  $('revoke-text').textContent = t('ad_revoke_text', { device: label });
  dialog.returnValue = '';
  dialog.onclose = async () => {
    if (dialog.returnValue !== 'ok') return;
    try {
      await staffApi(`/api/v1/admin/devices/${encodeURIComponent(d.id)}`, { method: 'DELETE' });
      if (state.code && state.code.device === d.id) hideCode();
      announce(t('ad_revoked', { device: label }), true);
      showMessage(t('ad_revoked', { device: label }), 'info');
    } catch (e) {
      showMessage(errorText(e), 'error');
    }
    await load();
    const row = document.querySelector(`[data-device="${CSS.escape(d.id)}"] .enrol`);
    if (row) row.focus();
  };
  dialog.showModal();
}

boot();
