// Vuoro kiosk: service (in the site's default language, the other languages one tap away on the same
// screen) -> confirm (normal or "I need assistance") -> ticket (-> a text message when the turn is near,
// typed on the kiosk's own keypad). Portrait touchscreen, actions on click
// (release), no gestures; every control sits in the lower part of the panel that a seated person reaches
// (docs/kiosk.md); everything resets to the default language after each customer. Uses only the API in
// docs/api.md plus the shared client code.
import { api, ApiError, Live, loadStrings, fill, pick, dirOf, numberHtml } from '/shared/vuoro.js';
import { icon } from '/kiosk/icons.js';
import { qrSvg } from '/shared/qr.js';
import { Speaker, playSound } from '/kiosk/speech.js';
import { phoneNumber, inFinland } from '/shared/phone.js';

const params = new URLSearchParams(location.search);
const DEVICE = params.get('device') || 'kiosk-1';
const TOKEN_KEY = `vuoro.kiosk.${DEVICE}.token`;
const I18N = '/kiosk/i18n';
const TONE = '/kiosk/sounds/attention.wav';

/** Timings (ms). The warning is shown WARN before the reset, and is at least 20 s by the requirement. */
export const TIMING = {
  idle: 60000, // no touch on a screen of the flow
  idleTicket: 30000, // on the ticket screen, when the paper ticket came out
  idleTicketNoPaper: 60000, // on the ticket screen without paper: time to scan the QR code
  warn: 25000,
  staffRepeat: 60000, // a second "Ask staff" within this is not sent again
  offlinePoll: 3000,
  refresh: 60000, // services list, for opening hours
};

const S = {
  token: null,
  site: null, // {id, name, timezone, default_language, ...}
  deviceServices: [],
  languages: [], // [{code, name, dir}] in display order
  strings: {}, // lang -> {key: text}
  lang: 'fi',
  defaultLang: 'fi',
  screen: 'boot',
  returnTo: null, // screen to go back to after the language picker
  printer: null, // {status, fault} of this kiosk's printer when it is known not to print, else null
  services: [],
  servicesLang: null,
  page: 0,
  chosen: null, // service id
  attempt: null, // {service, priority, key}
  busy: false,
  error: null, // message key on the confirm screen
  ticket: null,
  // Text messages for the ticket (GET/PUT /api/v1/tickets/{token}/contact). `typed` is the number on the
  // keypad: only in this object, never in storage, dropped on OK, Cancel, Done and the inactivity reset.
  // `to` is the number masked as the daemon returns it.
  sms: { offered: false, typed: '', error: null, busy: false, to: null },
  large: false,
  contrast: false,
  speech: false,
  offline: false,
  staffAskedAt: 0,
  idleTimer: null,
  resetTimer: null,
  countdown: null,
};

const $ = (id) => document.getElementById(id);
const speaker = new Speaker({ token: () => S.token });

// ---- strings ---------------------------------------------------------------------------------------

