// Vuoro phone page: follow one ticket live. Reached from the kiosk's QR code with the ticket token in the
// URL fragment (#t=...), which the browser never sends to the server. No login, no cookies, no other origin.
import { api, Live, loadStrings, fill, pick, dirOf, numberHtml } from '/shared/vuoro.js';
import { phoneNumber, inFinland as finnishZone } from '/shared/phone.js';

// Notices by SMS, e-mail or this browser's push (GET/PUT/DELETE /api/v1/tickets/{token}/contact). Nothing of
// them is kept in the browser's storage but, after "Notify this browser", the ticket page's address in the
// service worker's cache (so that a tap on a notice opens this ticket); it is deleted when notices stop.
const SW = '/kiosk/track-sw.js';
const SW_SCOPE = '/kiosk/track.html';
const SW_CACHE = 'vuoro-track';
const SW_TICKET = '/kiosk/track-sw-ticket';

const I18N = '/kiosk/i18n';
const FALLBACK_LANGS = [
  { code: 'fi', name: 'Suomi' },
  { code: 'sv', name: 'Svenska' },
  { code: 'en', name: 'English' },
];
/**
 * "Your turn is near, come now": only with an estimate of at most this many minutes. A short line with a
 * long estimate (a counter that first serves another queue, or no counter open) is not near.
 */
export const NEAR = { minutes: 10 };

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.hash.slice(1)).get('t');
const LANG_KEY = token ? `vuoro.track.${token.slice(0, 8)}.lang` : null;

const S = {
  ticket: null,
  lang: null,
  strings: {},
  languages: FALLBACK_LANGS,
  siteName: null,
  alerted: null, // the last thing we alerted about: 'near' or 'called:<counter>'
  live: null,
  liveStatus: 'connecting',
  error: null, // message key
  confirming: false,
  siteId: null,
  serviceNames: {}, // lang -> {service id: name}
  siteZone: null, // the site's time zone: Finland's means a number may be typed as at home (040 ...)
  notices: { offered: [], contacts: [], pushKey: null }, // GET .../contact
  noticeError: {}, // 'sms' | 'email' | 'push' | 'stop' -> message key
  noticeBusy: false,
  contactsShown: null, // what the contact list was last built from
};

function t(key, vars) {
  const s = (S.strings[S.lang] && S.strings[S.lang][key]) ?? (S.strings.en && S.strings.en[key]) ?? key;
  return vars ? fill(s, vars) : s;
}

async function ensureStrings(lang) {
  if (S.strings[lang]) return;
  try {
    S.strings[lang] = await loadStrings(I18N, lang);
  } catch (e) {
    S.strings[lang] = {};
  }
}

/** A ticket's `counter` ({id, name, location}, already in the ticket's language), or '' when it has none. */
function counterText(c) {
  if (!c) return '';
  const name = c.name || c.id;
  return c.location ? `${name} (${c.location})` : name;
}

function isNear(tk) {
  return tk.state === 'waiting' && typeof tk.eta_minutes === 'number' && tk.eta_minutes <= NEAR.minutes;
}

function etaText(tk) {
  if (tk.eta_reason === 'no_counter_open') return t('ticket.eta_no_counter');
  if (tk.eta_minutes === null || tk.eta_minutes === undefined) return t('ticket.eta_unknown');
  return tk.eta_minutes < 1 ? t('ticket.eta_now') : t('ticket.eta_value', { m: tk.eta_minutes });
}

function notify(text) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  try {
    // Shown while the page is open in the background; the tag replaces an older notice of the same ticket.
    new Notification(text, { tag: `vuoro-${S.ticket.number}`, renotify: true, requireInteraction: true, lang: S.lang });
  } catch (e) {
    /* some phones only allow notifications from a service worker: the page itself still shows and vibrates */
  }
}

function vibrate(pattern) {
  try {
    if (navigator.vibrate) navigator.vibrate(pattern);
  } catch (e) {
    /* not supported */
  }
}

/** Alerts once per change: near, then called (again if called to another counter). */
function maybeAlert(tk) {
  let what = null;
  if (tk.state === 'called') what = `called:${tk.counter ? tk.counter.id : ''}`;
  else if (isNear(tk)) what = 'near';
  if (!what || what === S.alerted) return;
  if (what === 'near' && S.alerted && S.alerted.startsWith('called')) return;
  S.alerted = what;
  if (what === 'near') {
    vibrate([200, 100, 200]);
    notify(t('track.notice_near', { number: tk.number }));
  } else {
    vibrate([400, 200, 400, 200, 400]);
    notify(t('track.notice_called', { number: tk.number, counter: counterText(tk.counter) }));
  }
}

