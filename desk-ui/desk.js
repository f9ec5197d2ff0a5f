// The desk: one counter, one member of staff. Signs in, chooses a counter of the user's units, opens it,
// and then calls, serves, passes on, transfers, parks and brings back customers. The daemon holds the
// state: this page shows the counter:{counter} topic live and resynchronises after any gap.
import { Live, numberHtml } from '/shared/vuoro.js';
import {
  t, lang, initLang, el, keepPlace, clock, minutes, announce, showMessage, errorText, pick,
  session, whoAmI, staffApi, showLogin, resumeSession, showScreen as showCommonScreen, signOut, isSupervisor,
  hasUnit, idleLock, queryNumber,
  loadSite, loadServices, ApiError, alertOf, printerOf,
} from '/desk/common.js';

const $ = (id) => document.getElementById(id);

const state = {
  site: null, // {id, name, languages, ...}
  services: new Map(), // id -> service (names in the UI language)
  counters: [], // GET /counters
  units: new Map(), // id -> name object or string
  languages: [], // customer languages of the site
  counterId: null,
  counter: null, // Counter view from the daemon
  counterSeq: 0, // the event seq that state.counter reflects: older states on their way are ignored
  queue: [],
  parked: [],
  noShows: [],
  alerts: new Map(), // id -> alert
  printers: new Map(), // device -> status object
  live: null,
  liveStatus: 'connecting',
  clockOffset: 0, // server time - local time, ms
  noShowMinutes: 15,
  pending: null, // an action that failed with 401: retried after signing in again, if still apt
  busy: false,
  queued: [], // shortcuts pressed while an action was on its way, done in order after it
  resyncTimer: null,
};

const KEYS_KEY = 'vuoro.desk.keys';
const DEVICE_KEY = 'vuoro.desk.device';

// ---- time ---------------------------------------------------------------------------------------

const serverNow = () => Date.now() + state.clockOffset;
function noteServerTime(at) {
  const ms = Date.parse(at);
  if (Number.isFinite(ms)) {
    const off = ms - Date.now();
    // Only move the offset forward (an event can be delivered late, never early).
    if (off > state.clockOffset || Math.abs(off - state.clockOffset) > 60000) state.clockOffset = off;
  }
}

/** A ticket as the page keeps it: `base` is when (local clock) its wait started, for the live timer. */
function keep(tk) {
  const ticket = { ...tk };
  ticket._base = Date.now() - (Number(tk.waited_seconds) || 0) * 1000;
  return ticket;
}

// ---- names --------------------------------------------------------------------------------------

function serviceName(id) {
  const s = state.services.get(id);
  if (!s) return id || '';
  // The site topic names services as staff know them; the public list uses a neutral name for sensitive ones.
  return (s._names && pick(s._names, lang)) || s.staff_name || s.name || id;
}
function counterById(id) {
  return state.counters.find((c) => c.id === id);
}
function counterName(id) {
  const c = counterById(id);
  return c ? pick(c.name, lang) : id;
}
function unitName(id) {
  const u = state.units.get(id);
  if (!u) return id;
  return typeof u === 'string' ? u : pick(u, lang);
}

/** Finland's national languages: a customer in any other language may need an interpreter. */
const NATIONAL_LANGS = new Set(['fi', 'sv']);

/** A language's name in the staff UI language ("arabia", "arabiska", "Arabic"); the code if unknown. */
function langName(code) {
  if (!code) return '–';
  try {
    return new Intl.DisplayNames([lang], { type: 'language' }).of(code) || code;
  } catch (e) {
    return code;
  }
}

/** The customer's language as a badge: marked when it is not Finnish or Swedish. */
function langBadge(code) {
  const other = !!code && !NATIONAL_LANGS.has(code);
  return el('span', { class: 'lang-badge' + (other ? ' lang-other' : ''), dataset: { lang: code || '' }, title: other ? t('lang_other_hint') : null },
    el('span', { class: 'lang-name' }, langName(code)),
    other ? el('span', { class: 'sr-only' }, ' (' + t('lang_other_hint') + ')') : null,
  );
}

/** "Transferred from Counter 5" / "from Kela benefits"; the daemon sends "counter:c5" or "service:x". */
function fromText(v) {
  if (!v) return null;
  let kind;
  let id;
  if (typeof v === 'object') {
    kind = v.counter ? 'counter' : 'service';
    id = v.counter || v.service;
  } else {
    const i = v.indexOf(':');
    kind = i > 0 ? v.slice(0, i) : 'service';
    id = i > 0 ? v.slice(i + 1) : v;
  }
  return kind === 'counter' ? counterName(id) : serviceName(id);
}

/** The notes of a ticket: needs assistance, transferred, passed on, sent to this counter. */
function notes(tk) {
  const out = [];
  if (tk.priority === 'assist') out.push(el('span', { class: 'badge assist' }, t('needs_assistance')));
  if (tk.target_counter && tk.target_counter === state.counterId) out.push(el('span', { class: 'badge' }, t('sent_here')));
  const tf = fromText(tk.transferred_from);
  if (tf) out.push(el('span', { class: 'badge info' }, t('transferred_from', { from: tf })));
  if (tk.passed_on_from) out.push(el('span', { class: 'badge info' }, t('passed_on_from', { from: serviceName(tk.passed_on_from) })));
  if (tk.channel === 'staff') out.push(el('span', { class: 'badge plain' }, t('issued_by_staff')));
  return out;
}

// ---- screens ------------------------------------------------------------------------------------

function showScreen(name) {
  showCommonScreen(name);
  $('change-counter').hidden = name !== 'desk';
  $('close-counter').hidden = name !== 'desk';
  $('where').textContent = name === 'desk' && state.counter ? '· ' + counterName(state.counterId) : '';
}

function hashParams() {
  return new URLSearchParams(location.hash.slice(1));
}
function setHash(counter) {
  const p = new URLSearchParams();
  if (state.site) p.set('site', state.site.id);
  if (counter) p.set('counter', counter);
  history.replaceState(null, '', location.pathname + location.search + '#' + p.toString());
}

// ---- start --------------------------------------------------------------------------------------