function t(key, vars, lang = S.lang) {
  const s = (S.strings[lang] && S.strings[lang][key]) ?? (S.strings.en && S.strings.en[key]) ?? key;
  return vars ? fill(s, vars) : s;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

/** Spoken form of a ticket number: "K042" -> "K 42". */
function spokenNumber(n) {
  const m = /^([A-Za-z]+)0*(\d+)$/.exec(n || '');
  return m ? `${m[1].split('').join(' ')} ${m[2]}` : n;
}

function locale(lang) {
  return lang === 'ar' ? 'ar-u-nu-latn' : lang;
}

function formatOpens(iso, lang = S.lang) {
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const tz = (S.site && S.site.timezone) || undefined;
  const day = (x) => new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(x);
  const sameDay = day(d) === day(new Date());
  // The 24-hour clock in every language: the hall is in Finland.
  const time = { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  const opts = sameDay ? time : { ...time, weekday: 'short' };
  try {
    return new Intl.DateTimeFormat(locale(lang), opts).format(d);
  } catch (e) {
    return new Intl.DateTimeFormat('en', opts).format(d);
  }
}

function waitLine(svc, lang = S.lang) {
  const parts = [t('services.waiting', { n: svc.waiting ?? 0 }, lang)];
  if (svc.eta_reason === 'no_counter_open') parts.push(t('services.eta_no_counter', null, lang));
  else if (svc.eta_minutes === null || svc.eta_minutes === undefined) parts.push(t('services.eta_unknown', null, lang));
  else parts.push(svc.eta_minutes < 1 ? t('services.eta_now', null, lang) : t('services.eta', { m: svc.eta_minutes }, lang));
  return parts.join(' · ');
}

function closedLine(svc, lang = S.lang) {
  switch (svc.closed_reason) {
    case 'last_ticket_passed':
      return t('services.last_ticket_passed', null, lang);
    case 'closed_by_staff':
      return t('services.closed_by_staff', null, lang);
    case 'queue_full':
      return t('services.queue_full', null, lang);
    default:
      return svc.opens_at ? t('services.closed_opens', { when: formatOpens(svc.opens_at, lang) }, lang) : t('services.closed', null, lang);
  }
}

// ---- network ---------------------------------------------------------------------------------------

function isOutage(e) {
  return e instanceof ApiError && (e.status === 0 || e.status === 502 || e.status === 503 || e.status === 504) && e.code !== 'no_speech';
}

async function healthy() {
  try {
    // AbortSignal.timeout, not a page timer: a paused or faked page clock must not make the kiosk think it is offline.
    const res = await fetch('/readyz', { cache: 'no-store', signal: AbortSignal.timeout(4000) });
    return res.ok;
  } catch (e) {
    return false;
  }
}

/** A call failed: if the daemon is really unreachable (checked once more), say so. */
async function trouble(e) {
  if (!isOutage(e) || S.offline) return;
  if (!(await healthy())) goOffline();
}

function goOffline() {
  if (S.offline) return;
  S.offline = true;
  renderOffline();
  const dlg = $('offline');
  if (!dlg.open) dlg.showModal();
  speaker.stop();
  const poll = async () => {
    if (await healthy()) {
      try {
        if (!S.site) await boot();
        else await loadServices(true);
        S.offline = false;
        $('offline').close();
        render();
        return;
      } catch (e) {
        /* still not ready */
      }
    }
    setTimeout(poll, TIMING.offlinePoll);
  };
  setTimeout(poll, TIMING.offlinePoll);
}

function renderOffline() {
  const box = $('offline-body');
  box.replaceChildren();
  const langs = S.languages.length ? S.languages.map((l) => l.code) : Object.keys(S.strings);
  langs.forEach((code, i) => {
    if (!S.strings[code]) return;
    box.append(
      el('section', { lang: code, dir: dirOf(code), class: 'offline-lang' },
        el('h2', { id: i === 0 ? 'offline-title' : null, text: t('offline.title', null, code) }),
        el('p', { text: t('offline.text', null, code) })),
    );
  });
}

async function loadServices(force = false) {
  if (!force && S.servicesLang === S.lang && S.services.length) return;
  // With the device token: an enrolled kiosk gets the real names of sensitive services, so that no two
  // buttons read the same (docs/privacy.md says what a bystander may see).
  const data = await api(`/api/v1/sites/${encodeURIComponent(S.site.id)}/services?lang=${encodeURIComponent(S.lang)}`, { token: S.token });
  let list = data.services || [];
  if (S.deviceServices.length) list = list.filter((s) => S.deviceServices.includes(s.id));
  S.services = list;
  S.servicesLang = S.lang;
}

let refreshPending = false;
function refreshServicesSoon(delay = 1000) {
  if (refreshPending || S.offline || !S.site) return;
  refreshPending = true;
  setTimeout(async () => {
    refreshPending = false;
    try {
      await loadServices(true);
      if (S.screen === 'services') renderServicesInPlace();
      if (S.screen === 'confirm' && !S.busy) renderConfirmInPlace();
    } catch (e) {
      trouble(e);
    }
  }, delay);
}

function newKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return `${DEVICE}-` + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

async function demoToken() {
  try {
    const r = await api(`/api/v1/demo/device-token?device=${encodeURIComponent(DEVICE)}`);
    return r && r.token ? r.token : null;
  } catch (e) {
    if (isOutage(e)) throw e;
    return null;
  }
}

// ---- the printer -----------------------------------------------------------------------------------

const PRINTER_DOWN = ['paper_out', 'cover_open', 'offline', 'no_confirmation'];

/**
 * What the daemon says of this kiosk's printer (`device.printer.status` of GET /api/v1/devices/me, when
 * the daemon sends it): a fault is shown on the service and confirm screens before anyone takes a ticket.
 */
function notePrinter(device) {
  const p = device && device.printer;
  if (!p || typeof p.status !== 'string') return;
  S.printer = PRINTER_DOWN.includes(p.status) ? { status: p.status, fault: p.status } : null;
}

/** What the last ticket's printing showed: a fault stays known until a ticket prints again. */
function notePrintOutcome(tk) {
  const st = printStatus(tk);
  if (st === 'printed') S.printer = null;
  else if (st === 'failed') S.printer = { status: 'failed', fault: (tk.print && tk.print.fault) || null };
}

async function refreshDevice() {
  if (!S.token || S.offline) return;
  try {
    let me;
    try {
      me = await api('/api/v1/devices/me', { token: S.token });
    } catch (e) {
      // Revoked in the administration: the kiosk stops taking customers and asks staff to set it up.
      if (e.status === 401) {
        localStorage.removeItem(TOKEN_KEY);
        S.token = null;
        return showEnrol(true);
      }
      throw e;
    }
    const before = JSON.stringify(S.printer);
    notePrinter(me.device);
    if (JSON.stringify(S.printer) !== before && (S.screen === 'services' || S.screen === 'confirm') && !S.busy) renderMain();
  } catch (e) {
    /* the next refresh tries again */
  }
}

/** The warning on the service and confirm screens while the printer is known not to print. */
function printerWarning() {
  if (!S.printer) return null;
  const fault = S.printer.fault && S.strings.en && S.strings.en[`fault.${S.printer.fault}`] ? t(`fault.${S.printer.fault}`) : '';
  return el('div', { class: 'printer-warn', role: 'status', 'data-printer': S.printer.status },
    icon('printer'),
    el('div', {},
      el('p', { class: 'printer-warn-head', text: t('printer.warn') }),
      el('p', { text: [fault, t('printer.warn_qr')].filter(Boolean).join(' ') })));
}

// ---- boot ------------------------------------------------------------------------------------------

async function boot() {
  if (!S.strings.en) S.strings.en = await loadStrings(I18N, 'en');
  let token = localStorage.getItem(TOKEN_KEY);
  if (!token) {
    token = await demoToken();
    if (token) localStorage.setItem(TOKEN_KEY, token);
  }
  if (!token) return showEnrol(false);
  let me;
  try {
    me = await api('/api/v1/devices/me', { token });
  } catch (e) {
    if (e.status === 401 || e.status === 403 || e.status === 404) {
      localStorage.removeItem(TOKEN_KEY);
      return showEnrol(true);
    }
    throw e;
  }
  S.token = token;
  S.deviceServices = (me.device && me.device.services) || [];
  notePrinter(me.device);
  const siteId = me.device.site;
  const [sites, langs] = await Promise.all([api('/api/v1/sites'), api(`/api/v1/sites/${encodeURIComponent(siteId)}/languages`)]);
  S.site = (sites.sites || []).find((s) => s.id === siteId) || { id: siteId, name: {}, languages: [] };
  S.defaultLang = S.site.default_language || (langs.languages[0] && langs.languages[0].code) || 'fi';
  // Finnish, Swedish and English first (Espoo's languages), then the others in the site's order.
  const first = ['fi', 'sv', 'en'];
  S.languages = [...langs.languages].sort((a, b) => {
    const ia = first.indexOf(a.code);
    const ib = first.indexOf(b.code);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
  });
  await Promise.all(
    S.languages.map(async (l) => {
      if (!S.strings[l.code]) {
        try {
          S.strings[l.code] = await loadStrings(I18N, l.code);
        } catch (e) {
          S.strings[l.code] = {}; // falls back to English key by key
        }
      }
    }),
  );
  S.lang = S.defaultLang;
  await loadServices(true);
  startLive();
  S.screen = 'services';
  render();
}

let live = null;
function startLive() {
  if (live) return;
  // Opening hours and last-ticket times change with the clock, not with events: refresh now and then too.
  setInterval(() => {
    if (S.screen === 'services' || S.screen === 'lang') refreshServicesSoon();
    refreshDevice();
  }, TIMING.refresh);
  live = new Live({
    onSnapshot: () => refreshServicesSoon(),
    onEvent: (topic, ev) => {
      if (ev.kind === 'queue_changed') refreshServicesSoon();
    },
    onStatus: async (status) => {
      if (status === 'stale' && !S.offline && !(await healthy())) goOffline();
    },
    // Names, hours or services changed in the administration: shown within a second or so.
    onConfigChanged: () => refreshServicesSoon(0),
  });
  live.subscribe(`queues:${S.site.id}`);
  live.start();
}

function showEnrol(invalid) {
  S.screen = 'enrol';
  S.lang = 'en';
  S.enrolInvalid = invalid;
  render();
}

// ---- rendering -------------------------------------------------------------------------------------

function render() {
  const root = document.documentElement;
  root.lang = S.lang;
  root.dir = dirOf(S.lang);
  root.classList.toggle('large', S.large);
  root.classList.toggle('contrast', S.contrast);
  root.dataset.screen = S.screen;
  document.title = `Vuoro – ${t('services.title')}`;
  // Names missing in a language: Finnish and Swedish fall back to the default, the others to English.
  $('site-name').textContent = S.site ? pick(S.site.name, S.lang, ['fi', 'sv'].includes(S.lang) ? S.defaultLang : 'en') : 'Vuoro';
  $('speech-ind').hidden = !S.speech;
  $('speech-ind-text').textContent = t('speech.indicator');
  renderBar();
  renderHeader();
  renderMain();
  renderDialogs();
}

function renderHeader() {
  const title = $('title');
  const hint = $('hint');
  hint.replaceChildren();
  switch (S.screen) {
    case 'lang':
      title.textContent = t('lang.title');
      // The same request in the other two of Espoo's languages, so that nobody is stuck.
      for (const code of ['fi', 'sv', 'en']) {
        if (code === S.lang || !S.strings[code]) continue;
        if (hint.childNodes.length) hint.append(' · ');
        hint.append(el('span', { lang: code, dir: dirOf(code), text: t('lang.title', null, code) }));
      }
      break;
    case 'services':
      title.textContent = t('services.title');
      hint.textContent = t('services.hint');
      break;
    case 'confirm':
      title.textContent = t('confirm.title');
      break;
    case 'ticket':
      title.textContent = t('ticket.title');
      break;
    case 'sms':
      title.textContent = t('sms.title');
      hint.textContent = t('sms.instructions');
      break;
    case 'enrol':
      title.textContent = t('enrol.title');
      break;
    default:
      title.textContent = '';
  }
  hint.hidden = !hint.textContent;
}

function renderBar() {
  const bar = $('bar');
  bar.setAttribute('aria-label', t('bar.nav'));
  const langBtn = $('b-lang');
  // In the bar on every customer screen; left empty (the other buttons keep their places) on the language
  // screen, which is the choice itself, and on the services screen, where every language is a button.
  langBtn.hidden = S.screen === 'enrol';
  langBtn.style.visibility = S.screen === 'lang' || S.screen === 'services' ? 'hidden' : '';
  const l1 = $('b-lang-1');
  l1.textContent = t('lang.change');
  const others = ['fi', 'sv', 'en'].filter((c) => c !== S.lang && S.strings[c]).map((c) => t('lang.change', null, c));
  const l2 = $('b-lang-2');
  l2.replaceChildren();
  ['fi', 'sv', 'en']
    .filter((c) => c !== S.lang && S.strings[c])
    .forEach((c, i) => {
      if (i) l2.append(' · ');
      l2.append(el('span', { lang: c, text: t('lang.change', null, c) }));
    });
  l2.hidden = !others.length;
  $('b-large-t').textContent = t('bar.large');
  $('b-large').setAttribute('aria-pressed', String(S.large));
  $('b-contrast-t').textContent = t('bar.contrast');
  $('b-contrast').setAttribute('aria-pressed', String(S.contrast));
  $('b-staff-t').textContent = t('bar.staff');
  bar.hidden = S.screen === 'enrol'; // staff set the kiosk up; the customer's buttons come after
  // The bar keeps its physical order in every language so that "Ask staff" never moves; the labels
  // inside follow the language's direction.
  for (const b of bar.querySelectorAll('button')) b.dir = dirOf(S.lang);
}

function renderMain() {
  const main = $('main');
  main.replaceChildren();
  main.className = `screen-${S.screen}`;
  switch (S.screen) {
    case 'lang':
      return renderLang(main);
    case 'services':
      return renderServices(main);
    case 'confirm':
      return renderConfirm(main);
    case 'ticket':
      renderTicket(main);
      return fitTicket(main);
    case 'sms':
      return renderSms(main);
    case 'enrol':
      return renderEnrol(main);
    default:
      main.append(el('p', { class: 'loading', text: '…' }));
  }
}

function renderLang(main) {
  const list = el('div', { class: 'lang-list' });
  S.languages.forEach((l, i) => {
    list.append(
      el('button', {
        class: i < 3 ? 'lang-btn main-lang' : 'lang-btn',
        lang: l.code,
        dir: l.dir || dirOf(l.code),
        'data-lang': l.code,
        'aria-current': l.code === S.lang && S.returnTo ? 'true' : null,
        onclick: () => chooseLanguage(l.code),
        text: l.name,
      }),
    );
  });
  main.append(list);
}

function serviceButton(svc) {
  const text = el('span', { class: 'svc-text' }, el('span', { class: 'svc-name', text: svc.name }), el('span', { class: 'svc-meta', text: svc.accepting ? waitLine(svc) : closedLine(svc) }));
  if (svc.accepting) {
    return el('button', { class: 'svc', 'data-service': svc.id, onclick: () => chooseService(svc.id) }, icon(svc.icon, 'icon svc-icon'), text);
  }
  return el('div', { class: 'svc closed', 'data-service': svc.id, 'data-closed': svc.closed_reason || 'closed_hours' }, icon(svc.icon, 'icon svc-icon'), text);
}

/** Every language of the site, one tap away, each named in itself (no flags). */
function languageRow() {
  const row = el('nav', { class: 'lang-row', 'aria-label': t('lang.title') });
  for (const l of S.languages) {
    row.append(
      el('button', {
        class: 'lang-btn',
        lang: l.code,
        dir: l.dir || dirOf(l.code),
        'data-lang': l.code,
        'aria-current': l.code === S.lang ? 'true' : null,
        onclick: () => chooseLanguage(l.code),
        text: l.name,
      }),
    );
  }
  return row;
}

function renderServices(main) {
  main.append(languageRow());
  const warn = printerWarning();
  if (warn) main.append(warn);
  if (!S.services.length) {
    main.append(el('p', { class: 'notice', text: t('services.none') }));
    return;
  }
  // Group by unit, in the order the daemon lists them.
  const units = [];
  const byUnit = new Map();
  for (const s of S.services) {
    if (!byUnit.has(s.unit)) {
      const g = { id: s.unit, name: s.unit_name, services: [] };
      byUnit.set(s.unit, g);
      units.push(g);
    }
    byUnit.get(s.unit).services.push(s);
  }
  // Units with something to take first; the ones with everything closed after them.
  const anyOpen = (g) => g.services.some((s) => s.accepting);
  units.sort((a, b) => Number(anyOpen(b)) - Number(anyOpen(a)));
  const cards = units.map((g) =>
    el('section', { class: 'unit', 'aria-labelledby': `u-${g.id}` }, el('h2', { id: `u-${g.id}`, text: g.name }), g.services.map(serviceButton)),
  );
  const pages = el('div', { class: 'pages' });
  main.append(pages);
  paginate(main, pages, cards, false);
}

/** Lays the unit cards out in pages that fit the screen without scrolling (no gestures on a kiosk). */
function paginate(main, pages, cards, withPager) {
  pages.replaceChildren();
  main.querySelector('.pager')?.remove();
  let pager = null;
  if (withPager) {
    // The pager with its buttons is in place before measuring: the pages get what is left of the screen.
    const rtl = dirOf(S.lang) === 'rtl';
    pager = el('div', { class: 'pager' },
      el('button', { class: 'pager-btn', 'data-act': 'prev', onclick: () => turnPage(-1) }, icon(rtl ? 'next' : 'back'), el('span', { text: t('services.prev') })),
      el('p', { class: 'page-no', text: t('services.page', { n: 1, total: 2 }) }),
      el('button', { class: 'pager-btn', 'data-act': 'next', onclick: () => turnPage(1) }, el('span', { text: t('services.next') }), icon(rtl ? 'back' : 'next')));
    main.append(pager);
  }
  const list = [];
  let page = el('div', { class: 'svc-page' });
  pages.append(page);
  list.push(page);
  const overflows = (p) => p.scrollWidth > p.clientWidth + 2 || p.scrollHeight > p.clientHeight + 2;
  // Measured with some room to spare, so that a queue count growing by a digit does not overflow later.
  pages.classList.add('measuring');
  for (const c of cards) {
    page.append(c);
    if (overflows(page) && page.children.length > 1) {
      c.remove();
      page = el('div', { class: 'svc-page' });
      pages.append(page);
      list.push(page);
      page.append(c);
    }
  }
  pages.classList.remove('measuring');
  if (list.length > 1 && !withPager) return paginate(main, pages, cards, true);
  S.pageCount = list.length;
  if (S.page >= list.length) S.page = list.length - 1;
  list.forEach((p, i) => (p.hidden = i !== S.page));
  if (pager) {
    pager.querySelector('[data-act="prev"]').style.visibility = S.page === 0 ? 'hidden' : '';
    pager.querySelector('[data-act="next"]').style.visibility = S.page === list.length - 1 ? 'hidden' : '';
    pager.querySelector('.page-no').textContent = t('services.page', { n: S.page + 1, total: list.length });
  }
}

function turnPage(d) {
  S.page = Math.max(0, Math.min((S.pageCount || 1) - 1, S.page + d));
  renderMain();
  if (S.speech) speakScreen();
}

/**
 * New queue numbers: the texts change in place, the buttons stay (a button replaced between finger down and
 * finger up would lose the tap). Only a service that opens or closes redraws the screen.
 */
function renderServicesInPlace() {
  const main = $('main');
  const shown = [...main.querySelectorAll('[data-service]')];
  const same =
    shown.length === S.services.length &&
    S.services.every((svc) => {
      const e = main.querySelector(`[data-service="${CSS.escape(svc.id)}"]`);
      return e && (e.tagName === 'BUTTON') === !!svc.accepting;
    });
  if (!same) {
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.service : null;
    renderMain();
    if (focused) main.querySelector(`[data-service="${CSS.escape(focused)}"]`)?.focus({ preventScroll: true });
    return;
  }
  for (const svc of S.services) {
    const e = main.querySelector(`[data-service="${CSS.escape(svc.id)}"]`);
    e.querySelector('.svc-name').textContent = svc.name;
    e.querySelector('.svc-meta').textContent = svc.accepting ? waitLine(svc) : closedLine(svc);
  }
  const page = main.querySelector('.svc-page:not([hidden])');
  if (page && (page.scrollWidth > page.clientWidth + 2 || page.scrollHeight > page.clientHeight + 2)) renderMain();
}

function renderConfirmInPlace() {
  const svc = chosenService();
  const meta = $('main').querySelector('.confirm-meta');
  const canTake = !!$('main').querySelector('[data-act="take"]');
  if (svc && meta && canTake === !!svc.accepting) meta.textContent = svc.accepting ? waitLine(svc) : closedLine(svc);
  else renderMain();
}

function chosenService() {
  return S.services.find((s) => s.id === S.chosen) || null;
}

function renderConfirm(main) {
  const svc = chosenService();
  if (!svc) {
    S.screen = 'services';
    return renderMain();
  }
  const msg = el('div', { class: 'msg', id: 'confirm-msg', role: 'alert' });
  if (S.busy) msg.textContent = t('confirm.taking');
  else if (S.error) msg.textContent = t(S.error);
  msg.classList.toggle('error', !!S.error && !S.busy);
  const canTake = svc.accepting;
  const retrying = S.error && S.error !== 'confirm.closed' && S.attempt;
  main.append(
    el('div', { class: 'confirm' },
      el('div', { class: 'confirm-svc' },
        icon(svc.icon, 'icon confirm-icon'),
        el('div', {},
          el('p', { class: 'confirm-unit', text: svc.unit_name }),
          el('h2', { class: 'confirm-name', text: svc.name }),
          el('p', { class: 'confirm-meta', text: svc.accepting ? waitLine(svc) : closedLine(svc) }))),
      canTake && printerWarning(),
      msg,
      canTake && el('button', { class: 'take primary', 'data-act': 'take', disabled: S.busy, onclick: () => takeTicket('normal') },
        icon('ticket'), el('span', { text: retrying && S.attempt.priority === 'normal' ? t('confirm.retry') : t('confirm.take') })),
      canTake && el('button', { class: 'take assist', 'data-act': 'assist', 'aria-describedby': 'assist-hint', disabled: S.busy, onclick: () => takeTicket('assist') },
        icon('assist'), el('span', { text: retrying && S.attempt.priority === 'assist' ? t('confirm.retry') : t('confirm.assist') })),
      canTake && el('p', { id: 'assist-hint', class: 'assist-hint', text: t('confirm.assist_hint') }),
      el('button', { class: 'back', 'data-act': 'back', disabled: S.busy, onclick: () => backToServices() }, icon(dirOf(S.lang) === 'rtl' ? 'next' : 'back'), el('span', { text: t('confirm.back') })),
    ),
  );
}

function printStatus(tk) {
  return (tk.print && tk.print.status) || 'none';
}

function whereToWait(tk, lang = S.lang) {
  // The area of the counters serving the service; without one, the unit (for a sensitive service its
  // neutral name: the ticket screen stays up after the customer left) and a pointer to the screens.
  if (tk.wait_area) return tk.wait_area;
  const svc = S.services.find((s) => s.id === tk.service);
  const unit = !svc ? tk.service_name : svc.sensitive ? svc.public_name : svc.unit_name;
  return t('ticket.where_unit', { unit }, lang);
}

/**
 * The service's name on the ticket screen: the neutral name for a sensitive service, as on the paper
 * ticket, the phone and the displays; the real name was on the screens where the customer chose it.
 */
function ticketServiceName(tk) {
  const svc = S.services.find((s) => s.id === tk.service);
  if (!svc) return tk.service_name;
  return svc.sensitive ? svc.public_name : svc.name;
}

function etaText(tk, lang = S.lang) {
  if (tk.eta_reason === 'no_counter_open') return t('ticket.eta_no_counter', null, lang);
  if (tk.eta_minutes === null || tk.eta_minutes === undefined) return t('ticket.eta_unknown', null, lang);
  return tk.eta_minutes < 1 ? t('ticket.eta_now', null, lang) : t('ticket.eta_value', { m: tk.eta_minutes }, lang);
}

function faultText(tk, lang = S.lang) {
  const f = tk.print && tk.print.fault;
  return f && S.strings.en && S.strings.en[`fault.${f}`] ? t(`fault.${f}`, null, lang) : '';
}

function printMessage(tk, lang = S.lang) {
  const st = printStatus(tk);
  if (st === 'printed') return t('ticket.printed', null, lang);
  if (st === 'pending') return t('ticket.printing', null, lang);
  if (st === 'failed') return [t('ticket.print_failed', null, lang), t('ticket.screen_is_ticket', null, lang), faultText(tk, lang)].filter(Boolean).join(' ');
  return t('ticket.no_printer', null, lang);
}

function renderTicket(main) {
  const tk = S.ticket;
  const st = printStatus(tk);
  const qr = el('div', { class: 'qr-img' });
  const svg = qrSvg(tk.track_url);
  if (svg) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', t('ticket.qr_label'));
    svg.setAttribute('focusable', 'false');
    qr.append(svg);
  }
  const fact = (ic, label, value, cls) => el('div', { class: `fact ${cls || ''}` }, icon(ic), el('dt', { text: label }), el('dd', {}, value));
  main.append(
    el('div', { class: `ticket print-${st}` },
      el('p', { class: 'ticket-svc', text: ticketServiceName(tk) }),
      el('p', { class: 'big-number', id: 'ticket-number' }, numberHtml(tk.number)),
      tk.priority === 'assist' && el('p', { class: 'assist-note', text: t('ticket.assist') }),
      el('div', { class: `print-box print-${st}`, role: st === 'failed' ? 'alert' : 'status', 'data-print': st },
        icon(st === 'failed' ? 'warning' : st === 'none' ? 'ticket' : 'printer'),
        st === 'failed'
          ? el('div', {},
            el('p', { class: 'print-head', text: t('ticket.print_failed') }),
            el('p', { text: t('ticket.screen_is_ticket') }),
            faultText(tk) && el('p', { class: 'print-fault', text: faultText(tk) }))
          : el('p', { text: printMessage(tk) })),
      el('dl', { class: 'facts' },
        fact('place', t('ticket.where'), whereToWait(tk), 'where'),
        fact('people', t('ticket.ahead'), String(tk.position ?? 0), 'ahead'),
        fact('clock', t('ticket.eta'), etaText(tk), 'eta')),
      el('div', { class: 'qr' }, qr, el('p', { class: 'qr-text' }, icon('phone'), el('span', { text: t('ticket.qr') }))),
      smsOnTicket(),
      el('button', { class: 'done primary', 'data-act': 'done', onclick: () => resetToStart() }, icon('check'), el('span', { text: t('ticket.done') })),
    ),
  );
}

// ---- a text message when the turn is near -----------------------------------------------------------

const contactPath = (tk) => `/api/v1/tickets/${encodeURIComponent(tk.token)}/contact`;
/** A number longer than this is not a phone number (E.164 has at most 15 digits after the +). */
const SMS_MAX = 16;

function freshSms() {
  return { offered: false, typed: '', error: null, busy: false, to: null };
}

/**
 * Asks the daemon whether it sends text messages for this ticket (GET .../contact), briefly: the ticket
 * screen does not wait long for it, and without an answer it has no text-message button.
 */
async function loadSmsOffer(tk) {
  try {
    const r = await api(contactPath(tk), { timeoutMs: 1500 });
    const stored = (r.contacts || []).find((c) => c.channel === 'sms');
    S.sms = { ...freshSms(), offered: (r.offered || []).includes('sms'), to: stored ? stored.to : null };
  } catch (e) {
    S.sms = freshSms();
  }
}

/** The number as the daemon masks it (`+35840*****67`), grouped to read: `+358 40 ••• ••67`. */
export function maskedNumber(to) {
  const s = String(to || '').replace(/\*/g, '•');
  const fi = /^\+358(.{2})(.{3})(.+)$/.exec(s);
  return fi ? `+358 ${fi[1]} ${fi[2]} ${fi[3]}` : s;
}

/** The typed number in groups of three (a last single digit joins the group before): `040 123 4567`. */
export function groupedNumber(typed) {
  const plus = typed.startsWith('+') ? '+' : '';
  const digits = typed.slice(plus.length);
  const groups = digits.match(/.{1,3}/g) || [];
  if (groups.length > 1 && groups[groups.length - 1].length === 1) groups.splice(-2, 2, groups[groups.length - 2] + groups[groups.length - 1]);
  return plus + groups.join(' ');
}

/** A text whose phone numbers (`+358 40 123 4567`) stay left to right in a right-to-left language. */
function ltrNumbers(text) {
  return text.split(/(\+?\d[\d ]*\d)/).map((part, i) => (i % 2 ? el('bdi', { dir: 'ltr', text: part }) : part));
}

/** A text with `{to}` as a number that stays left to right (also in Arabic). */
function withNumber(key, number) {
  const [head, tail = ''] = t(key).split('{to}');
  return [head, el('bdi', { dir: 'ltr', class: 'sms-to', text: number }), tail];
}

/** The ticket screen's part: the offer, or where the messages go. */
function smsOnTicket() {
  if (S.sms.to) {
    return el('p', { class: 'sms-on', id: 'sms-on', role: 'status', tabindex: '-1' }, icon('check'), el('span', {}, withNumber('sms.sent', maskedNumber(S.sms.to))));
  }
  if (!S.sms.offered) return null;
  return el('button', { class: 'sms-open', 'data-act': 'sms', onclick: () => openSms() }, icon('phone'), el('span', { text: t('sms.offer') }));
}

function openSms() {
  Object.assign(S.sms, { typed: '', error: null, busy: false });
  setScreen('sms');
}

function closeSms() {
  Object.assign(S.sms, { typed: '', error: null, busy: false });
  setScreen('ticket');
}

function renderSms(main) {
  const finland = inFinland(S.site && S.site.timezone);
  const key = (k, label, cls, name) =>
    el('button', { class: `key ${cls || ''}`, 'data-key': k, 'aria-label': name || null, onclick: () => smsKey(k) }, label);
  const keys = ['1', '2', '3', '4', '5', '6', '7', '8', '9'].map((d) => key(d, d, 'digit'));
  keys.push(key('+', '+', 'plus', t('sms.key_plus')), key('0', '0', 'digit'), key('del', el('span', { text: t('sms.key_delete') }), 'del'));
  main.append(
    el('div', { class: 'sms' },
      el('div', { class: 'sms-display' },
        el('p', { id: 'sms-number-label', class: 'sms-label', text: t('notices.sms_label') }),
        el('output', { id: 'sms-number', class: 'sms-number', dir: 'ltr', 'aria-labelledby': 'sms-number-label', 'aria-describedby': 'sms-example' }, groupedNumber(S.sms.typed)),
        el('p', { id: 'sms-example', class: 'sms-example' }, ltrNumbers(t(finland ? 'notices.sms_example_fi' : 'notices.sms_example')))),
      el('p', { id: 'sms-error', class: 'msg error', role: 'alert', hidden: !S.sms.error, text: S.sms.error ? t(S.sms.error) : '' }),
      el('div', { class: 'keypad', dir: 'ltr', role: 'group', 'aria-labelledby': 'sms-number-label' }, keys),
      el('div', { class: 'sms-actions' },
        el('button', { class: 'key-clear', 'data-key': 'clear', onclick: () => smsKey('clear') }, t('sms.key_clear')),
        el('button', { class: 'back', 'data-act': 'sms-cancel', onclick: () => closeSms() }, t('sms.cancel')),
        el('button', { class: 'primary sms-ok', 'data-act': 'sms-ok', onclick: () => smsSend() }, icon('check'), el('span', { text: t('sms.ok') })))),
  );
  updateSms();
}

/** The typed number and the keys' state, in place: the buttons stay under the finger. */
function updateSms() {
  const out = $('sms-number');
  if (!out) return;
  out.textContent = groupedNumber(S.sms.typed);
  out.classList.toggle('long', S.sms.typed.length > 12);
  const err = $('sms-error');
  err.hidden = !S.sms.error;
  err.textContent = S.sms.error ? t(S.sms.error) : '';
  // A + only starts a number. Greyed, not disabled: a key with the focus keeps it (speech mode's arrows).
  document.querySelector('.key[data-key="+"]')?.setAttribute('aria-disabled', String(S.sms.typed !== ''));
  document.querySelector('[data-act="sms-ok"]')?.setAttribute('aria-busy', String(S.sms.busy));
}

/** What a key says in speech mode: the digit itself, or the key's name. */
function spokenKey(k) {
  if (/^\d$/.test(k)) return { lang: S.lang, text: k, en: k };
  return msg((L) => t({ '+': 'sms.key_plus', del: 'sms.key_delete', clear: 'sms.key_clear' }[k], null, L));
}

function smsKey(k) {
  if (S.sms.busy || S.screen !== 'sms') return;
  const typed = S.sms.typed;
  if (k === 'del') S.sms.typed = typed.slice(0, -1);
  else if (k === 'clear') S.sms.typed = '';
  else if (k === '+') {
    if (typed !== '') return;
    S.sms.typed = '+';
  } else if (/^\d$/.test(k) && typed.length < SMS_MAX) S.sms.typed = typed + k;
  S.sms.error = null;
  updateSms();
  if (S.speech) speaker.say([spokenKey(k)]);
}

/** The daemon's refusal in the customer's words (the phone page's words). */
function smsErrorKey(e) {
  if (e && e.status === 422) return 'notices.bad_sms';
  if (e && e.status === 409) return e.code === 'ticket_not_waiting' ? 'notices.over' : 'notices.opted_out';
  if (e && e.status === 404) return 'notices.over';
  return 'notices.failed';
}

/**
 * The confirmation in speech mode, with the number read back digit by digit. Each digit is a clip of its
 * own (the ones the key presses fetched): the whole number is never in a speech request's address.
 */
function speakSent(typed) {
  const part = (L, i) => (t('sms.sent', null, L).split('{to}')[i] || '').trim();
  const items = [msg((L) => part(L, 0))];
  for (const c of typed) items.push(spokenKey(c));
  // What follows the number, unless it is only a full stop.
  if (!/^[\p{P}\s]*$/u.test(part(S.lang, 1))) items.push(msg((L) => part(L, 1)));
  speaker.say(items);
}

async function smsSend() {
  if (S.sms.busy || S.screen !== 'sms') return;
  const typed = S.sms.typed;
  if (!typed) {
    S.sms.error = 'notices.empty_sms';
    updateSms();
    if (S.speech) speak([S.sms.error]);
    return;
  }
  const tk = S.ticket;
  S.sms.busy = true;
  updateSms();
  try {
    const r = await api(contactPath(tk), { method: 'PUT', body: { sms: phoneNumber(typed, inFinland(S.site && S.site.timezone)) } });
    if (S.ticket !== tk) return; // the next customer's kiosk: nothing of this one is shown
    const stored = ((r && r.contacts) || []).find((c) => c.channel === 'sms');
    Object.assign(S.sms, { typed: '', error: null, busy: false, to: stored ? stored.to : '•' });
    if (S.screen !== 'sms' && S.screen !== 'ticket') return; // the ticket screen shows it on return
    S.screen = 'ticket';
    render();
    resetIdle();
    $('sms-on')?.focus({ preventScroll: true });
    if (S.speech) speakSent(typed);
  } catch (e) {
    if (S.ticket !== tk || S.screen !== 'sms') return;
    Object.assign(S.sms, { busy: false, error: smsErrorKey(e) });
    updateSms();
    // Back on OK, quietly: the error is what is said.
    S.quietFocus = true;
    document.querySelector('[data-act="sms-ok"]')?.focus({ preventScroll: true });
    S.quietFocus = false;
    if (S.speech) speak([S.sms.error]);
    trouble(e);
  }
}

/** Long texts and large text: the ticket screen gets more compact until it fits without scrolling. */
function fitTicket(main) {
  const tk = main.querySelector('.ticket');
  if (!tk) return;
  for (const level of ['fit-1', 'fit-2', 'fit-3']) {
    if (main.scrollHeight <= main.clientHeight + 1 && tk.scrollWidth <= tk.clientWidth + 1) return;
    tk.classList.add(level);
  }
}

function renderEnrol(main) {
  const input = el('input', { id: 'enrol-token', type: 'password', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'enrol-text' });
  const form = el('form', { class: 'enrol' },
    el('p', { id: 'enrol-text', text: t('enrol.text', { device: DEVICE }) }),
    S.enrolInvalid && el('p', { class: 'msg error', role: 'alert', text: t('enrol.invalid') }),
    el('label', { for: 'enrol-token', text: t('enrol.label') }),
    input,
    el('button', { type: 'submit', class: 'primary', text: t('enrol.save') }));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const v = input.value.trim();
    if (!v) return;
    input.value = '';
    // A set-up code from the administration (XXXX-XXXX) is traded for the kiosk's own token; anything
    // longer is a device token typed in.
    const code = v.replace(/[\s-]/g, '');
    let token = v;
    if (code.length === 8) {
      try {
        const r = await api('/api/v1/devices/enrol', { method: 'POST', body: { code, device: DEVICE } });
        token = r.token;
      } catch (err) {
        if (isOutage(err)) return goOffline();
        return showEnrol(true);
      }
    }
    localStorage.setItem(TOKEN_KEY, token);
    try {
      await boot();
    } catch (err) {
      if (isOutage(err)) goOffline();
    }
  });
  main.append(form);
}

