// The hall display: /display/?site=iso-omena&id=hall[&panel=55]
//
// Fed only by the public topics calls:{site}, queues:{site} and, with audio, announcements:{site}. Shows the newest call large (number ->
// counter, in the display's languages), the recent calls below it (in the standard layout at least six at
// once, never paged), and the queues. A call is shown large the moment its event arrives and, on a display
// that plays audio, announced when its event on announcements:{site} follows (the daemon renders the speech
// after the commit); calls that arrive
// together are announced one after another through one audio element. When no message (not even a heartbeat) has come for 15 s the screen says it is not up to date,
// stops presenting calls as current and announces nothing; after reconnecting it takes the snapshot and
// lists what it missed. Every few seconds, when it has drawn a frame, it tells the daemon that it renders
// (`rendering`), so supervisors see a screen that froze with its socket still open.
//
// `panel` is the screen's diagonal in inches (default 55): with the display's viewing distance it sets
// the text sizes (see model.js and docs/staff-guide.md, "Hall displays"). The clock and the times shown
// are in the site's time zone, whatever the display PC's own setting.

import { Live, pick, numberHtml } from '/shared/vuoro.js';
import { loadAll, multi, tr, fetchJson, hhmm, startClock, setStaleBanner, pager, inLang, setTimeZone, setPageLang, reportRendering } from './common.js';
import { addRecent, pruneRecent, toCall, isFresh, fontSizes, pxPerMm, laneView, rowFontPx, RECENT_ROWS } from './model.js';
import { Player } from './player.js';

const params = new URLSearchParams(location.search);
const siteId = params.get('site') || '';
const displayId = params.get('id') || '';
const panelInch = Number(params.get('panel')) > 0 ? Number(params.get('panel')) : 55;

const $ = (id) => document.getElementById(id);

const S = {
  display: null,
  site: null,
  zones: new Map(), // id -> {id, name, voice, volume, services?}
  langs: ['fi', 'sv', 'en'],
  strings: {},
  shown: null, // Set of zone ids, or null for all
  columns: false,
  recent: [], // calls, newest first
  lanes: new Map(), // lane id -> {id, current, key, flash, els}
  queues: new Map(), // id -> PublicQueue
  queueLang: 0,
  stale: false,
  initialized: false,
  offsetMs: 0,
  lastMessage: Date.now(),
  player: null,
  calls: [], // log of presented calls, for diagnostics: {number, at, presentedAt}
  rowsShown: 0, // recent rows visible in the standard layout
  rendering: null, // the rendering reports' counter
};

// Diagnostics for the technician (and the browser tests): what the screen is doing, read-only.
window.vuoroDisplay = {
  get status() {
    return document.body.dataset.status;
  },
  get presented() {
    return S.calls.slice();
  },
  /** Rendering reports sent to the daemon. */
  get renderingReports() {
    return S.rendering ? S.rendering.sent : 0;
  },
  get recent() {
    return S.recent.map((c) => ({ number: c.number, counter: c.counter, zone: c.zone, missed: c.missed }));
  },
  get timeZone() {
    return (S.site && S.site.timezone) || null;
  },
};

let live = null;
const serverNow = () => Date.now() + S.offsetMs;
const laneIdOf = (call) => (S.columns ? call.zone : '*');
const shown = (zone) => !S.shown || S.shown.has(zone);

function message(keyOrText, vars) {
  const m = $('message');
  if (!m) return;
  m.replaceChildren(multi(S.langs, (l) => tr(S.strings, l, keyOrText, vars)));
}

