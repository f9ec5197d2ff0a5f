// The public wait-time page: /public/?site=iso-omena&lang=fi
//
// Loads each service's queue, estimate and opening hours from /api/v1/public/sites/{site}/waits, then
// follows the public WebSocket topic queues:{site} so that the figures change as tickets are issued and
// called. Sensitive services only ever appear under their neutral group (the daemon merges them).
// Services are grouped by unit in one compact table (two lines a service on a phone). Plain module, no
// bundler, nothing from another origin; texts in every language of the site (public-ui/i18n).

import { api, Live, loadStrings, fill, pick, dirOf } from '/shared/vuoro.js';

/** The languages the page has texts for; the site's own list (names, direction) replaces it once known. */
let LANGS = [
  { code: 'fi', name: 'Suomi' },
  { code: 'sv', name: 'Svenska' },
  { code: 'en', name: 'English' },
  { code: 'ru', name: 'Русский' },
  { code: 'et', name: 'Eesti' },
  { code: 'ar', name: 'العربية', dir: 'rtl' },
  { code: 'zh', name: '中文' },
  { code: 'so', name: 'Soomaali' },
  { code: 'uk', name: 'Українська' },
];

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

const S = {
  site: null, // {id, name, timezone, ...}
  services: new Map(), // id -> public service
  order: [],
  strings: {},
  lang: 'fi',
  lastUpdate: null,
  live: null,
};

function t(key, vars) {
  return fill(S.strings[key] || key, vars);
}

function chooseLang() {
  const asked = params.get('lang');
  if (LANGS.some((l) => l.code === asked)) return asked;
  for (const l of navigator.languages || []) {
    const code = l.slice(0, 2).toLowerCase();
    if (LANGS.some((x) => x.code === code)) return code;
  }
  return 'fi';
}

/** Locales for dates and times: as written in Finland (Latin digits and the 24-hour clock in every language). */
const LOCALES = { fi: 'fi-FI', sv: 'sv-FI', en: 'en-GB', ru: 'ru-RU', et: 'et-EE', ar: 'ar-u-nu-latn', zh: 'zh-CN', so: 'so-SO', uk: 'uk-UA' };

function localeOf(lang) {
  return LOCALES[lang] || 'en-GB';
}

function timeText(iso) {
  const d = iso instanceof Date ? iso : new Date(iso);
  return new Intl.DateTimeFormat(localeOf(S.lang), { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: S.site.timezone }).format(d);
}

function whenText(iso) {
  const d = new Date(iso);
  const day = (x) => new Intl.DateTimeFormat('en-CA', { timeZone: S.site.timezone }).format(x);
  if (day(d) === day(new Date())) return timeText(d);
  return new Intl.DateTimeFormat(localeOf(S.lang), { weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: S.site.timezone }).format(d);
}

function renderLanguages() {
  const nav = $('languages');
  nav.replaceChildren();
  nav.setAttribute('aria-label', t('languages'));
  for (const l of LANGS) {
    const a = document.createElement('a');
    const q = new URLSearchParams(location.search);
    q.set('lang', l.code);
    a.href = `?${q}`;
    a.lang = l.code;
    a.dir = l.dir || dirOf(l.code);
    a.hreflang = l.code;
    a.textContent = l.name;
    if (l.code === S.lang) a.setAttribute('aria-current', 'true');
    nav.append(a);
  }
}

function setStatus(state, text) {
  const el = $('status');
  el.dataset.state = state;
  if (el.textContent !== text) el.textContent = text;
}

function estimateText(s) {
  if (!s.open) return '–';
  if (!s.accepting) return t('not_accepting');
  if (s.eta_reason === 'no_counter_open') return t('no_counter');
  if (s.waiting === 0) return t('no_queue');
  if (s.eta_minutes === null || s.eta_minutes === undefined) return t('not_known');
  if (s.eta_minutes < 1) return t('under_a_minute');
  return t('about_minutes', { n: s.eta_minutes });
}

function hoursNode(s) {
  const span = document.createElement('span');
  if (s.open) {
    span.textContent = s.closes_at ? t('open_until', { time: timeText(s.closes_at) }) : t('always_open');
  } else {
    span.className = 'closed';
    span.textContent = s.opens_at ? t('closed_opens', { when: whenText(s.opens_at) }) : t('closed');
  }
  const frag = document.createDocumentFragment();
  frag.append(span);
  if (Array.isArray(s.hours_today) && s.hours_today.length) {
    const small = document.createElement('span');
    small.className = 'unit';
    small.textContent = t('hours_today', { hours: s.hours_today.join(', ') });
    frag.append(small);
  }
  return frag;
}

function cell(label, cls) {
  const td = document.createElement('td');
  td.dataset.label = label;
  if (cls) td.className = cls;
  return td;
}

/** The services in groups by unit, in the daemon's order; a neutral group (no unit) stands alone. */
function groups() {
  const out = [];
  const byKey = new Map();
  for (const id of S.order) {
    const s = S.services.get(id);
    if (!s) continue;
    const key = s.unit || `service:${id}`;
    if (!byKey.has(key)) {
      const g = { key, name: s.unit_name ? pick(s.unit_name, S.lang, 'fi') : null, services: [] };
      byKey.set(key, g);
      out.push(g);
    }
    byKey.get(key).services.push(s);
  }
  return out;
}