function renderDialogs() {
  $('idle-title').textContent = t('idle.title');
  $('idle-more-t').textContent = t('idle.more');
  updateCountdown();
  $('staff-ok').textContent = t('staff.ok');
  for (const d of ['idle', 'staff']) {
    $(d).lang = S.lang;
    $(d).dir = dirOf(S.lang);
  }
}

// ---- actions ---------------------------------------------------------------------------------------

async function chooseLanguage(code) {
  S.lang = code;
  const next = S.returnTo || 'services';
  S.returnTo = null;
  try {
    await loadServices();
  } catch (e) {
    trouble(e);
  }
  if (next === 'services') S.page = 0;
  setScreen(next);
}

function openLanguagePicker() {
  if (S.screen === 'lang' || S.busy) return;
  S.returnTo = S.screen;
  setScreen('lang');
}

function chooseService(id) {
  S.chosen = id;
  S.error = null;
  setScreen('confirm');
}

function backToServices() {
  S.chosen = null;
  S.error = null;
  S.attempt = null;
  setScreen('services');
}

async function postTicket() {
  const a = S.attempt;
  let lastErr = null;
  for (let i = 0; i < 3; i++) {
    try {
      return await api(`/api/v1/sites/${encodeURIComponent(S.site.id)}/tickets`, {
        method: 'POST',
        token: S.token,
        headers: { 'Idempotency-Key': a.key },
        body: { service: a.service, lang: S.lang, priority: a.priority },
      });
    } catch (e) {
      lastErr = e;
      // Retry (with the same key) only when the answer may have been lost or the daemon was not ready.
      if (!(e.status === 0 || e.status >= 500)) throw e;
      await new Promise((r) => setTimeout(r, 1200 * (i + 1)));
    }
  }
  throw lastErr;
}