async function boot() {
  if (!siteId || !displayId) {
    S.strings = await loadAll(S.langs);
    message('not_configured');
    return;
  }
  let cfg;
  for (;;) {
    try {
      cfg = await fetchJson(`/api/v1/sites/${encodeURIComponent(siteId)}/displays/${encodeURIComponent(displayId)}`);
    } catch (e) {
      cfg = { status: 0 };
    }
    if (cfg.status === 200 && cfg.data && cfg.data.display) break;
    if (!Object.keys(S.strings).length) S.strings = await loadAll(S.langs);
    message(cfg.status === 404 ? 'not_configured' : 'connecting');
    await new Promise((r) => setTimeout(r, cfg.status === 404 ? 60000 : 5000));
  }
  applyConfig(cfg);
  setTimeZone(S.site && S.site.timezone);
  S.strings = await loadAll(S.langs);
  setPageLang(S.langs[0]);
  $('site-name').replaceChildren(multi(S.langs, (l) => pick(S.site && S.site.name, l)));
  startClock($('clock'), tr(S.strings, S.langs[0], 'locale'));
  sizeNumbers();
  build();
  fitRows();
  addEventListener('resize', () => {
    sizeNumbers();
    fitRows();
    renderRecent(false);
  });
  message('connecting');

  if (S.display.audio) {
    S.player = new Player({
      volumeFor: (zone) => (S.zones.get(zone) || {}).volume,
      onBlocked: (blocked) => {
        const el = $('sound-state');
        el.hidden = !blocked;
        if (blocked) el.replaceChildren(multi(S.langs, (l) => tr(S.strings, l, 'sound_blocked')));
      },
    });
  }

  live = new Live({
    hello: displayId ? { type: 'hello', display: displayId } : null,
    onSnapshot: (topic, data) => {
      S.lastMessage = Date.now();
      if (topic.startsWith('calls:')) onCallsSnapshot(data);
      else if (topic.startsWith('queues:')) onQueuesSnapshot(data);
    },
    onEvent: (topic, ev) => {
      S.lastMessage = Date.now();
      if (topic.startsWith('calls:')) onCallEvent(ev);
      else if (topic.startsWith('queues:')) onQueueEvent(ev);
      else if (topic.startsWith('announcements:')) onAnnouncement(ev);
    },
    // The hall changed (a display's layout, zones, languages, names): the page loads afresh, a moment
    // apart on each screen.
    onConfigChanged: () => setTimeout(() => location.reload(), 500 + Math.random() * 1500),
    onStatus: onStatus,
  });
  live.subscribe(`calls:${siteId}`);
  live.subscribe(`queues:${siteId}`);
  if (S.player) live.subscribe(`announcements:${siteId}`);
  live.start();
  // The daemon learns that this page draws, not only that its socket is open (a frozen page is flagged).
  S.rendering = reportRendering((m) => live.send(m), (S.display.rendering_report_seconds || 5) * 1000);
  // Heartbeats count as messages too: Live keeps that time; the banner shows it.
  setInterval(() => {
    if (live.lastMessage) S.lastMessage = Math.max(S.lastMessage, live.lastMessage);
  }, 1000);

  // Drop old calls from the lists, and rotate the queue names' language.
  setInterval(() => {
    const before = S.recent.length;
    S.recent = pruneRecent(S.recent, serverNow());
    if (S.recent.length !== before) renderRecent(false);
  }, 15000);
  setInterval(() => {
    S.queueLang = (S.queueLang + 1) % S.langs.length;
    renderQueues(false);
  }, 10000);
  // The server's clock, again now and then (and the display's config, e.g. its zones' volume).
  setInterval(async () => {
    try {
      const r = await fetchJson(`/api/v1/sites/${encodeURIComponent(siteId)}/displays/${encodeURIComponent(displayId)}`);
      if (r.status === 200 && r.data && r.data.display) applyConfig(r, { keepLayout: true });
    } catch (e) {
      /* the WebSocket shows the outage */
    }
  }, 600000);
}

function applyConfig(cfg, { keepLayout = false } = {}) {
  const d = cfg.data;
  if (cfg.offsetMs !== null && cfg.offsetMs !== undefined) S.offsetMs = cfg.offsetMs;
  S.site = d.site || { id: siteId, name: {} };
  S.zones = new Map((d.zones || []).map((z) => [z.id, z]));
  if (keepLayout) return;
  S.display = d.display;
  const langs = (d.display.languages && d.display.languages.length ? d.display.languages : (S.site.languages || []).slice(0, 3)).filter(Boolean);
  if (langs.length) S.langs = langs;
  S.shown = d.display.zones && d.display.zones.length ? new Set(d.display.zones) : null;
  S.columns = d.display.layout === 'columns';
}

/** Width of a ticket number in em, measured in the page's own font (letter + three digits). */
function numberWidthEm() {
  try {
    const ctx = document.createElement('canvas').getContext('2d');
    const family = getComputedStyle(document.body).fontFamily;
    ctx.font = `700 100px ${family}`;
    return Math.max(2.4, ctx.measureText('W888').width / 100 + 0.1);
  } catch (e) {
    return 3.1;
  }
}