const inFinland = () => finnishZone(S.siteZone);
const contactPath = () => `/api/v1/tickets/${encodeURIComponent(token)}/contact`;

function pushSupported() {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window && 'caches' in window;
}

function setNotices(r) {
  S.notices = { offered: (r && r.offered) || [], contacts: (r && r.contacts) || [], pushKey: (r && r.push_key) || null };
}

async function loadNotices() {
  try {
    setNotices(await api(contactPath()));
  } catch (e) {
    /* the page works without notices */
  }
}

/** The API's refusal in the customer's words. */
function noticeErrorKey(channel, e) {
  if (e && e.status === 422) return channel === 'sms' ? 'notices.bad_sms' : channel === 'email' ? 'notices.bad_email' : 'notices.not_offered';
  if (e && e.status === 409) return e.code === 'ticket_not_waiting' ? 'notices.over' : 'notices.opted_out';
  if (e && e.status === 404) return 'track.gone';
  return 'notices.failed';
}

/** Says `text` to screen readers without moving focus. */
function say(text) {
  const el = $('notices-said');
  el.textContent = '';
  setTimeout(() => (el.textContent = text), 50);
}

function showNoticeError(channel, key) {
  S.noticeError = { [channel]: key };
  render();
  const target = channel === 'stop' ? $('notices-on-label') : channel === 'push' ? $('push') : $(channel);
  if (target && !target.hidden) target.focus();
}

function contactItem(c) {
  const what = t(`notices.channel.${c.channel}`);
  const to = document.createElement('bdi');
  to.dir = 'ltr';
  to.textContent = c.to || '';
  const text = document.createElement('span');
  text.className = 'contact-to';
  text.append(`${what}: `, to);
  const name = c.to ? `${what} ${c.to}` : what;
  const stop = document.createElement('button');
  stop.type = 'button';
  stop.className = 'btn';
  stop.textContent = t('notices.stop');
  stop.setAttribute('aria-label', `${t('notices.stop')}: ${name}`);
  stop.dataset.channel = c.channel;
  stop.dataset.stop = 'stop';
  stop.addEventListener('click', () => stopNotices(c.channel, false));
  const li = document.createElement('li');
  li.dataset.channel = c.channel;
  li.append(text, stop);
  if (c.channel !== 'push') {
    const never = document.createElement('button');
    never.type = 'button';
    never.className = 'btn danger';
    never.textContent = t(`notices.never_${c.channel}`);
    never.setAttribute('aria-label', `${t(`notices.never_${c.channel}`)}: ${name}`);
    never.dataset.channel = c.channel;
    never.dataset.stop = 'never';
    never.addEventListener('click', () => stopNotices(c.channel, true));
    li.append(never);
  }
  return li;
}

function renderNotices(tk) {
  const n = S.notices;
  const joinable = !!tk && (tk.state === 'waiting' || tk.state === 'parked');
  const open = joinable || (!!tk && tk.state === 'called');
  const show = n.offered.length > 0 && (joinable || (open && n.contacts.length > 0));
  $('notices').hidden = !show;
  const shownKey = JSON.stringify([S.lang, show ? n.contacts : []]);
  if (S.contactsShown !== shownKey) {
    S.contactsShown = shownKey;
    $('contacts').replaceChildren(...(show ? n.contacts : []).map(contactItem));
  }
  if (!show) return;
  $('notices-title').textContent = t('notices.title');
  $('notices-what').textContent = t('notices.what');
  const has = (ch) => n.contacts.some((c) => c.channel === ch);
  $('notices-on').hidden = n.contacts.length === 0;
  $('notices-on-label').textContent = t('notices.on');
  const err = S.noticeError;
  const fieldErr = (id, key, input) => {
    $(id).hidden = !key;
    $(id).textContent = key ? t(key) : '';
    if (input) input.setAttribute('aria-invalid', key ? 'true' : 'false');
  };
  fieldErr('notices-error', err.stop);

  $('sms-form').hidden = !(joinable && n.offered.includes('sms') && !has('sms'));
  $('sms-label').textContent = t('notices.sms_label');
  $('sms-example').textContent = t(inFinland() ? 'notices.sms_example_fi' : 'notices.sms_example');
  $('sms-send').textContent = t('notices.sms_send');
  fieldErr('sms-error', err.sms, $('sms'));

  $('email-form').hidden = !(joinable && n.offered.includes('email') && !has('email'));
  $('email-label').textContent = t('notices.email_label');
  $('email-example').textContent = t('notices.email_example');
  $('email-send').textContent = t('notices.email_send');
  fieldErr('email-error', err.email, $('email'));

  $('push-box').hidden = !(joinable && n.offered.includes('push') && n.pushKey && pushSupported() && !has('push'));
  $('push-hint').textContent = t('notices.push_hint');
  $('push').textContent = t('notices.push');
  fieldErr('push-error', err.push);
}