async function boot() {
  await initLang($('lang'), onLangChange);
  wireStatic();
  session.onSignedIn = afterSignIn;
  session.onSignedOut = () => {
    if (state.live) state.live.stop();
    state.live = null;
    setConn(null);
    for (const d of document.querySelectorAll('dialog[open]')) if (d.id !== 'idle-dialog') d.close();
  };
  idleLock({
    idleSecs: queryNumber('idle', 600),
    warnSecs: queryNumber('warn', Math.min(60, Math.max(5, Math.floor(queryNumber('idle', 600) / 4)))),
    isActive: () => !!session.user,
  });
  setInterval(tick, 1000);
  await resumeSession((user) => afterSignIn(user, { relogin: null }));
}

async function afterSignIn(user, { relogin }) {
  showMessage('');
  $('supervisor-link').hidden = !isSupervisor(user);
  try {
    await loadSiteData();
  } catch (e) {
    showMessage(errorText(e), 'error');
    return;
  }
  const wanted = state.counterId || hashParams().get('counter');
  if (wanted) {
    const ok = await openCounter(wanted, { relogin });
    if (ok) return;
  }
  showChooser();
}

async function loadSiteData() {
  const wantedSite = hashParams().get('site');
  state.site = await loadSite(wantedSite);
  const sid = encodeURIComponent(state.site.id);
  const [services, counters, units, languages] = await Promise.all([
    loadServices(state.site.id),
    staffApi(`/api/v1/sites/${sid}/counters`),
    staffApi(`/api/v1/sites/${sid}/units`).catch(() => ({ units: [] })),
    staffApi(`/api/v1/sites/${sid}/languages`).catch(() => ({ languages: [] })),
  ]);
  state.services = new Map(services.map((s) => [s.id, s]));
  state.counters = counters.counters || [];
  state.units = new Map((units.units || []).map((u) => [u.id, u.name]));
  state.languages = languages.languages || [];
  if (state.site.no_show_return_minutes) state.noShowMinutes = state.site.no_show_return_minutes;
}

async function onLangChange() {
  if (!session.user || !state.site) return;
  try {
    const services = await loadServices(state.site.id);
    state.services = new Map(services.map((s) => [s.id, s]));
  } catch (e) {
    // Names stay in the previous language until the next load.
  }
  if (!$('counter-list').closest('[data-screen]').hidden) showChooser();
  renderAll();
}

// ---- choosing a counter -------------------------------------------------------------------------

function myCounters() {
  return state.counters.filter((c) => hasUnit(session.user, c.unit));
}

function showChooser(note) {
  renderChooser(note);
  // Fresh states (open, by whom) for the list.
  staffApi(`/api/v1/sites/${encodeURIComponent(state.site.id)}/counters`)
    .then((r) => {
      if ($('counter-list').closest('[data-screen]').hidden) return;
      state.counters = r.counters || state.counters;
      renderChooser(null, true);
    })
    .catch(() => {});
}

function renderChooser(note, refresh = false) {
  if (state.live) state.live.stop();
  state.live = null;
  setConn(null);
  state.counterId = null;
  state.counter = null;
  setHash(null);
  const list = $('counter-list');
  list.replaceChildren();
  const mine = myCounters();
  const byUnit = new Map();
  for (const c of mine) {
    if (!byUnit.has(c.unit)) byUnit.set(c.unit, []);
    byUnit.get(c.unit).push(c);
  }
  for (const [unit, counters] of byUnit) {
    const hid = 'unit-' + unit;
    list.append(
      el('section', { class: 'unit', 'aria-labelledby': hid },
        el('h2', { id: hid }, unitName(unit)),
        el('ul', { class: 'counter-buttons' },
          counters.map((c) =>
            el('li', {},
              el('button', { type: 'button', class: 'counter-choice', dataset: { counter: c.id }, onclick: () => openCounter(c.id, {}) },
                el('span', { class: 'name' }, pick(c.name, lang)),
                el('span', { class: 'loc' }, pick(c.location, lang)),
                el('span', { class: 'state state-' + c.state }, counterStateText(c)),
              ),
            ),
          ),
        ),
      ),
    );
  }
  if (!mine.length) list.append(el('p', { class: 'empty' }, t('no_counters')));
  if (refresh) return;
  showScreen('choose');
  if (note) showMessage(note, 'error');
}

function counterStateText(c) {
  if (c.state === 'closed' || !c.state) return t('state_closed');
  const who = c.user ? t('by_user', { user: c.user }) : '';
  return (t('state_' + c.state) + ' ' + who).trim();
}

/** Opens a counter (records this user on it) and shows the desk. Returns false when not allowed. */
async function openCounter(id, { relogin } = {}) {
  const c = counterById(id);
  if (!c || !hasUnit(session.user, c.unit)) {
    showChooser(t('not_your_counter', { counter: c ? pick(c.name, lang) : id }));
    return true;
  }
  let res;
  try {
    res = await staffApi(`/api/v1/counters/${encodeURIComponent(id)}/open`, { method: 'POST', body: {} });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return true; // the login form is back
    if (e instanceof ApiError && e.status === 403) {
      showChooser(t('not_your_counter', { counter: pick(c.name, lang) }));
      return true;
    }
    showMessage(errorText(e), 'error');
    return false;
  }
  const changed = state.counterId !== id;
  state.counterId = id;
  setHash(id);
  if (changed) {
    state.counterSeq = 0;
    state.queue = [];
    state.parked = [];
    state.noShows = [];
  }
  setCounter(res.counter, res.seq);
  showScreen('desk');
  renderAll();
  startLive();
  if (!relogin) showMessage('');
  else showMessage(t('welcome_back', { counter: counterName(id) }), 'info');
  // Something that failed because the session had ended: do it now if the counter is as it was.
  const p = state.pending;
  state.pending = null;
  if (p && p.counter === id && (currentTicket()?.id ?? null) === p.current) await act(p.verb, p.body, p.label);
  $('btn-next').focus();
  return true;
}

// ---- live ---------------------------------------------------------------------------------------

function startLive() {
  if (state.live) state.live.stop();
  const live = new Live({
    onSnapshot: (topic, data, seq) => onSnapshot(topic, data, seq),
    onEvent: (topic, event, seq) => onEvent(topic, event, seq),
    onStatus: (s) => setConn(s),
    onError: (msg) => onLiveError(msg),
  });
  state.live = live;
  live.subscribe(`counter:${state.counterId}`);
  live.subscribe(`site:${state.site.id}`);
  setConn('connecting');
  live.start();
}