async function takeTicket(priority) {
  if (S.busy) return; // a double tap: the first tap's request is on its way
  const svc = chosenService();
  if (!svc) return;
  if (!S.attempt || S.attempt.service !== svc.id || S.attempt.priority !== priority) {
    S.attempt = { service: svc.id, priority, key: newKey() };
  }
  S.busy = true;
  S.error = null;
  renderMain();
  if (S.speech) speak(['confirm.taking']);
  try {
    const tk = await postTicket();
    await loadSmsOffer(tk);
    S.ticket = tk;
    S.attempt = null;
    S.busy = false;
    notePrintOutcome(tk);
    setScreen('ticket');
    if (printStatus(tk) === 'pending') followPrint(tk);
    refreshServicesSoon();
  } catch (e) {
    S.busy = false;
    if (e.status === 401) {
      // The kiosk was revoked in the administration: the set-up screen, not a customer's error.
      S.attempt = null;
      return refreshDevice();
    }
    if (e.status === 409 || e.code === 'service_closed' || e.code === 'queue_full') {
      S.error = 'confirm.closed';
      S.attempt = null;
      try {
        await loadServices(true);
      } catch (e2) {
        /* shown below */
      }
    } else {
      S.error = 'confirm.failed';
      trouble(e);
    }
    renderMain();
    if (S.speech) speak([S.error]);
    $('confirm-msg')?.focus?.();
  }
}

