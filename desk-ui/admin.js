// The admin console: the devices of the deployment (kiosks, hall displays, print agents) with their tokens'
// origin and last use; a one-time enrolment code (text and QR code) for a new or replaced device, and
// revocation of a lost one, which the daemon applies at once (its socket closes, its tokens are refused).
// Signing in, the language switch and the idle lock are shared with the other staff pages (common.js);
// the daemon decides who may do what (admins).
import { qrSvg } from '/shared/qr.js';
import {
  t, lang, initLang, el, announce, showMessage, errorText, pick, session, staffApi, resumeSession, showScreen,
  signOut, idleLock, queryNumber, ApiError,
} from '/desk/common.js';

const $ = (id) => document.getElementById(id);

const state = {
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
  $('code-close').addEventListener('click', () => {
    const device = state.code && state.code.device;
    hideCode();
    const back = device && document.querySelector(`[data-device="${CSS.escape(device)}"] .enrol`);
    if (back) back.focus();
  });
  setInterval(() => session.user && isAdmin(session.user) && load(), 30000);
  await resumeSession(afterSignIn);
}

async function afterSignIn(user) {
  showMessage('');
  if (!isAdmin(user)) {
    showScreen('denied');
    return;
  }
  try {
    const sites = await staffApi('/api/v1/sites');
    state.sites = new Map((sites.sites || []).map((s) => [s.id, s.name]));
    await load();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showMessage(errorText(e), 'error');
    return;
  }
  showScreen('admin');
}

async function load() {
  try {
    const r = await staffApi('/api/v1/admin/devices');
    state.devices = r.devices || [];
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showMessage(errorText(e), 'error');
  }
  render();
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
  if (!session.user || !isAdmin(session.user)) return;
  const body = $('admin-devices-body');
  body.replaceChildren(
    ...state.devices.map((d) => {
      const name = pick(d.location, lang);
      const label = name ? `${d.id} (${name})` : d.id;
      const enrol = el('button', { type: 'button', class: 'small enrol', text: t('ad_enrol'), 'aria-label': t('ad_enrol_for', { device: label }) });
      enrol.addEventListener('click', () => makeCode(d, label));
      const revoke = el('button', { type: 'button', class: 'small danger revoke', text: t('ad_revoke'), 'aria-label': t('ad_revoke_for', { device: label }) });
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