function resync() {
  clearTimeout(state.resyncTimer);
  state.resyncTimer = null;
  if (!state.live) return;
  const topic = `counter:${state.counterId}`;
  state.live.unsubscribe(topic);
  state.live.subscribe(topic);
}
function resyncSoon() {
  if (!state.resyncTimer) state.resyncTimer = setTimeout(resync, 800);
}

let authCheck = null;
async function checkSession() {
  if (authCheck) return authCheck;
  authCheck = (async () => {
    try {
      const u = await whoAmI();
      if (!u && session.user) showLogin('session_expired');
    } catch (e) {
      // The daemon is away: keep waiting, the client reconnects by itself.
    } finally {
      setTimeout(() => (authCheck = null), 3000);
    }
  })();
  return authCheck;
}

function onLiveError(msg) {
  if (msg.code === 'forbidden' || msg.code === 'unauthenticated') {
    if (msg.topic === `counter:${state.counterId}`) {
      checkSession().then(() => {
        if (session.user) showChooser(t('not_your_counter', { counter: counterName(state.counterId) }));
      });
    } else checkSession();
  }
}

function setConn(s) {
  state.liveStatus = s;
  const box = $('conn');
  if (!s) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  box.hidden = false;
  box.className = 'conn conn-' + s;
  box.textContent = t('conn_' + s);
  if (s === 'stale') checkSession();
  // A socket refused at the door (an ended session) never becomes live: ask the daemon who we are.
  clearTimeout(setConn.timer);
  if (s !== 'live') setConn.timer = setTimeout(() => box.classList.contains('conn-live') || checkSession(), 6000);
}

function onSnapshot(topic, data, seq) {
  if (topic.startsWith('counter:')) {
    if (topic !== `counter:${state.counterId}`) return;
    setCounter(data.counter, seq);
    state.queue = data.queue.map(keep);
    state.parked = data.parked.map(keep);
    state.noShows = data.no_shows.map(keep);
    renderAll();
  } else if (topic.startsWith('site:')) {
    for (const sv of data.services) {
      const mine = state.services.get(sv.id);
      if (mine) mine._names = sv.name;
    }
    state.alerts = new Map(data.alerts.map((a) => [a.id, a]));
    state.printers = new Map(data.printers.map((p) => [p.device, p]));
    // Fresher states for the transfer list.
    for (const c of data.counters) {
      const mine = counterById(c.id);
      if (mine) Object.assign(mine, { state: c.state, user: c.user });
    }
    renderAlerts();
  }
}

function onEvent(topic, ev, seq) {
  if (ev.at) noteServerTime(ev.at);
  if (topic === `counter:${state.counterId}`) applyCounterEvent(ev, seq);
  else if (topic.startsWith('site:')) applySiteEvent(ev);
}

/**
 * Applies one event of the counter topic (a staff event: `counter` is a counter's id, `counter_state` the
 * counter after the event, `ticket` the StaffTicket after it, or only its id when the ticket was gone by
 * then: a day's rollover); anything it cannot place exactly brings a fresh snapshot.
 */
function applyCounterEvent(ev, seq) {
  const cv = ev.counter_state;
  if (cv && cv.id === state.counterId) setCounter(cv, seq);
  if (ev.kind === 'counter_closed' && ev.counter === state.counterId) {
    showChooser(t('counter_closed_elsewhere', { counter: counterName(state.counterId) }));
    return;
  }
  if (ev.kind === 'counter_opened' && ev.counter === state.counterId) {
    const user = ev.user;
    if (user && session.user && user !== session.user.username) showMessage(t('counter_taken', { user }), 'error');
  }
  const tk = ev.ticket ?? null;
  if (tk) {
    const wasQueued = state.queue.some((x) => x.id === tk.id);
    upsert(tk, seq);
    // Where a ticket new to this queue stands (tiers, transfers to the front) is known to the daemon:
    // the page places it as best it can and takes a fresh snapshot a moment later.
    if (!wasQueued && state.queue.some((x) => x.id === tk.id)) resyncSoon();
  } else if (!['counter_opened', 'counter_closed', 'service_accepting'].includes(ev.kind)) {
    resyncSoon();
  }
  renderAll();
}

function applySiteEvent(ev) {
  if (ev.kind === 'alert') {
    const a = alertOf(ev);
    const isNew = !state.alerts.has(a.id);
    state.alerts.set(a.id, a);
    if (isNew) announce(alertText(a), true);
    renderAlerts();
  } else if (ev.kind === 'alert_cleared') {
    state.alerts.delete(ev.alert);
    renderAlerts();
  } else if (ev.kind === 'printer_status') {
    state.printers.set(ev.device, printerOf(state.printers.get(ev.device), ev));
    renderAlerts();
  } else if (ev.counter_state) {
    const c = counterById(ev.counter_state.id);
    if (c) Object.assign(c, { state: ev.counter_state.state, user: ev.counter_state.user });
  }
}

/**
 * Takes a counter state from an answer (seq = the answer's seq), an event or a snapshot. An answer can
 * overtake the WebSocket messages of earlier commits: a state older than the one shown is ignored.
 */
function setCounter(cv, seq) {
  if (!cv) return;
  if (typeof seq === 'number') {
    if (seq < state.counterSeq) return;
    state.counterSeq = seq;
  }
  const prev = state.counter;
  state.counter = { ...cv };
  const cur = cv.current;
  if (cur && typeof cur === 'object' && !cur.state && prev?.current?.id === cur.id) state.counter.current = { ...prev.current, ...cur };
  else if (cur && typeof cur === 'object') state.counter.current = keep(cur);
  const c = counterById(cv.id);
  if (c) Object.assign(c, { state: cv.state, user: cv.user });
}

function currentTicket() {
  const c = state.counter;
  if (!c || !c.current || c.state === 'open' || c.state === 'closed') return null;
  return c.current;
}

function serves(service) {
  const list = state.counter?.services || counterById(state.counterId)?.services || [];
  return list.some((s) => (typeof s === 'string' ? s : s.service || s.id) === service);
}