/** While the printer has not answered, asks the daemon for the ticket's print status now and then. */
function followPrint(tk) {
  let tries = 0;
  const same = () => S.screen === 'ticket' && S.ticket && S.ticket.token === tk.token;
  const step = async () => {
    if (!same() || printStatus(S.ticket) !== 'pending' || tries++ >= 20) return;
    try {
      const v = await api(`/api/v1/tickets/${encodeURIComponent(tk.token)}`);
      if (same() && v && v.print && v.print.status !== 'pending') {
        S.ticket = { ...S.ticket, print: v.print };
        notePrintOutcome(S.ticket);
        renderMain();
        resetIdle();
        if (S.speech) speak([msg((L) => printMessage(S.ticket, L))]);
        return;
      }
    } catch (e) {
      /* try again */
    }
    setTimeout(step, 1500);
  };
  setTimeout(step, 1000);
}

async function askStaff() {
  const now = Date.now();
  let ok = true;
  if (now - S.staffAskedAt > TIMING.staffRepeat) {
    try {
      await api(`/api/v1/sites/${encodeURIComponent(S.site.id)}/help-requests`, { method: 'POST', token: S.token, body: {} });
      S.staffAskedAt = now;
    } catch (e) {
      ok = false;
      trouble(e);
    }
  }
  $('staff-title').textContent = ok ? t('staff.title') : t('bar.staff');
  $('staff-text').textContent = ok ? t('staff.sent') : t('staff.failed');
  $('staff').dataset.result = ok ? 'sent' : 'failed';
  if (!$('staff').open) $('staff').showModal();
  if (S.speech) speak([ok ? 'staff.sent' : 'staff.failed']);
}