async function putContact(channel, body) {
  const r = await api(contactPath(), { method: 'PUT', body });
  setNotices(r);
  S.noticeError = {};
  render();
  const c = S.notices.contacts.find((x) => x.channel === channel);
  say(t('notices.saved', { to: c ? `${t(`notices.channel.${channel}`)} ${c.to || ''}`.trim() : '' }));
  $('notices-on-label').focus();
}

async function submitContact(channel) {
  if (S.noticeBusy) return;
  const input = $(channel);
  const typed = input.value.trim();
  if (!typed) {
    showNoticeError(channel, channel === 'sms' ? 'notices.empty_sms' : 'notices.empty_email');
    return;
  }
  S.noticeBusy = true;
  try {
    await putContact(channel, channel === 'sms' ? { sms: phoneNumber(typed, inFinland()) } : { email: typed });
    input.value = '';
  } catch (e) {
    showNoticeError(channel, noticeErrorKey(channel, e));
  } finally {
    S.noticeBusy = false;
  }
}

/** base64url (the VAPID public key) as bytes. */
function keyBytes(b64url) {
  const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (b64url.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
}

const within = (promise, ms) => Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), ms))]);

/** "Notify this browser": the service worker, a push subscription with the daemon's key, then PUT it. */
async function enablePush() {
  if (S.noticeBusy) return;
  S.noticeBusy = true;
  let sub = null;
  try {
    const perm = await Notification.requestPermission();
    if (perm !== 'granted') {
      showNoticeError('push', 'notices.push_denied');
      return;
    }
    await navigator.serviceWorker.register(SW, { scope: SW_SCOPE });
    const reg = await within(navigator.serviceWorker.ready, 10000);
    sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(S.notices.pushKey) });
    const cache = await caches.open(SW_CACHE);
    await cache.put(SW_TICKET, new Response(location.href));
    await putContact('push', { push: sub.toJSON() });
  } catch (e) {
    if (sub) await forgetPush();
    showNoticeError('push', e && e.status !== undefined ? noticeErrorKey('push', e) : 'notices.push_failed');
  } finally {
    S.noticeBusy = false;
  }
}

/** This browser's subscription and the remembered ticket address, gone. */
async function forgetPush() {
  if (!pushSupported()) return;
  try {
    const reg = await navigator.serviceWorker.getRegistration(SW_SCOPE);
    const sub = reg && (await reg.pushManager.getSubscription());
    if (sub) await sub.unsubscribe();
    await caches.delete(SW_CACHE);
  } catch (e) {
    /* nothing more to do */
  }
}

async function stopNotices(channel, optOut) {
  if (S.noticeBusy) return;
  S.noticeBusy = true;
  try {
    const q = new URLSearchParams({ channel });
    if (optOut) q.set('opt_out', 'true');
    setNotices(await api(`${contactPath()}?${q}`, { method: 'DELETE' }));
    if (channel === 'push') await forgetPush();
    S.noticeError = {};
    render();
    say(t(optOut ? 'notices.stopped_never' : 'notices.stopped'));
    // The section stays while the ticket waits; once called, it goes with the last contact.
    ($('notices').hidden ? $('title') : $('notices-title')).focus();
  } catch (e) {
    showNoticeError('stop', noticeErrorKey(channel, e));
  } finally {
    S.noticeBusy = false;
  }
}