function removeEverywhere(id) {
  state.queue = state.queue.filter((x) => x.id !== id);
  state.parked = state.parked.filter((x) => x.id !== id);
  state.noShows = state.noShows.filter((x) => x.id !== id);
}

/**
 * Puts a ticket where it belongs for this counter after a change; `seq` (from an event) older than the
 * counter state shown leaves that state alone.
 */
function upsert(tk, seq) {
  const ticket = keep(tk);
  const old = state.queue.find((x) => x.id === tk.id);
  removeEverywhere(tk.id);
  const me = state.counterId;
  if (tk.state === 'waiting') {
    const forMe = tk.target_counter ? tk.target_counter === me : serves(tk.service);
    if (forMe) {
      if (old) {
        // Unchanged place; keep the list steady.
        const i = state.queue.findIndex((x) => rank(x) > rank(ticket));
        state.queue.splice(i < 0 ? state.queue.length : i, 0, ticket);
      } else insertByRank(ticket);
    }
  } else if (tk.state === 'parked' && tk.counter === me) state.parked.push(ticket);
  else if (tk.state === 'no_show' && tk.counter === me) state.noShows.unshift(ticket);
  const c = state.counter;
  if (!c || (typeof seq === 'number' && seq < state.counterSeq)) return;
  if ((tk.state === 'called' || tk.state === 'serving') && tk.counter === me) {
    c.current = ticket;
    c.state = tk.state === 'called' ? 'calling' : 'serving';
  } else if (c.current && c.current.id === tk.id) {
    c.current = null;
    if (c.state !== 'closed') c.state = 'open';
  }
}

/** Call order as far as the page knows it: sent to this counter, then assistance, then oldest. */
function rank(tk) {
  return [tk.target_counter === state.counterId ? 0 : 1, tk.priority === 'assist' ? 0 : 1];
}
function insertByRank(tk) {
  const r = rank(tk);
  const i = state.queue.findIndex((x) => {
    const q = rank(x);
    return q[0] > r[0] || (q[0] === r[0] && q[1] > r[1]);
  });
  state.queue.splice(i < 0 ? state.queue.length : i, 0, tk);
}

// ---- rendering ----------------------------------------------------------------------------------

function renderAll() {
  if (!state.counterId) return;
  renderHeader();
  renderCurrent();
  renderQueue();
  renderLists();
  renderAlerts();
  updateButtons();
}

function renderHeader() {
  const c = counterById(state.counterId);
  $('counter-name').textContent = c ? pick(c.name, lang) : state.counterId;
  $('counter-location').textContent = c ? pick(c.location, lang) : '';
  $('where').textContent = '· ' + counterName(state.counterId);
  const services = (state.counter?.services || c?.services || []).map((s) => serviceName(typeof s === 'string' ? s : s.service || s.id));
  $('queue-services').textContent = services.length ? t('serves', { services: services.join(', ') }) : '';
}

function renderCurrent() {
  const box = $('current');
  const tk = currentTicket();
  box.replaceChildren();
  if (!tk) {
    box.className = 'current idle';
    box.append(el('p', { class: 'idle-text' }, state.counter?.state === 'closed' ? t('counter_is_closed') : t('no_customer')));
    return;
  }
  const serving = state.counter.state === 'serving';
  box.className = 'current ' + (serving ? 'serving' : 'calling');
  const since = serving ? tk.served_at || tk.called_at : tk.called_at;
  box.dataset.since = since || '';
  box.append(
    el('p', { class: 'current-number', id: 'current-number' }, numberHtml(tk.number)),
    el('p', { class: 'current-service' }, serviceName(tk.service)),
    el('p', { class: 'current-lang', id: 'current-lang' }, t('customer_lang') + ': ', langBadge(tk.lang)),
    el('p', { class: 'current-state' },
      el('span', { class: 'state-word' }, serving ? t('state_serving') : t('state_calling')),
      ' ',
      el('span', { class: 'timer', id: 'current-timer' }, since ? clock((serverNow() - Date.parse(since)) / 1000) : ''),
      tk.recalls ? el('span', { class: 'recalls' }, ' · ' + t('recalled_times', { n: tk.recalls })) : null,
    ),
    el('p', { class: 'notes' }, notes(tk)),
  );
}

function renderQueue() {
  const body = $('queue-body');
  keepPlace(body, () => body.replaceChildren(
    ...state.queue.map((tk) =>
      el('tr', { dataset: { ticket: tk.id, number: tk.number }, class: tk.priority === 'assist' ? 'assist' : '' },
        el('th', { scope: 'row' }, numberHtml(tk.number)),
        el('td', { class: 'svc' }, el('span', { class: 'svc-name' }, serviceName(tk.service)), notes(tk).length ? el('span', { class: 'notes' }, notes(tk)) : null),
        el('td', { class: 'cust-lang' }, langBadge(tk.lang)),
        el('td', { class: 'waited', dataset: { base: tk._base } }, minutes((Date.now() - tk._base) / 1000)),
        el('td', { class: 'row-actions' },
          el('button', { type: 'button', class: 'small', dataset: { keep: 'call:' + tk.id }, 'aria-label': t('call_ticket', { number: tk.number }), onclick: () => act('call', { ticket: tk.id }, t('call_ticket', { number: tk.number })), disabled: !isOpen() }, t('call')),
          el('button', { type: 'button', class: 'small subtle', dataset: { keep: 'transfer:' + tk.id }, 'aria-label': t('transfer_ticket', { number: tk.number }), onclick: () => openTransfer(tk) }, t('transfer_short')),
        ),
      ),
    ),
  ));
  $('queue-table').hidden = state.queue.length === 0;
  $('queue-empty').hidden = state.queue.length > 0;
  $('queue-count').textContent = state.queue.length ? `(${state.queue.length})` : '';
}

function noShowReturnable(tk) {
  if (!tk.ended_at) return true;
  return serverNow() - Date.parse(tk.ended_at) < state.noShowMinutes * 60000;
}