/** Number heights from the viewing distance and the panel size (model.js), capped to fit the layout. */
function sizeNumbers() {
  const w = innerWidth;
  const h = innerHeight;
  const pxmm = pxPerMm(panelInch, w, h);
  const cols = S.columns ? Math.max(1, laneOrder().length) : 1;
  // The called number must fit its box: layout padding 2x32, gaps 24, column padding 2x20, box padding 2x20.
  const boxWidth = S.columns ? (w - 64 - (cols - 1) * 24) / cols - 80 : (w - 64 - 64) * 0.5;
  const em = numberWidthEm();
  // In columns a recent row holds the number and the counter's name side by side: the number gets 42 %.
  const f = fontSizes(S.display.viewing_distance_m, pxmm, {
    maxPrimaryPx: Math.min(h * (S.columns ? 0.2 : 0.21), boxWidth / em),
    maxSecondaryPx: Math.min(h * (S.columns ? 0.085 : 0.075), S.columns ? (boxWidth * 0.42) / em : Infinity),
  });
  const root = document.documentElement.style;
  root.setProperty('--num-primary', `${f.primaryPx.toFixed(1)}px`);
  root.setProperty('--num-secondary', `${f.secondaryPx.toFixed(1)}px`);
  root.setProperty('--read', `${f.secondaryPx.toFixed(1)}px`);
  Object.assign(document.body.dataset, {
    digitMm: String(f.primaryMm),
    digitMmSecondary: String(f.secondaryMm),
    digitPx: (f.primaryPx * 0.729).toFixed(1),
    digitPxSecondary: (f.secondaryPx * 0.729).toFixed(1),
    pxPerMm: pxmm.toFixed(3),
    sizeClamped: String(f.clamped),
  });
  S.textPx = f.secondaryPx;
  S.pxmm = pxmm;
}

/**
 * The standard layout's recent rows: the secondary rule's size, or smaller if RECENT_ROWS rows would not
 * fit the list's height (then `data-size-clamped` says so). Sets --row.
 */
function fitRows() {
  if (S.columns) return;
  const list = document.querySelector('.layout-standard .recent-list');
  if (!list) return;
  const root = document.documentElement.style;
  root.setProperty('--row', `${S.textPx.toFixed(1)}px`);
  const px = rowFontPx(S.textPx, list.clientHeight);
  root.setProperty('--row', `${px.toFixed(1)}px`);
  document.body.dataset.rowDigitMm = ((px * 0.729) / S.pxmm).toFixed(1);
  if (px + 0.5 < S.textPx) document.body.dataset.sizeClamped = 'true';
}

function laneOrder() {
  if (!S.columns) return ['*'];
  const ids = S.shown ? [...S.shown] : [...S.zones.keys()];
  return ids;
}

