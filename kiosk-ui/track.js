// Vuoro phone page: follow one ticket live. Reached from the kiosk's QR code with the ticket token in the
// URL fragment (#t=...), which the browser never sends to the server. No login, no cookies, no other origin.
import { api, Live, loadStrings, fill, pick, dirOf, numberHtml } from '/shared/vuoro.js';

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

  const canNotify = 'Notification' in window && (tk.state === 'waiting' || tk.state === 'parked');
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

window.vuoroTrack = { S, NEAR };
start();