function renderLists() {
  const parked = $('parked-list');
  keepPlace(parked, () => parked.replaceChildren(
    ...state.parked.map((tk) =>
      el('li', { dataset: { ticket: tk.id, number: tk.number } },
        el('span', { class: 'num' }, numberHtml(tk.number)),
        el('span', { class: 'svc' }, serviceName(tk.service), ' · ', langBadge(tk.lang)),
        el('span', { class: 'btns' },
          el('button', { type: 'button', class: 'small', dataset: { keep: 'back:' + tk.id }, 'aria-label': t('return_to_counter_n', { number: tk.number }), disabled: !isOpen() || !!currentTicket(), onclick: () => act('return', { ticket: tk.id, to: 'counter' }, t('return_to_counter_n', { number: tk.number })) }, t('return_to_counter')),
          el('button', { type: 'button', class: 'small subtle', dataset: { keep: 'queue:' + tk.id }, 'aria-label': t('return_to_queue_n', { number: tk.number }), onclick: () => act('return', { ticket: tk.id, to: 'queue' }, t('return_to_queue_n', { number: tk.number })) }, t('return_to_queue')),
        ),
      ),
    ),
  ));
  $('parked-empty').hidden = state.parked.length > 0;
  $('parked-count').textContent = state.parked.length ? `(${state.parked.length})` : '';

  const ns = state.noShows.filter(noShowReturnable);
  keepPlace($('noshow-list'), () => $('noshow-list').replaceChildren(
    ...ns.map((tk) =>
      el('li', { dataset: { ticket: tk.id, number: tk.number } },
        el('span', { class: 'num' }, numberHtml(tk.number)),
        el('span', { class: 'svc' }, serviceName(tk.service), ' · ', langBadge(tk.lang)),
        el('span', { class: 'btns' },
          el('button', { type: 'button', class: 'small', dataset: { keep: 'back:' + tk.id }, 'aria-label': t('bring_back_n', { number: tk.number }), disabled: !isOpen() || !!currentTicket(), onclick: () => act('return', { ticket: tk.id, to: 'counter' }, t('bring_back_n', { number: tk.number })) }, t('bring_back')),
          el('button', { type: 'button', class: 'small subtle', dataset: { keep: 'queue:' + tk.id }, 'aria-label': t('return_to_queue_n', { number: tk.number }), onclick: () => act('return', { ticket: tk.id, to: 'queue' }, t('return_to_queue_n', { number: tk.number })) }, t('return_to_queue')),
        ),
      ),
    ),
  ));
  $('noshow-empty').hidden = ns.length > 0;
  $('noshow-count').textContent = ns.length ? `(${ns.length})` : '';
  $('noshow-hint').textContent = t('noshow_hint', { n: state.noShowMinutes });
}

/** "kiosk-1 (entrance): out of paper", in the UI language (the place when the daemon gives one). */
function printerText(device, status) {
  const place = state.printers.get(device)?.location;
  const placeText = place ? pick(place, lang) : '';
  const st = String(status || 'failed');
  return t('printer_alert', {
    device: placeText ? t('device_place', { device, place: placeText }) : device,
    fault: t('fault_' + st) !== 'fault_' + st ? t('fault_' + st) : st,
  });
}

function alertText(a) {
  if (a.kind === 'printer' && a.device) {
    const fault = state.printers.has(a.device) ? printerFault(state.printers.get(a.device)) : null;
    if (fault) return printerText(a.device, fault);
    return a.message || printerText(a.device, 'failed');
  }
  const where = a.device ? t('alert_from_device', { device: a.device }) : a.service ? serviceName(a.service) : '';
  const known = t('alert_' + a.kind) !== 'alert_' + a.kind;
  // The daemon's own message is in English: shown only for kinds this page cannot word itself.
  return [known ? t('alert_' + a.kind) : a.kind, where, known ? null : a.message].filter(Boolean).join(' · ');
}

/** A printer's status word when it is not `online` (a site snapshot's or `printer_status` event's printer). */
function printerFault(p) {
  return p.status === 'online' ? null : p.status;
}

function renderAlerts() {
  const list = $('alert-list');
  if (!list) return;
  const items = [];
  const alerts = [...state.alerts.values()].sort((a, b) => String(b.at).localeCompare(String(a.at)));
  for (const a of alerts) {
    items.push(
      el('li', { class: 'alert alert-' + a.kind, dataset: { alert: a.id } },
        el('span', { class: 'alert-text' }, alertText(a)),
        a.at ? el('span', { class: 'alert-time' }, new Date(a.at).toLocaleTimeString(lang === 'en' ? 'en-GB' : lang, { hour: '2-digit', minute: '2-digit' })) : null,
        el('button', { type: 'button', class: 'small', dataset: { keep: 'ack:' + a.id }, 'aria-label': t('ack_alert_n', { what: alertText(a) }), onclick: () => ackAlert(a) }, a.kind === 'help_request' ? t('ack_help') : t('ack')),
      ),
    );
  }
  for (const [device, p] of state.printers) {
    const fault = printerFault(p);
    if (!fault) continue;
    if (alerts.some((a) => a.kind === 'printer' && a.device === device)) continue;
    items.push(el('li', { class: 'alert alert-printer', dataset: { printer: device } }, el('span', { class: 'alert-text' }, printerText(device, fault))));
  }
  keepPlace(list, () => list.replaceChildren(...items));
  $('alerts-empty').hidden = items.length > 0;
  $('alert-count').textContent = items.length ? `(${items.length})` : '';
  list.closest('.panel').classList.toggle('has-alerts', items.length > 0);
  const dl = $('device-list');
  if (dl) dl.replaceChildren(...[...state.printers.keys()].map((d) => el('option', { value: d })));
}

async function ackAlert(a) {
  try {
    await staffApi(`/api/v1/sites/${encodeURIComponent(state.site.id)}/alerts/${encodeURIComponent(a.id)}/ack`, { method: 'POST', body: {} });
    state.alerts.delete(a.id);
    renderAlerts();
    announce(t('alert_acked'));
  } catch (e) {
    showMessage(errorText(e), 'error');
  }
}

function isOpen() {
  return !!state.counter && state.counter.state !== 'closed';
}