function render() {
  const root = document.documentElement;
  root.lang = S.lang;
  root.dir = dirOf(S.lang);
  $('lang-label').textContent = t('track.language');
  const sel = $('lang');
  const langs = S.languages.some((l) => l.code === S.lang) ? S.languages : [...S.languages, { code: S.lang, name: S.lang }];
  if (sel.options.length !== langs.length) {
    sel.replaceChildren(
      ...langs.map((l) => {
        const o = document.createElement('option');
        o.value = l.code;
        o.textContent = l.name;
        o.lang = l.code;
        return o;
      }),
    );
  }
  sel.value = S.lang;
  $('site').textContent = S.siteName || 'Vuoro';
  $('title').textContent = t('track.title');

  const tk = S.ticket;
  const msg = $('message');
  if (!tk) {
    $('notices').hidden = true;
    $('card').hidden = true;
    $('actions').hidden = true;
    $('alert').hidden = true;
    msg.hidden = !S.error;
    msg.textContent = S.error ? t(S.error) : '';
    document.title = `Vuoro – ${t('track.title')}`;
    renderLive();
    return;
  }
  $('card').hidden = false;
  // The ticket carries its service's name in the ticket's language; the public service list has it in others.
  const names = S.serviceNames[S.lang];
  $('svc').textContent = (names && names[tk.service]) || tk.service_name || '';
  $('number').replaceChildren(numberHtml(tk.number));
  $('state-label').textContent = t('track.state');
  $('state').textContent = t(`track.state.${tk.state}`);
  $('card').dataset.state = tk.state;
  const waiting = tk.state === 'waiting';
  $('f-ahead').hidden = !waiting;
  $('f-eta').hidden = !waiting;
  $('ahead-label').textContent = t('track.ahead');
  $('ahead').textContent = String(tk.position ?? 0);
  $('eta-label').textContent = t('track.eta');
  $('eta').textContent = etaText(tk);

  // The one thing to know now, as an alert.
  const alert = $('alert');
  let alertText = '';
  let alertKind = '';
  if (tk.state === 'called') {
    alertText = t('track.called', { counter: counterText(tk.counter) });
    alertKind = 'called';
  } else if (isNear(tk)) {
    alertText = t('track.near');
    alertKind = 'near';
  }
  alert.hidden = !alertText;
  alert.textContent = alertText;
  alert.dataset.kind = alertKind;

  let stateMsg = '';
  if (tk.state === 'serving') stateMsg = t('track.serving', { counter: counterText(tk.counter) });
  else if (['finished', 'no_show', 'cancelled', 'parked'].includes(tk.state)) stateMsg = t(`track.${tk.state}`);
  if (S.error) stateMsg = t(S.error);
  msg.hidden = !stateMsg;
  msg.textContent = stateMsg;

  renderNotices(tk);
  const open = tk.state === 'waiting' || tk.state === 'parked';
  $('actions').hidden = !(open || tk.state === 'called');
  $('elsewhere').textContent = t('track.elsewhere');
  $('elsewhere').hidden = !open;
  $('cancel').textContent = t('track.cancel');
  $('cancel').hidden = !open || S.confirming;
  $('confirm').hidden = !open || !S.confirming;
  $('confirm-text').textContent = t('track.cancel_confirm', { number: tk.number });
  $('cancel-yes').textContent = t('track.cancel_yes');
  $('cancel-no').textContent = t('track.cancel_no');

  // "Notify this browser" (push, in the notices section) covers what the page's own alert does.
  const pushShown = !$('push-box').hidden && !$('notices').hidden;
  const canNotify = 'Notification' in window && (tk.state === 'waiting' || tk.state === 'parked') && !pushShown;
  const perm = canNotify ? Notification.permission : 'unsupported';
  $('notify').hidden = !canNotify || perm !== 'default';
  $('notify').textContent = t('track.notify');
  $('notify-state').hidden = !canNotify || perm === 'default';
  $('notify-state').textContent = perm === 'granted' ? t('track.notify_on') : t('track.notify_blocked');

  document.title = `${tk.number} – ${t(`track.state.${tk.state}`)} – Vuoro`;
  renderLive();
  document.dispatchEvent(new Event('vuoro:track-render')); // feedback.js
}

function renderLive() {
  const live = $('live');
  if (!S.ticket || ['finished', 'cancelled', 'no_show'].includes(S.ticket.state)) {
    live.textContent = '';
    return;
  }
  live.textContent = S.liveStatus === 'live' ? t('track.live') : t('track.stale');
  live.dataset.status = S.liveStatus;
}

async function setTicket(tk, { quiet = false } = {}) {
  S.ticket = tk;
  S.error = null;
  if (['finished', 'cancelled', 'no_show'].includes(tk.state) && S.notices.contacts.length) {
    // The daemon forgets a ticket's contacts when its visit ends; so does this page.
    if (S.notices.contacts.some((c) => c.channel === 'push')) forgetPush();
    S.notices = { ...S.notices, contacts: [] };
  }
  if (!S.lang) {
    S.lang = (LANG_KEY && localStorage.getItem(LANG_KEY)) || tk.lang || 'fi';
    await ensureStrings(S.lang);
  }
  if (quiet) return;
  render();
  maybeAlert(tk);
}

function guessLang() {
  const nav = (navigator.language || 'fi').slice(0, 2);
  return ['fi', 'sv', 'en', 'ru', 'et', 'ar', 'zh', 'so', 'uk'].includes(nav) ? nav : 'fi';
}