/** Builds the layout's skeleton: standard (one lane, recent list, queues) or columns (a lane per zone). */
function build() {
  const main = $('main');
  main.replaceChildren();
  main.className = `layout layout-${S.columns ? 'columns' : 'standard'}`;
  const heading = (key, id) => {
    const h = document.createElement('h2');
    h.className = 'heading';
    if (id) h.id = id;
    h.append(multi(S.langs, (l) => tr(S.strings, l, key)));
    return h;
  };
  const msg = document.createElement('p');
  msg.id = 'message';
  msg.className = 'message';

  const makeLane = (id, parent) => {
    const laneEl = document.createElement('div');
    laneEl.className = 'lane';
    laneEl.dataset.lane = id;
    const list = document.createElement('ol');
    list.className = 'recent-list';
    const pagerEl = document.createElement('p');
    pagerEl.className = 'pager';
    pagerEl.hidden = true;
    const lane = { id, current: null, key: null, flash: false, els: { lane: laneEl, list, pagerEl } };
    S.lanes.set(id, lane);
    return lane;
  };

  if (!S.columns) {
    const now = document.createElement('section');
    now.className = 'now';
    now.setAttribute('aria-labelledby', 'now-h');
    const lane = makeLane('*');
    now.append(heading('heading_now', 'now-h'), lane.els.lane, msg);
    const recent = document.createElement('section');
    recent.className = 'recent';
    recent.setAttribute('aria-labelledby', 'recent-h');
    // No pager: the rows are sized so that at least RECENT_ROWS fit; older ones than fit are not shown.
    recent.append(heading('heading_recent', 'recent-h'), lane.els.list);
    const left = document.createElement('div');
    left.className = 'left';
    left.append(now, recent);
    main.append(left, queuesSection());
  } else {
    const cols = document.createElement('div');
    cols.className = 'columns';
    for (const zid of laneOrder()) {
      const z = S.zones.get(zid) || { id: zid, name: {} };
      const col = document.createElement('section');
      col.className = 'zone-col';
      col.dataset.zone = zid;
      col.setAttribute('aria-labelledby', `zone-h-${zid}`);
      const h = document.createElement('h2');
      h.className = 'heading zone-name';
      h.id = `zone-h-${zid}`;
      h.append(multi(S.langs, (l) => pick(z.name, l) || zid));
      const lane = makeLane(zid);
      col.append(h, lane.els.lane, lane.els.list, lane.els.pagerEl);
      lane.pager = pager(lane.els.list, lane.els.pagerEl, S.langs, S.strings);
      cols.append(col);
    }
    main.append(cols, msg, queuesSection());
  }
  document.body.classList.toggle('has-columns', S.columns);
  renderAll();
}

function queuesSection() {
  const q = document.createElement('aside');
  q.className = 'queues';
  q.setAttribute('aria-labelledby', 'queues-h');
  const h = document.createElement('h2');
  h.className = 'heading';
  h.id = 'queues-h';
  h.append(multi(S.langs, (l) => tr(S.strings, l, 'heading_queues')));
  const list = document.createElement('ul');
  list.className = 'queue-list';
  list.id = 'queue-list';
  const pagerEl = document.createElement('p');
  pagerEl.className = 'pager';
  pagerEl.hidden = true;
  q.append(h, list, pagerEl);
  S.queuePager = pager(list, pagerEl, S.langs, S.strings, 10000);
  return q;
}

// ---- data in -------------------------------------------------------------------------------------

/**
 * Live reports 'stale' as soon as the socket closes; the screen says so only once nothing (not even a
 * heartbeat) has come for STALE_MS, so that a daemon restart of a second or two does not flash a banner.
 */
const STALE_MS = 15000;
let staleTimer = null;

function onStatus(status) {
  clearTimeout(staleTimer);
  if (status === 'stale') {
    if (live && live.lastMessage) S.lastMessage = Math.max(S.lastMessage, live.lastMessage);
    const wait = S.lastMessage + STALE_MS - Date.now();
    if (wait > 0) {
      staleTimer = setTimeout(() => onStatus('stale'), wait);
      return;
    }
    S.stale = true;
    if (S.player) S.player.clear();
  } else if (status === 'live') {
    S.stale = false;
    document.body.dataset.status = 'live';
    const m = $('message');
    if (m) m.replaceChildren();
  }
  setStaleBanner($('stale'), S.stale, S.langs, S.strings, S.lastMessage);
  renderLanes();
}

function onCallsSnapshot(data) {
  const resync = S.initialized;
  S.initialized = true;
  const known = new Set(S.recent.map((c) => `${c.number}@${c.at}`));
  const now = serverNow();
  for (const raw of data.recent) {
    if (!shown(raw.zone)) continue;
    const c = toCall(raw);
    if (resync && !known.has(`${c.number}@${c.at}`)) c.missed = true;
    S.recent = addRecent(S.recent, c, now);
  }
  // Each lane shows its newest call, still (never blinking or announced: it is not news to anyone).
  for (const lane of S.lanes.values()) lane.current = laneView(S.recent, lane.id).current;
  const m = $('message');
  if (m) m.replaceChildren();
  renderAll();
}

function onCallEvent(ev) {
  if (ev.kind !== 'ticket_called' && ev.kind !== 'ticket_recalled') return;
  if (!shown(ev.zone)) return;
  const c = toCall(ev);
  const fresh = !S.stale && isFresh(c, serverNow());
  if (!fresh) c.missed = true;
  S.recent = addRecent(S.recent, c, serverNow());
  const lane = S.lanes.get(laneIdOf(c));
  if (lane) {
    const cur = laneView(S.recent, lane.id).current;
    if (cur !== lane.current) {
      lane.current = cur;
      lane.flash = fresh && cur === c;
      if (lane.flash) {
        S.calls.push({ number: c.number, counter: c.counter, at: c.at, presentedAt: Date.now() });
        if (S.calls.length > 200) S.calls.shift();
      }
    }
    renderLane(lane);
  }
  renderRecent();
}