function render() {
  const body = $('rows');
  body.replaceChildren();
  for (const g of groups()) {
    // Every group has its heading; a neutral group (sensitive services merged) is headed by its own name.
    const heading = g.name || pick(g.services[0].name, S.lang, 'fi');
    if (heading) {
      const tr = document.createElement('tr');
      tr.className = 'group';
      const th = document.createElement('th');
      th.scope = 'colgroup';
      th.colSpan = 4;
      th.textContent = heading;
      tr.append(th);
      body.append(tr);
    }
    for (const s of g.services) {
      const tr = document.createElement('tr');
      tr.dataset.service = s.id;
      tr.dataset.open = String(!!s.open);
      const name = document.createElement('th');
      name.scope = 'row';
      name.className = 'svc';
      name.textContent = pick(s.name, S.lang, 'fi');
      const waiting = cell(t('col_waiting'), 'num');
      waiting.textContent = s.open ? String(s.waiting) : '–';
      const est = cell(t('col_estimate'), 'est');
      est.textContent = estimateText(s);
      const hours = cell(t('col_hours'), 'hours');
      hours.append(hoursNode(s));
      tr.append(name, waiting, est, hours);
      body.append(tr);
    }
  }
  $('waits').hidden = S.order.length === 0;
  if (S.lastUpdate) $('caption').textContent = `${t('caption')}. ${t('updated', { time: timeText(S.lastUpdate) })}`;
}

/** Takes the figures of a queues:{site} snapshot or queue_changed event. */
function applyQueues(list) {
  for (const q of list || []) {
    const s = S.services.get(q.id);
    if (!s) continue;
    s.waiting = q.waiting;
    s.eta_minutes = q.eta_minutes;
    s.eta_reason = q.eta_reason;
    s.accepting = q.accepting && s.open;
  }
  S.lastUpdate = new Date();
  render();
}

async function loadWaits() {
  const data = await api(`/api/v1/public/sites/${encodeURIComponent(S.site.id)}/waits`);
  S.site = { ...S.site, ...data.site };
  S.order = data.services.map((s) => s.id);
  S.services = new Map(data.services.map((s) => [s.id, s]));
  S.lastUpdate = new Date(data.generated_at);
  render();
}

function applyTexts() {
  document.documentElement.lang = S.lang;
  const l = LANGS.find((x) => x.code === S.lang);
  document.documentElement.dir = (l && l.dir) || dirOf(S.lang);
  const siteName = pick(S.site.name, S.lang, 'fi');
  document.title = t('title', { site: siteName });
  $('heading').textContent = t('heading');
  $('site-name').textContent = siteName;
  $('col-service').textContent = t('col_service');
  $('col-waiting').textContent = t('col_waiting');
  $('col-estimate').textContent = t('col_estimate');
  $('col-hours').textContent = t('col_hours');
  $('note').textContent = t('note');
  const od = $('open-data');
  od.replaceChildren(document.createTextNode(t('open_data') + ' '));
  const a = document.createElement('a');
  a.href = `/api/v1/public/sites/${encodeURIComponent(S.site.id)}/waits`;
  a.textContent = new URL(a.href, location.href).href;
  od.append(a);
  renderLanguages();
}

async function main() {
  S.lang = chooseLang();
  S.strings = await loadStrings('/public/i18n', S.lang);
  renderLanguages();
  setStatus('connecting', t('connecting'));
  let sites;
  try {
    sites = (await api('/api/v1/sites')).sites;
  } catch (e) {
    setStatus('error', t('error', { message: e.message }));
    return;
  }
  const wanted = params.get('site');
  S.site = wanted ? sites.find((s) => s.id === wanted) : sites[0];
  if (!S.site) {
    setStatus('error', t('no_site'));
    return;
  }
  // The site's languages, each named in itself, replace the built-in list (texts exist for all of them).
  try {
    const langs = (await api(`/api/v1/sites/${encodeURIComponent(S.site.id)}/languages`)).languages || [];
    if (langs.length) LANGS = langs.map((l) => ({ code: l.code, name: l.name, dir: l.dir }));
  } catch (e) {
    /* the built-in list */
  }
  if (!LANGS.some((l) => l.code === S.lang)) {
    S.lang = LANGS[0].code;
    S.strings = await loadStrings('/public/i18n', S.lang);
  }
  applyTexts();
  try {
    await loadWaits();
  } catch (e) {
    setStatus('error', t('error', { message: e.message }));
  }
  const topic = `queues:${S.site.id}`;
  S.live = new Live({
    onSnapshot: (tp, data) => {
      if (tp === topic) applyQueues(data.services);
    },
    onEvent: (tp, ev) => {
      if (tp === topic && ev.kind === 'queue_changed') applyQueues(ev.services);
    },
    onStatus: (st) => {
      if (st === 'live') setStatus('live', t('live'));
      else if (st === 'stale') setStatus('stale', t('stale', { time: timeText(S.lastUpdate || new Date()) }));
      else setStatus('connecting', t('connecting'));
    },
  });
  S.live.subscribe(topic);
  S.live.start();
  // Opening hours change with the clock, not with events: refresh them every minute.
  setInterval(() => {
    loadWaits().catch(() => {});
  }, 60000);
}

main();