async function loadServiceNames(lang) {
  if (!S.siteId || S.serviceNames[lang]) return;
  try {
    const r = await api(`/api/v1/sites/${encodeURIComponent(S.siteId)}/services?lang=${encodeURIComponent(lang)}`);
    S.serviceNames[lang] = Object.fromEntries((r.services || []).map((x) => [x.id, x.name]));
  } catch (e) {
    /* the ticket's own wording is shown */
  }
}

async function changeLanguage(code) {
  S.lang = code;
  await loadServiceNames(code);
  if (S.siteNames) S.siteName = pick(S.siteNames, code, ['fi', 'sv'].includes(code) ? 'fi' : 'en');
  if (LANG_KEY) localStorage.setItem(LANG_KEY, code);
  await ensureStrings(code);
  render();
}

async function cancelTicket() {
  try {
    const tk = await api(`/api/v1/tickets/${encodeURIComponent(token)}`, { method: 'DELETE' });
    S.confirming = false;
    await setTicket(tk);
  } catch (e) {
    S.confirming = false;
    S.error = e.status === 404 ? 'track.gone' : 'track.cancel_failed';
    render();
  }
}

async function requestNotifications() {
  try {
    await Notification.requestPermission();
  } catch (e) {
    /* older browsers: callback form; nothing to do */
  }
  render();
}

async function loadSiteInfo(tk) {
  try {
    const sites = await api('/api/v1/sites');
    const site = (sites.sites || []).find((s) => s.id === tk.site) || (sites.sites || [])[0];
    if (!site) return;
    S.siteId = site.id;
    await loadServiceNames(S.lang);
    const langs = await api(`/api/v1/sites/${encodeURIComponent(site.id)}/languages`);
    S.languages = langs.languages && langs.languages.length ? langs.languages : FALLBACK_LANGS;
    S.siteNames = site.name;
    S.siteZone = site.timezone || null;
    S.siteName = pick(site.name, S.lang, ['fi', 'sv'].includes(S.lang) ? 'fi' : 'en');
  } catch (e) {
    /* the page works without the site's name and language list */
  }
}

async function firstLoad() {
  try {
    const tk = await api(`/api/v1/tickets/${encodeURIComponent(token)}`);
    await setTicket(tk, { quiet: true });
    await loadSiteInfo(tk); // the site's name and languages, before the first paint
    await loadNotices();
    await setTicket(tk);
    startLive();
  } catch (e) {
    if (!S.lang) {
      S.lang = guessLang();
      await ensureStrings(S.lang);
    }
    if (e.status === 404) {
      S.error = 'track.gone';
      render();
      return;
    }
    S.error = 'track.error';
    render();
    setTimeout(firstLoad, 5000);
  }
}

function startLive() {
  S.live = new Live({
    onSnapshot: (topic, data) => setTicket(data),
    onEvent: (topic, ev) => {
      if (ev.kind === 'ticket_updated') setTicket(ev.ticket);
    },
    onStatus: (status) => {
      S.liveStatus = status;
      renderLive();
    },
    onError: (msg) => {
      if (msg.code === 'not_found') {
        S.error = 'track.gone';
        S.live.stop();
        render();
      }
    },
  });
  S.live.subscribe(`ticket:${token}`);
  S.live.start();
}

async function start() {
  $('lang').addEventListener('change', (e) => changeLanguage(e.target.value));
  $('cancel').addEventListener('click', () => {
    S.confirming = true;
    render();
    $('cancel-yes').focus();
  });
  $('cancel-no').addEventListener('click', () => {
    S.confirming = false;
    render();
    $('cancel').focus();
  });
  $('cancel-yes').addEventListener('click', cancelTicket);
  $('notify').addEventListener('click', requestNotifications);
  $('sms-form').addEventListener('submit', (e) => {
    e.preventDefault();
    submitContact('sms');
  });
  $('email-form').addEventListener('submit', (e) => {
    e.preventDefault();
    submitContact('email');
  });
  $('push').addEventListener('click', enablePush);
  await ensureStrings('en');
  if (!token || !/^[A-Za-z0-9_-]{8,128}$/.test(token)) {
    S.lang = guessLang();
    await ensureStrings(S.lang);
    S.error = 'track.no_token';
    render();
    return;
  }
  S.lang = null;
  await firstLoad();
  if (S.siteNames) S.siteName = pick(S.siteNames, S.lang, ['fi', 'sv'].includes(S.lang) ? 'fi' : 'en');
}

window.vuoroTrack = { S, NEAR, phoneNumber };
start();