/** What to play for a call: the announcement that follows its event. Only for a current call. */
function onAnnouncement(a) {
  if (!S.player || S.stale) return;
  if (a.kind !== 'ticket_called' && a.kind !== 'ticket_recalled') return;
  if (!shown(a.zone ?? null)) return;
  const c = toCall(a);
  if (isFresh(c, serverNow())) S.player.enqueue(c);
}

function onQueuesSnapshot(data) {
  S.queues = new Map(data.services.map((q) => [q.id, q]));
  renderQueues();
}

/** `queue_changed`: every service's figures. */
function onQueueEvent(ev) {
  S.queues = new Map(ev.services.map((q) => [q.id, q]));
  renderQueues(false);
}

// ---- rendering -----------------------------------------------------------------------------------

function renderAll() {
  renderLanes();
  renderRecent();
  renderQueues();
}

function renderLanes() {
  for (const lane of S.lanes.values()) renderLane(lane);
}

/**
 * Destination lines: the counter's name in the first language, then in the others (a name that is the
 * same in every language is said once), then the location hint in every language. `compact` puts all the
 * names on one line (the recent list).
 */
function destination(call, { withArrow = false, compact = false } = {}) {
  const wrap = document.createElement('div');
  wrap.className = 'dest';
  const first = S.langs[0];
  const primary = pick(call.counterName, first);
  const line1 = document.createElement('div');
  line1.className = 'dest-name';
  if (withArrow) {
    const arrow = document.createElement('span');
    arrow.className = 'arrow';
    arrow.setAttribute('aria-hidden', 'true');
    arrow.textContent = '→ ';
    line1.append(arrow);
  }
  line1.append(inLang('span', first, primary, 'primary'));
  wrap.append(line1);
  const others = multi(S.langs.slice(1), (l) => {
    const t = pick(call.counterName, l);
    return t === primary ? '' : t;
  }, { className: 'dest-other' });
  if (others.childNodes.length) {
    if (compact) {
      const sep = document.createElement('span');
      sep.className = 'sep';
      sep.setAttribute('aria-hidden', 'true');
      sep.textContent = ' · ';
      line1.append(sep, others);
    } else {
      wrap.append(others);
    }
  }
  if (call.location && Object.keys(call.location).length) {
    wrap.append(multi(S.langs, (l) => pick(call.location, l), { className: 'dest-location' }));
  }
  return wrap;
}

function renderLane(lane) {
  const el = lane.els.lane;
  const c = lane.current;
  const key = c ? `${c.number}@${c.at}` : null;
  if (!c) {
    if (!el.querySelector('.empty')) {
      el.replaceChildren(multi(S.langs, (l) => tr(S.strings, l, 'no_calls'), { tag: 'p', className: 'empty' }));
    }
    lane.key = null;
  } else if (key !== lane.key || lane.flash) {
    // A new presentation: rebuilding the element restarts the blink animation.
    const box = document.createElement('div');
    box.className = 'current' + (lane.flash ? ' flash' : '');
    box.dataset.number = c.number;
    box.dataset.counter = c.counter;
    const num = document.createElement('div');
    num.className = 'current-number';
    num.append(numberHtml(c.number));
    const row = document.createElement('div');
    row.className = 'current-row';
    row.append(num, destination(c, { withArrow: true }));
    const note = document.createElement('p');
    note.className = 'current-note';
    box.append(row, note);
    el.replaceChildren(box);
    lane.key = key;
    lane.flash = false;
  }
  const box = el.querySelector('.current');
  if (!box) return;
  box.classList.toggle('is-stale', S.stale);
  box.classList.toggle('missed', !!c.missed);
  if (S.stale) box.classList.remove('flash');
  const note = box.querySelector('.current-note');
  const t = (l) => hhmm(c.at, tr(S.strings, l, 'locale'));
  let noteText = null;
  if (S.stale) noteText = (l) => tr(S.strings, l, 'last_known', { time: hhmm(S.lastMessage, tr(S.strings, l, 'locale')) });
  else if (c.missed) noteText = (l) => `${tr(S.strings, l, 'called_at', { time: t(l) })}, ${tr(S.strings, l, 'missed')}`;
  else if (c.recall) noteText = (l) => tr(S.strings, l, 'recall');
  note.replaceChildren(noteText ? multi(S.langs, noteText) : '');
}