function toggleLarge() {
  S.large = !S.large;
  render();
  resetIdle();
}

function toggleContrast() {
  S.contrast = !S.contrast;
  render();
  resetIdle();
}

function setScreen(name) {
  S.screen = name;
  render();
  resetIdle();
  const title = $('title');
  title.focus({ preventScroll: true });
  if (S.speech) speakScreen();
}

function resetToStart() {
  for (const d of ['idle', 'staff']) if ($(d).open) $(d).close();
  clearTimeout(S.idleTimer);
  clearTimeout(S.resetTimer);
  clearInterval(S.countdown);
  speaker.stop();
  Object.assign(S, {
    lang: S.defaultLang,
    returnTo: null,
    page: 0,
    chosen: null,
    attempt: null,
    busy: false,
    error: null,
    ticket: null,
    sms: freshSms(), // the typed number goes with the customer
    large: false,
    contrast: false,
    speech: false,
    staffAskedAt: 0,
  });
  setScreen('services');
  loadServices()
    .then(() => {
      if (S.screen === 'services') renderMain();
    })
    .catch(trouble);
}

// ---- inactivity ------------------------------------------------------------------------------------

function atHome() {
  return S.screen === 'services' && S.page === 0 && S.lang === S.defaultLang && !S.large && !S.contrast && !S.speech && !S.returnTo && !$('staff').open;
}