/** Which actions make sense now; the daemon checks again. */
function allowed(action) {
  const cur = currentTicket();
  const st = state.counter?.state;
  switch (action) {
    case 'call-next':
    case 'call-number':
      return isOpen();
    case 'recall':
    case 'start':
    case 'no-show':
      return !!cur && st === 'calling';
    case 'finish':
    case 'pass-on':
    case 'park':
    case 'transfer':
      return !!cur;
    case 'issue':
    case 'reprint':
    case 'help':
    case 'go-queue':
    case 'go-return':
      return true;
    default:
      return false;
  }
}

function updateButtons() {
  for (const b of document.querySelectorAll('[data-screen="desk"] button[data-action]')) b.disabled = !allowed(b.dataset.action) || state.busy;
}

function tick() {
  for (const td of document.querySelectorAll('#queue-body td.waited')) td.textContent = minutes((Date.now() - Number(td.dataset.base)) / 1000);
  const box = $('current');
  const timer = $('current-timer');
  if (timer && box.dataset.since) timer.textContent = clock((serverNow() - Date.parse(box.dataset.since)) / 1000);
}

// ---- actions ------------------------------------------------------------------------------------

/**
 * Runs a counter verb. On 401 the action is remembered and done after signing in again, provided the
 * counter still has the same current ticket (an error never changes anything on the daemon).
 */
async function act(verb, body = {}, label = null) {
  if (!state.counterId || state.busy) return null;
  state.busy = true;
  updateButtons();
  const before = currentTicket();
  try {
    const res = await staffApi(`/api/v1/counters/${encodeURIComponent(state.counterId)}/${verb}`, { method: 'POST', body });
    showMessage('');
    if (res === null) {
      // 204: nobody waits (call-next finished the current ticket, if any).
      if (before) upsert({ ...before, state: 'finished', counter: state.counterId });
      state.counter.current = null;
      state.counter.state = 'open';
      showMessage(t('nobody_waiting'), 'info');
    } else {
      if (res.counter) setCounter(res.counter, res.seq);
      if (res.ticket) upsert(res.ticket);
      announce(doneText(verb, body, res.ticket, before));
    }
    renderAll();
    return res;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      state.pending = { verb, body, label, counter: state.counterId, current: before?.id ?? null };
      state.queued = [];
      return null;
    }
    state.queued = []; // what was pressed after a refused action was meant for a different state
    showMessage((label ? label + ': ' : '') + errorText(e), 'error');
    if (e instanceof ApiError && e.status === 409) resync();
    if (e instanceof ApiError && e.status === 403) showChooser(t('not_your_counter', { counter: counterName(state.counterId) }));
    return null;
  } finally {
    state.busy = false;
    // The next queued key at once, not in a later task: a key pressed in between (N then S while an
    // earlier action was on its way) must queue behind it, not be checked against the state before it.
    const queued = state.queued.shift();
    if (queued) runAction(queued, true);
    updateButtons();
    // The button pressed may have gone with its row: keep the keyboard at the desk.
    const a = document.activeElement;
    if ((!a || a === document.body) && !document.querySelector('dialog[open]') && !$('btn-next').disabled) $('btn-next').focus({ preventScroll: true });
  }
}

function doneText(verb, body, tk, before) {
  const n = tk?.number || before?.number || '';
  switch (verb) {
    case 'call-next':
    case 'call':
    case 'return':
      if (tk && tk.state === 'called') return t('done_called', { number: n });
      return t('done_returned', { number: n });
    case 'recall':
      return t('done_recalled', { number: n });
    case 'start':
      return t('done_started', { number: n });
    case 'finish':
      return body.next_service ? t('done_passed_on', { number: n, service: serviceName(body.next_service) }) : t('done_finished', { number: n });
    case 'no-show':
      return t('done_no_show', { number: n });
    case 'park':
      return t('done_parked', { number: n });
    case 'transfer':
      return t('done_transferred', { number: n, to: body.counter ? counterName(body.counter) : serviceName(body.service) });
    default:
      return '';
  }
}

/**
 * Runs a shortcut or button action. One pressed while another was on its way (`queued`) is sent as it
 * was asked, without the page's own check: the page may not have every WebSocket message of the previous
 * action yet, and the daemon checks again (a refusal is shown and the page resyncs).
 */
function runAction(action, queued = false) {
  if (state.busy) {
    // A key pressed while the previous action is on its way (N then S) is done right after it.
    if (state.queued.length < 3) state.queued.push(action);
    return;
  }
  if (!queued && !allowed(action)) return;
  // After a dialog or a jump to a list, what comes next is the user's new choice.
  if (!['call-next', 'recall', 'start', 'finish', 'no-show', 'park'].includes(action)) state.queued = [];
  switch (action) {
    case 'call-next':
      return act('call-next', {}, t('call_next'));
    case 'recall':
    case 'start':
    case 'finish':
    case 'no-show':
    case 'park':
      return act(action, {}, t(action.replace('-', '_')));
    case 'pass-on':
      return openPassOn();
    case 'transfer':
      return openTransfer(null);
    case 'call-number':
      return openNumber();
    case 'issue':
      return openIssue();
    case 'reprint':
      return openReprint();
    case 'help':
      return openHelp();
    case 'go-queue':
      return goTo('#queue-body button:not(:disabled)', 'queue_empty');
    case 'go-return':
      return goTo('#parked-list button:not(:disabled), #noshow-list button:not(:disabled)', 'noshow_empty');
  }
}

/**
 * Fills a service choice, grouped by unit, each with its queue length. It starts on an empty "Choose a
 * service" entry, so that nothing is sent anywhere until a person picks a service.
 */
function fillServiceSelect(select, { exclude, only, keep = false } = {}) {
  const prev = keep ? select.value : '';
  const all = [...state.services.values()].filter((s) => s.id !== exclude && (!only || only(s)));
  const groups = new Map();
  for (const s of all) {
    const u = s.unit_name || unitName(s.unit);
    if (!groups.has(u)) groups.set(u, []);
    groups.get(u).push(s);
  }
  const label = (s) => t(s.accepting === false ? 'service_option_closed' : 'service_option', { service: serviceName(s.id), n: Number(s.waiting) || 0 });
  select.replaceChildren(
    el('option', { value: '' }, t('choose_service')),
    ...[...groups].map(([u, list]) => el('optgroup', { label: u }, list.map((s) => el('option', { value: s.id }, label(s))))),
  );
  select.value = prev && all.some((s) => s.id === prev) ? prev : '';
}