function renderRecent(resetPage = true) {
  for (const lane of S.lanes.values()) {
    const items = S.recent.filter((c) => (lane.id === '*' || c.zone === lane.id) && c !== lane.current);
    const lis = items.map((c) => {
      const li = document.createElement('li');
      li.className = 'recent-item' + (c.missed ? ' missed' : '');
      li.dataset.number = c.number;
      li.dataset.counter = c.counter;
      const num = document.createElement('span');
      num.className = 'recent-number';
      num.append(numberHtml(c.number));
      const arrow = document.createElement('span');
      arrow.className = 'arrow';
      arrow.setAttribute('aria-hidden', 'true');
      arrow.textContent = '→';
      const when = document.createElement('span');
      when.className = 'recent-time';
      when.append(inLang('span', S.langs[0], hhmm(c.at, tr(S.strings, S.langs[0], 'locale'))));
      if (c.missed) when.append(multi(S.langs, (l) => tr(S.strings, l, 'missed'), { className: 'missed-note' }));
      else if (c.recall) when.append(multi(S.langs, (l) => tr(S.strings, l, 'recall'), { className: 'recall-note' }));
      li.append(num, arrow, destination(c, { compact: true }), when);
      return li;
    });
    lane.els.list.replaceChildren(...lis);
    if (lane.pager) lane.pager.update(resetPage);
    else showWhatFits(lane.els.list);
  }
}

/** Hides the rows that would not fit the list whole (the oldest); no paging. */
function showWhatFits(list) {
  const bottom = list.getBoundingClientRect().bottom + 0.5;
  let n = 0;
  let full = false;
  for (const li of list.children) {
    li.hidden = full;
    if (full) continue;
    if (li.getBoundingClientRect().bottom > bottom) {
      li.hidden = true;
      full = true;
    } else n++;
  }
  S.rowsShown = n;
  document.body.dataset.recentShown = String(n);
}

function renderQueues(resetPage = true) {
  const list = $('queue-list');
  if (!list) return;
  const lang = S.langs[S.queueLang % S.langs.length];
  // Only the display's zones' services, when the daemon says which they are.
  let allowed = null;
  if (S.shown) {
    const ids = [...S.shown].flatMap((z) => (S.zones.get(z) || {}).services || []);
    if (ids.length) allowed = new Set(ids);
  }
  // Queues with people in them first (the busiest first): they are what a waiting customer looks for.
  const rows = [...S.queues.values()]
    .filter((q) => !allowed || allowed.has(q.id))
    .sort((a, b) => (Number(b.waiting) || 0) - (Number(a.waiting) || 0))
    .map((q) => {
      const li = document.createElement('li');
      li.className = 'queue-item' + (q.accepting === false ? ' not-accepting' : '');
      li.dataset.queue = q.id;
      li.lang = lang;
      const name = document.createElement('span');
      name.className = 'queue-name';
      name.textContent = pick(q.name, lang);
      const count = document.createElement('span');
      count.className = 'queue-count';
      count.textContent = q.waiting ? tr(S.strings, lang, 'waiting', { n: q.waiting }) : tr(S.strings, lang, 'waiting_none');
      const eta = document.createElement('span');
      eta.className = 'queue-eta';
      if (q.accepting === false && !q.waiting) eta.textContent = tr(S.strings, lang, 'not_accepting');
      else if (q.waiting && q.eta_minutes !== null && q.eta_minutes !== undefined) eta.textContent = tr(S.strings, lang, 'eta', { m: q.eta_minutes });
      else eta.textContent = '';
      li.append(name, count, eta);
      return li;
    });
  list.replaceChildren(...rows);
  if (S.queuePager) S.queuePager.update(resetPage);
}

boot().catch((e) => {
  console.error(e);
  message('connecting');
});