function resetIdle() {
  clearTimeout(S.idleTimer);
  clearTimeout(S.resetTimer);
  clearInterval(S.countdown);
  S.resetTimer = null;
  if ($('idle').open) $('idle').close();
  if (S.screen === 'boot' || S.screen === 'enrol' || atHome()) return;
  let ms = TIMING.idle;
  if (S.screen === 'ticket') ms = printStatus(S.ticket) === 'printed' ? TIMING.idleTicket : TIMING.idleTicketNoPaper;
  S.idleTimer = setTimeout(showIdleWarning, ms);
}

function showIdleWarning() {
  S.warnUntil = Date.now() + TIMING.warn;
  updateCountdown();
  if ($('staff').open) $('staff').close();
  $('idle').showModal();
  playSound(TONE);
  if (S.speech) speak(['idle.title', msg((L) => t('idle.text', { s: Math.round(TIMING.warn / 1000) }, L)), 'idle.more']);
  S.countdown = setInterval(updateCountdown, 1000);
  S.resetTimer = setTimeout(resetToStart, TIMING.warn);
}

function updateCountdown() {
  const s = S.warnUntil ? Math.max(0, Math.ceil((S.warnUntil - Date.now()) / 1000)) : Math.round(TIMING.warn / 1000);
  $('idle-text').textContent = t('idle.text', { s });
}

// ---- speech mode -----------------------------------------------------------------------------------

/** A spoken message: `make(lang)` gives its text; the English one is the fallback when there is no voice. */
function msg(make) {
  return { lang: S.lang, text: make(S.lang), en: make('en') };
}

/** Speaks translated keys and messages, cutting off what was playing. */
function speak(items) {
  speaker.say(items.map((x) => (typeof x === 'string' ? msg((L) => t(x, null, L)) : x)));
}

function labelOf(elm) {
  if (!elm) return '';
  if (elm.getAttribute('aria-label')) return elm.getAttribute('aria-label');
  // innerText keeps the line breaks between a service's name and its waiting line: speak them as sentences.
  return (elm.innerText || elm.textContent)
    .split(/\s*\n\s*/)
    .filter(Boolean)
    .join('. ')
    .replace(/\s+/g, ' ')
    .trim();
}