/** The queue lengths as they are now, for the service choices (kept as they were if the daemon is away). */
async function refreshServiceCounts() {
  try {
    const list = await loadServices(state.site.id);
    for (const s of list) state.services.set(s.id, { ...(state.services.get(s.id) || {}), ...s, _names: state.services.get(s.id)?._names });
  } catch (e) {
    // The figures in hand are shown.
  }
}

/** Keeps `button` disabled until every required choice of its form is made. */
function requireChoice(form, button) {
  const sync = () => {
    const missing = [...form.querySelectorAll('select[required]')].some((sel) => !sel.disabled && !sel.value);
    button.disabled = missing;
  };
  form.oninput = sync;
  sync();
  return sync;
}

function radioValue(form, name) {
  const r = form.querySelector(`input[name="${name}"]:checked`);
  return r ? r.value : null;
}

/** Opens a dialog and resolves with the submit button's value ('ok' or 'cancel'). */
function dialogResult(dialog) {
  return new Promise((resolve) => {
    const form = dialog.querySelector('form');
    const onSubmit = (ev) => {
      const v = ev.submitter ? ev.submitter.value : 'ok';
      if (v === 'ok') {
        ev.preventDefault();
        if (form && !form.reportValidity()) return;
        cleanup();
        dialog.close('ok');
        resolve('ok');
      }
    };
    const onClose = () => {
      cleanup();
      resolve(dialog.returnValue === 'ok' ? 'ok' : 'cancel');
    };
    const cleanup = () => {
      form && form.removeEventListener('submit', onSubmit);
      dialog.removeEventListener('close', onClose);
    };
    form && form.addEventListener('submit', onSubmit);
    dialog.addEventListener('close', onClose);
    dialog.returnValue = '';
    dialog.showModal();
  });
}

async function openPassOn() {
  const cur = currentTicket();
  if (!cur) return;
  const d = $('pass-dialog');
  await refreshServiceCounts();
  $('pass-which').textContent = t('pass_which', { number: cur.number, service: serviceName(cur.service) });
  fillServiceSelect($('pass-service'), { exclude: cur.service });
  requireChoice($('pass-form'), $('pass-submit'));
  if ((await dialogResult(d)) !== 'ok') return;
  if (!$('pass-service').value) return;
  const form = $('pass-form');
  await act('finish', { next_service: $('pass-service').value, position: radioValue(form, 'position') || 'original' }, t('pass_on'));
}

async function openTransfer(ticket) {
  const cur = ticket || currentTicket();
  if (!cur) return;
  const d = $('transfer-dialog');
  const form = $('transfer-form');
  await refreshServiceCounts();
  $('transfer-which').textContent = t('transfer_which', { number: cur.number, service: serviceName(cur.service) });
  fillServiceSelect($('transfer-service'), { exclude: cur.service });
  const counters = state.counters.filter((c) => c.id !== state.counterId);
  const sel = $('transfer-counter');
  sel.replaceChildren(
    el('option', { value: '' }, t('choose_counter')),
    ...counters.map((c) => el('option', { value: c.id }, pick(c.name, lang) + ' — ' + pick(c.location, lang) + (c.state === 'closed' ? ' (' + t('state_closed') + ')' : ''))),
  );
  sel.value = '';
  const check = requireChoice(form, $('transfer-submit'));
  const sync = () => {
    const kind = radioValue(form, 'kind');
    $('transfer-service-field').hidden = kind !== 'service';
    $('transfer-counter-field').hidden = kind !== 'counter';
    // The hidden choice is disabled too, so that it is not required.
    $('transfer-service').disabled = kind !== 'service';
    sel.disabled = kind !== 'counter';
    check();
  };
  form.onchange = sync;
  sync();
  if ((await dialogResult(d)) !== 'ok') return;
  const kind = radioValue(form, 'kind');
  const body = { position: radioValue(form, 'position') || 'original' };
  if (ticket) body.ticket = ticket.id;
  if (kind === 'counter') body.counter = sel.value;
  else body.service = $('transfer-service').value;
  if (!body.counter && !body.service) return;
  await act('transfer', body, t('transfer_short'));
}

async function openNumber() {
  const input = $('number-input');
  input.value = '';
  if ((await dialogResult($('number-dialog'))) !== 'ok') return;
  const number = input.value.trim().toUpperCase().replace(/[\s-]/g, '');
  if (!number) return;
  const known = state.queue.find((x) => x.number === number);
  await act('call', known ? { ticket: known.id } : { number }, t('call_ticket', { number }));
}