function speakScreen(intro = []) {
  const items = intro.map((k) => msg((L) => t(k, null, L)));
  const key = (k, vars) => items.push(msg((L) => t(k, vars, L)));
  const text = (make) => items.push(msg(make));
  switch (S.screen) {
    case 'lang':
      // "Choose your language" in Finnish, Swedish and English, then each language's name in itself.
      for (const code of [S.lang, ...['fi', 'sv', 'en'].filter((c) => c !== S.lang)]) {
        if (S.strings[code]) items.push({ lang: code, text: t('speech.lang', null, code), en: t('speech.lang', null, 'en') });
      }
      for (const l of S.languages) items.push({ lang: l.code, text: l.name });
      break;
    case 'services': {
      key('speech.services');
      const visible = [...document.querySelectorAll('#main .svc-page:not([hidden]) button.svc')];
      for (const b of visible) {
        const svc = S.services.find((x) => x.id === b.dataset.service);
        if (svc) text((L) => `${svc.name}. ${waitLine(svc, L)}`);
      }
      if ((S.pageCount || 1) > 1) {
        key('services.page', { n: S.page + 1, total: S.pageCount });
        if (S.page < S.pageCount - 1) key('services.next');
      }
      // The languages are on this screen too: say so in Finnish, Swedish and English, then name each.
      for (const code of [S.lang, ...['fi', 'sv', 'en'].filter((c) => c !== S.lang)]) {
        if (S.strings[code]) items.push({ lang: code, text: t('speech.lang', null, code), en: t('speech.lang', null, 'en') });
      }
      for (const l of S.languages) items.push({ lang: l.code, text: l.name });
      break;
    }
    case 'confirm': {
      const svc = chosenService();
      if (svc) text((L) => `${svc.name}. ${svc.accepting ? waitLine(svc, L) : closedLine(svc, L)}`);
      if (svc && svc.accepting) {
        key('confirm.take');
        text((L) => `${t('confirm.assist', null, L)}. ${t('confirm.assist_hint', null, L)}`);
      }
      key('confirm.back');
      break;
    }
    case 'ticket': {
      const tk = S.ticket;
      const number = () => key('speech.number', { number: spokenNumber(tk.number) });
      const where = () => text((L) => `${t('ticket.where', null, L)}: ${whereToWait(tk, L)}`);
      number();
      text(() => ticketServiceName(tk));
      where();
      key('speech.ahead', { n: tk.position ?? 0 });
      if (tk.eta_minutes !== null && tk.eta_minutes !== undefined) key('speech.eta', { m: tk.eta_minutes });
      else if (tk.eta_reason === 'no_counter_open') key('ticket.eta_no_counter');
      text((L) => printMessage(tk, L));
      // The masked digits as a pause, not as "bullet".
      if (S.sms.to) text((L) => t('sms.sent', { to: maskedNumber(S.sms.to).replace(/•[•\s]*/g, '… ') }, L));
      else if (S.sms.offered) key('sms.offer');
      // Finally, once more, the two things to remember.
      number();
      where();
      break;
    }
    case 'sms':
      key('sms.title');
      key('sms.instructions');
      key(inFinland(S.site && S.site.timezone) ? 'notices.sms_example_fi' : 'notices.sms_example');
      break;
    default:
      break;
  }
  speaker.say(items);
}

function startSpeech() {
  const first = !S.speech;
  S.speech = true;
  render();
  resetIdle();
  speakScreen(['speech.on']);
  if (first) {
    // Put the focus on the first choice without cutting off what is being said.
    S.quietFocus = true;
    focusStep(0);
    S.quietFocus = false;
  }
}

function stopSpeech() {
  if (!S.speech) return;
  S.speech = false;
  speak(['speech.off']);
  render();
  resetIdle();
}

function focusables() {
  const dlg = [...document.querySelectorAll('dialog[open]')].pop();
  const scope = dlg ? [dlg] : [$('main'), $('bar')];
  return scope.flatMap((s) => [...s.querySelectorAll('button, input')]).filter((b) => !b.disabled && !b.hidden && b.offsetParent !== null && getComputedStyle(b).visibility !== 'hidden');
}

function focusStep(d) {
  const list = focusables();
  if (!list.length) return;
  const i = list.indexOf(document.activeElement);
  const next = i < 0 ? (d < 0 ? list.length - 1 : 0) : (i + d + list.length) % list.length;
  list[next].focus();
}

document.addEventListener('focusin', (e) => {
  if (!S.speech || S.quietFocus) return;
  const target = e.target;
  if (!(target instanceof HTMLElement) || !target.matches('button, input')) return;
  const lang = target.closest('[lang]')?.getAttribute('lang') || S.lang;
  speaker.say([{ lang, text: labelOf(target) }]);
});

document.addEventListener('keydown', (e) => {
  if (S.screen === 'enrol' || S.screen === 'boot') return;
  if (e.key === 'F1' || e.key === 'h' || e.key === 'H') {
    e.preventDefault();
    startSpeech();
    return;
  }
  if (S.screen === 'sms' && !document.querySelector('dialog[open]') && (/^[0-9+]$/.test(e.key) || e.key === 'Backspace')) {
    e.preventDefault();
    smsKey(e.key === 'Backspace' ? 'del' : e.key);
    return;
  }
  if (e.key === 'Escape' && S.speech && !document.querySelector('dialog[open]')) {
    stopSpeech();
    return;
  }
  if (['ArrowDown', 'ArrowRight', 'ArrowUp', 'ArrowLeft'].includes(e.key)) {
    e.preventDefault();
    const rtl = dirOf(S.lang) === 'rtl';
    const fwd = e.key === 'ArrowDown' || (e.key === 'ArrowRight') !== rtl;
    focusStep(e.key === 'ArrowDown' ? 1 : e.key === 'ArrowUp' ? -1 : fwd ? 1 : -1);
  }
});

// Any touch or key is activity: it postpones the reset (and closes the warning, which is the "one tap").
for (const type of ['pointerdown', 'keydown']) {
  document.addEventListener(type, () => resetIdle(), { capture: true });
}

// ---- wiring ----------------------------------------------------------------------------------------

function wire() {
  $('b-lang').addEventListener('click', openLanguagePicker);
  $('b-large').addEventListener('click', toggleLarge);
  $('b-contrast').addEventListener('click', toggleContrast);
  $('b-staff').addEventListener('click', askStaff);
  $('idle-more').addEventListener('click', () => resetIdle());
  $('staff-ok').addEventListener('click', () => {
    $('staff').close();
    resetIdle();
  });
  for (const id of ['idle', 'offline']) $(id).addEventListener('cancel', (e) => e.preventDefault());
  $('b-lang').prepend(icon('globe'));
  $('b-large').prepend(icon('text'));
  $('b-contrast').prepend(icon('contrast'));
  $('b-staff').prepend(icon('hand'));
  $('idle-more').prepend(icon('clock'));
  $('speech-ind').prepend(icon('speaker'));
  $('offline-icon').append(icon('warning'));
}

async function start() {
  wire();
  try {
    await boot();
  } catch (e) {
    goOffline();
  }
}

// For tests and for the operators' curiosity: the state and the timings, read-only in spirit.
window.vuoroKiosk = { S, TIMING, speaker };
start();