async function openIssue() {
  const d = $('issue-dialog');
  const form = $('issue-form');
  fillServiceSelect($('issue-service'), { only: (s) => hasUnit(session.user, s.unit), keep: true });
  const mine = (state.counter?.services || []).map((s) => (typeof s === 'string' ? s : s.service));
  if (mine.length && !$('issue-service').dataset.touched) $('issue-service').value = mine[0];
  $('issue-service').onchange = () => ($('issue-service').dataset.touched = '1');
  const langSel = $('issue-lang');
  if (!langSel.options.length) {
    const langs = state.languages.length ? state.languages : (state.site.languages || ['fi', 'sv', 'en']).map((c) => ({ code: c, name: c }));
    langSel.replaceChildren(...langs.map((l) => el('option', { value: l.code, lang: l.code }, l.name)));
    langSel.value = langs.some((l) => l.code === lang) ? lang : langs[0]?.code;
  }
  $('issue-assist').checked = false;
  $('issue-result').hidden = true;
  const onSubmit = async (ev) => {
    if (!ev.submitter || ev.submitter.value !== 'ok') return;
    ev.preventDefault();
    const button = $('issue-submit');
    button.disabled = true;
    try {
      const tk = await staffApi(`/api/v1/sites/${encodeURIComponent(state.site.id)}/tickets`, {
        method: 'POST',
        headers: { 'Idempotency-Key': 'desk-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 10) },
        body: { service: $('issue-service').value, lang: langSel.value, priority: $('issue-assist').checked ? 'assist' : 'normal' },
      });
      const box = $('issue-result');
      box.hidden = false;
      box.replaceChildren(
        el('p', {}, t('issued_number'), ' ', el('strong', { class: 'issued-number' }, numberHtml(tk.number))),
        el('p', { class: 'hint' }, t('issued_hint', { service: serviceName(tk.service) })),
      );
      $('reprint-number').value = tk.number;
      announce(t('issued_sr', { number: tk.number }));
    } catch (e) {
      const box = $('issue-result');
      box.hidden = false;
      box.replaceChildren(el('p', { class: 'error' }, errorText(e)));
    } finally {
      button.disabled = false;
    }
  };
  form.addEventListener('submit', onSubmit);
  d.addEventListener('close', () => form.removeEventListener('submit', onSubmit), { once: true });
  d.returnValue = '';
  d.showModal();
}

async function findTicketId(number) {
  const all = [currentTicket(), ...state.queue, ...state.parked, ...state.noShows].filter(Boolean);
  const hit = all.find((x) => x.number === number);
  if (hit) return hit.id;
  const r = await staffApi(`/api/v1/sites/${encodeURIComponent(state.site.id)}/tickets`);
  const found = (r.tickets || []).filter((x) => x.number === number);
  return found.length ? found[found.length - 1].id : null;
}

async function openReprint() {
  const cur = currentTicket();
  if (cur) $('reprint-number').value = cur.number;
  const dev = $('reprint-device');
  if (!dev.value) dev.value = localStorage.getItem(DEVICE_KEY) || [...state.printers.keys()][0] || '';
  if ((await dialogResult($('reprint-dialog'))) !== 'ok') return;
  const number = $('reprint-number').value.trim().toUpperCase().replace(/[\s-]/g, '');
  const device = dev.value.trim();
  localStorage.setItem(DEVICE_KEY, device);
  try {
    const id = await findTicketId(number);
    if (id === null) {
      showMessage(t('no_such_number', { number }), 'error');
      return;
    }
    await staffApi(`/api/v1/counters/${encodeURIComponent(state.counterId)}/reprint`, { method: 'POST', body: { ticket: id, device } });
    showMessage(t('reprinted', { number, device }), 'info');
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showMessage(errorText(e), 'error');
  }
}

// ---- keyboard -----------------------------------------------------------------------------------

const SHORTCUTS = [
  { keys: ['n', ' '], label: 'N / ␣', action: 'call-next', text: 'call_next' },
  { keys: ['r'], label: 'R', action: 'recall', text: 'recall' },
  { keys: ['s'], label: 'S', action: 'start', text: 'start' },
  { keys: ['f'], label: 'F', action: 'finish', text: 'finish' },
  { keys: ['p'], label: 'P', action: 'pass-on', text: 'pass_on' },
  { keys: ['x'], label: 'X', action: 'no-show', text: 'no_show' },
  { keys: ['t'], label: 'T', action: 'transfer', text: 'transfer' },
  { keys: ['h'], label: 'H', action: 'park', text: 'park' },
  { keys: ['c'], label: 'C', action: 'call-number', text: 'call_number' },
  { keys: ['i'], label: 'I', action: 'issue', text: 'issue_ticket' },
  { keys: ['e'], label: 'E', action: 'reprint', text: 'reprint' },
  { keys: ['l'], label: 'L', action: 'go-queue', text: 'shortcut_go_queue' },
  { keys: ['b'], label: 'B', action: 'go-return', text: 'shortcut_go_return' },
  { keys: ['?'], label: '?', action: 'help', text: 'shortcuts' },
];

/** Moves the keyboard to the first button of a list (then Tab, Enter), or says the list is empty. */
function goTo(selector, emptyKey) {
  const b = document.querySelector(selector);
  if (b) b.focus();
  else announce(t(emptyKey));
}

const keysEnabled = () => localStorage.getItem(KEYS_KEY) !== 'off';

function onKey(ev) {
  // Never take a key with a modifier (browser and screen reader commands), in a text field, in an open
  // dialog, or outside the desk.
  if (ev.ctrlKey || ev.altKey || ev.metaKey || ev.isComposing) return;
  if (!keysEnabled() || $('main').querySelector('[data-screen="desk"]').hidden) return;
  if (document.querySelector('dialog[open]')) return;
  const target = ev.target;
  if (target && target.closest && target.closest('input, select, textarea, [contenteditable=""], [contenteditable="true"]')) return;
  const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
  // Space activates a focused button: leave that alone.
  if (key === ' ' && target && target.closest && target.closest('button, a, summary, [role="button"]')) return;
  const sc = SHORTCUTS.find((s) => s.keys.includes(key));
  if (!sc) return;
  ev.preventDefault();
  runAction(sc.action);
}

function openHelp() {
  $('help-keys').replaceChildren(...SHORTCUTS.map((s) => el('tr', {}, el('th', { scope: 'row' }, el('kbd', {}, s.label)), el('td', {}, t(s.text)))));
  const box = $('keys-enabled');
  box.checked = keysEnabled();
  box.onchange = () => {
    localStorage.setItem(KEYS_KEY, box.checked ? 'on' : 'off');
    document.body.classList.toggle('no-keys', !box.checked);
  };
  $('help-dialog').showModal();
}

// ---- wiring -------------------------------------------------------------------------------------

function wireStatic() {
  document.body.classList.toggle('no-keys', !keysEnabled());
  for (const b of document.querySelectorAll('[data-screen="desk"] button[data-action]')) b.addEventListener('click', () => runAction(b.dataset.action));
  document.addEventListener('keydown', onKey);
  $('sign-out').addEventListener('click', () => signOut(null));
  $('change-counter').addEventListener('click', () => showChooser());
  $('close-counter').addEventListener('click', async () => {
    if (!state.counterId) return;
    try {
      await staffApi(`/api/v1/counters/${encodeURIComponent(state.counterId)}/close`, { method: 'POST', body: {} });
      const c = counterById(state.counterId);
      if (c) Object.assign(c, { state: 'closed', user: null });
      showChooser();
      showMessage(t('counter_closed_ok'), 'info');
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) showMessage(errorText(e), 'error');
    }
  });
  window.addEventListener('hashchange', () => {
    const wanted = hashParams().get('counter');
    if (session.user && wanted && wanted !== state.counterId) openCounter(wanted, {});
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && session.user) checkSession();
  });
  window.addEventListener('online', () => session.user && checkSession());
}

boot();
