// The supervisor view: the whole site live (site:{site} topic), service actions, device status, alerts
// and today's charts. The daemon filters everything to the supervisor's units.
import { Live, numberHtml } from '/shared/vuoro.js';
import {
  t, lang, initLang, el, keepPlace, clock, minutes, announce, showMessage, errorText, pick,
  session, whoAmI, staffApi, showLogin, resumeSession, showScreen, signOut, isSupervisor, idleLock, queryNumber,
  loadSite, loadServices, ApiError, alertOf, printerOf,
} from '/desk/common.js';
import { barChart } from '/desk/charts.js';

const $ = (id) => document.getElementById(id);

const state = {
  site: null,
  services: [], // GET /services, merged with the live snapshot's figures
  liveServices: new Map(), // id -> service object from the site topic
  counters: new Map(), // id -> counter
  tickets: new Map(), // id -> StaffTicket (+ _base)
  units: new Map(),
  alerts: new Map(),
  printers: new Map(),
  displays: new Map(),
  stats: null,
  live: null,
  clockOffset: 0,
  refreshTimer: null,
  haveTickets: false,
  notices: null, // failed notices of the last 24 hours (GET /sites/{site}/notices); null: notices not set up
  noticesAt: null,
};

const serverNow = () => Date.now() + state.clockOffset;

function keep(tk) {
  return { ...tk, _base: Date.now() - (Number(tk.waited_seconds) || 0) * 1000 };
}

function unitName(id) {
  const u = state.units.get(id);
  if (!u) return id;
  return typeof u === 'string' ? u : pick(u, lang);
}
function serviceById(id) {
  return state.services.find((s) => s.id === id);
}
function serviceName(id) {
  const s = serviceById(id);
  const live = state.liveServices.get(id);
  const n = live && (live.staff_name || (typeof live.name === 'object' ? pick(live.name, lang) : null));
  return n || (s && (s.staff_name || s.name)) || id;
}
function counterName(id) {
  const c = state.counters.get(id);
  return c ? pick(c.name, lang) || id : id;
}

// ---- start --------------------------------------------------------------------------------------

async function boot() {
  await initLang($('lang'), () => refresh(true));
  session.onSignedIn = afterSignIn;
  session.onSignedOut = () => {
    if (state.live) state.live.stop();
    state.live = null;
    setConn(null);
  };
  idleLock({
    idleSecs: queryNumber('idle', 900),
    warnSecs: queryNumber('warn', 60),
    isActive: () => !!session.user,
  });
  $('sign-out').addEventListener('click', () => signOut(null));
  $('end-day').addEventListener('click', endDay);
  $('chart-service').addEventListener('change', renderCharts);
  setInterval(tick, 1000);
  setInterval(() => session.user && refresh(true), 30000);
  // Every 30 s, unless the daemon said it sends no notices (no `[notify]`).
  setInterval(() => session.user && state.site && state.notices !== null && loadNotices(), 30000);
  $('notices-refresh').addEventListener('click', async () => {
    await loadNotices();
    if (state.notices) announce(t('notices_refreshed', { n: state.notices.length }));
  });
  await resumeSession((user) => afterSignIn(user, {}));
}

async function afterSignIn(user) {
  showMessage('');
  if (!isSupervisor(user)) {
    showScreen('denied');
    return;
  }
  try {
    state.site = await loadSite(new URLSearchParams(location.hash.slice(1)).get('site'));
    $('site-name').textContent = '· ' + pick(state.site.name, lang);
    $('reports-link').href = '/desk/reports.html#site=' + encodeURIComponent(state.site.id);
    const sid = encodeURIComponent(state.site.id);
    const [counters, units] = await Promise.all([staffApi(`/api/v1/sites/${sid}/counters`), staffApi(`/api/v1/sites/${sid}/units`).catch(() => ({ units: [] }))]);
    state.counters = new Map((counters.counters || []).map((c) => [c.id, { ...c }]));
    state.units = new Map((units.units || []).map((u) => [u.id, u.name]));
    await refresh(true);
    await loadNotices();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showMessage(errorText(e), 'error');
    return;
  }
  showScreen('sv');
  startLive();
}

/** Services (estimates, accepting) and today's figures, which the live topic does not carry in full. */
async function refresh(withStats) {
  if (!state.site) return;
  try {
    state.services = await loadServices(state.site.id);
    if (withStats) await loadStats();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showMessage(errorText(e), 'error');
  }
  renderAll();
}

/** Refreshes the figures a little after a burst of events (at most every 1.5 s). */
function refreshSoon() {
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(() => {
    state.refreshTimer = null;
    refresh(true);
  }, 1500);
}

async function loadStats() {
  try {
    state.stats = await staffApi(`/api/v1/sites/${encodeURIComponent(state.site.id)}/stats/today`);
  } catch (e) {
    state.stats = null;
  }
}

/**
 * Notices to customers (SMS, e-mail, push) that failed in the last 24 hours, without addresses. A
 * deployment without `[notify]` answers 422: the panel stays hidden.
 */
async function loadNotices() {
  if (!state.site) return;
  try {
    const r = await staffApi(`/api/v1/sites/${encodeURIComponent(state.site.id)}/notices?state=failed`);
    state.notices = r.notices || [];
    state.noticesAt = new Date();
  } catch (e) {
    if (e instanceof ApiError && e.status === 422) state.notices = null;
    else if (!(e instanceof ApiError && e.status === 401)) showMessage(errorText(e), 'error');
  }
  renderNotices();
}

function hhmm(at) {
  return new Date(at).toLocaleTimeString(lang === 'en' ? 'en-GB' : lang, { hour: '2-digit', minute: '2-digit' });
}

function renderNotices() {
  const list = state.notices;
  $('notices-panel').hidden = list === null;
  if (list === null) return;
  const known = (key, fallback) => (t(key) !== key ? t(key) : fallback);
  $('notices-body').replaceChildren(
    ...list.map((n) =>
      el('tr', { dataset: { notice: String(n.id) } },
        el('th', { scope: 'row' }, numberHtml(n.number)),
        el('td', {}, known('notice_kind_' + n.kind, n.kind)),
        el('td', {}, known('notice_channel_' + n.channel, n.channel)),
        el('td', { class: 'reason' }, n.reason || '–', n.attempts > 1 ? el('span', { class: 'hint' }, ' ', t('notice_attempts', { n: n.attempts })) : null),
        el('td', {}, el('time', { datetime: n.done_at || n.created_at }, hhmm(n.done_at || n.created_at))),
      ),
    ),
  );
  $('notices-table').hidden = list.length === 0;
  $('notices-empty').hidden = list.length > 0;
  $('notices-count').textContent = list.length ? `(${list.length})` : '';
  $('notices-updated').textContent = state.noticesAt ? t('notices_updated', { time: hhmm(state.noticesAt) }) : '';
}

// ---- live ---------------------------------------------------------------------------------------

function startLive() {
  if (state.live) state.live.stop();
  state.live = new Live({
    onSnapshot: (topic, data) => onSnapshot(data),
    onEvent: (topic, ev) => onEvent(ev),
    onStatus: (s) => setConn(s),
    onError: (msg) => {
      if (msg.code === 'forbidden' || msg.code === 'unauthenticated') checkSession();
    },
    onConfigChanged: () => refresh(true),
  });
  state.live.subscribe(`site:${state.site.id}`);
  setConn('connecting');
  state.live.start();
}

async function checkSession() {
  try {
    const u = await whoAmI();
    if (!u && session.user) showLogin('session_expired');
  } catch (e) {
    // The daemon is away; the client reconnects by itself.
  }
}

function setConn(s) {
  const box = $('conn');
  if (!s) {
    box.hidden = true;
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

function onSnapshot(data) {
  state.liveServices = new Map(data.services.map((s) => [s.id, s]));
  for (const c of data.counters) state.counters.set(c.id, { ...(state.counters.get(c.id) || {}), ...c });
  state.haveTickets = true;
  state.tickets = new Map(data.tickets.map((tk) => [tk.id, keep(tk)]));
  for (const c of data.counters) if (c.current) state.tickets.set(c.current.id, keep(c.current));
  state.alerts = new Map(data.alerts.map((a) => [a.id, a]));
  state.printers = new Map(data.printers.map((p) => [p.device, p]));
  state.displays = new Map(data.displays.map((d) => [d.id, d]));
  renderAll();
}

function onEvent(ev) {
  if (ev.at) {
    const off = Date.parse(ev.at) - Date.now();
    if (Number.isFinite(off) && off > state.clockOffset) state.clockOffset = off;
  }
  // A staff event: `ticket` is the StaffTicket after it (only its id when the ticket was gone by then: a
  // day's rollover), `counter` a counter's id, `counter_state` the counter after it.
  if (ev.ticket) state.tickets.set(ev.ticket.id, keep(ev.ticket));
  const cv = ev.counter_state;
  if (cv) state.counters.set(cv.id, { ...(state.counters.get(cv.id) || {}), ...cv });
  if (ev.kind === 'alert') {
    const a = alertOf(ev);
    if (!state.alerts.has(a.id)) announce(alertText(a), true);
    state.alerts.set(a.id, a);
  } else if (ev.kind === 'alert_cleared') {
    state.alerts.delete(ev.alert);
  } else if (ev.kind === 'printer_status') {
    state.printers.set(ev.device, printerOf(state.printers.get(ev.device), ev));
  } else if (ev.kind === 'display_status') {
    state.displays.set(ev.device, { id: ev.device, status: ev.status, at: ev.at });
  } else if (ev.kind === 'service_accepting' || ev.kind === 'day_started') {
    if (ev.kind === 'day_started') state.tickets.clear();
    refreshSoon();
  } else if (ev.kind === 'ticket_issued' || ev.kind === 'ticket_finished' || ev.kind === 'ticket_called') {
    refreshSoon();
  }
  renderAll();
}

// ---- figures ------------------------------------------------------------------------------------

function waitingOf(serviceId) {
  return [...state.tickets.values()].filter((x) => x.state === 'waiting' && x.service === serviceId);
}

/** Longest current wait in seconds: the live figure, else from the waiting tickets. */
function longestWait(serviceId) {
  const live = state.liveServices.get(serviceId);
  if (!state.haveTickets && live && typeof live.longest_wait_seconds === 'number') return live.longest_wait_seconds;
  const list = waitingOf(serviceId);
  if (list.length) return Math.max(...list.map((x) => (Date.now() - x._base) / 1000));
  return 0;
}

function targetMinutes(serviceId) {
  const live = state.liveServices.get(serviceId);
  const s = serviceById(serviceId);
  return live?.target_wait_minutes ?? s?.target_wait_minutes ?? null;
}

function waitingCount(serviceId) {
  if (state.haveTickets) return waitingOf(serviceId).length;
  const live = state.liveServices.get(serviceId);
  if (live && typeof live.waiting === 'number') return live.waiting;
  return serviceById(serviceId)?.waiting ?? 0;
}

function countersOpenFor(serviceId) {
  let n = 0;
  for (const c of state.counters.values()) {
    const svcs = (c.services || []).map((s) => (typeof s === 'string' ? s : s.service));
    if (svcs.includes(serviceId) && c.state && c.state !== 'closed') n++;
  }
  return n;
}

function currentAt(counterId) {
  for (const tk of state.tickets.values()) if (tk.counter === counterId && (tk.state === 'called' || tk.state === 'serving')) return tk;
  const c = state.counters.get(counterId);
  return c && c.current && typeof c.current === 'object' ? c.current : null;
}

function counterState(c) {
  if (!c.state || c.state === 'closed') return 'closed';
  const cur = currentAt(c.id);
  if (cur) return cur.state === 'serving' ? 'serving' : 'calling';
  return 'open';
}

/**
 * Why a service needs a supervisor's attention now: people wait and no counter serving it is open; the
 * longest wait is over the target; or the estimate is far (more than half again) over the target.
 */
function attentionOf(s) {
  const waiting = waitingCount(s.id);
  if (!waiting) return [];
  const out = [];
  if (countersOpenFor(s.id) === 0) out.push('no_counter');
  const target = targetMinutes(s.id);
  if (target !== null) {
    if (longestWait(s.id) > target * 60) out.push('over_target');
    else if (s.eta_minutes !== null && s.eta_minutes !== undefined && s.eta_minutes > target * 1.5) out.push('eta');
  }
  return out;
}

function overTarget(serviceId) {
  const target = targetMinutes(serviceId);
  return target !== null && longestWait(serviceId) > target * 60;
}

/** "kiosk-1 (entrance)": the device and, when the site snapshot gives one, its place in the UI language. */
function deviceLabel(id, printer) {
  const text = printer?.location ? pick(printer.location, lang) : '';
  return text ? t('device_place', { device: id, place: text }) : id;
}

function faultText(status) {
  const st = String(status || '');
  return t('fault_' + st) !== 'fault_' + st ? t('fault_' + st) : st || t('device_fault');
}

/** "kiosk-1 (entrance): out of paper", in the UI language. */
function printerText(device, status) {
  return t('printer_alert', { device: deviceLabel(device, state.printers.get(device)), fault: faultText(status) });
}

function alertText(a) {
  if (a.kind === 'printer' && a.device) {
    const p = state.printers.get(a.device);
    // The daemon's own words (English) only when the printer's status is not known here.
    if (p && deviceOk(p) === false) return printerText(a.device, p.status);
    return a.message || printerText(a.device, 'failed');
  }
  const where = a.device ? t('alert_from_device', { device: a.device }) : a.service ? serviceName(a.service) : '';
  const known = t('alert_' + a.kind) !== 'alert_' + a.kind;
  if (a.kind === 'long_wait' && a.service && targetMinutes(a.service) !== null) {
    return t('long_wait_text', { service: serviceName(a.service), wait: minutes(longestWait(a.service)), target: t('minutes_short', { n: targetMinutes(a.service) }) });
  }
  return [known ? t('alert_' + a.kind) : a.kind, where, known ? null : a.message].filter(Boolean).join(' · ');
}

// ---- rendering ----------------------------------------------------------------------------------

function renderAll() {
  renderAlerts();
  renderServices();
  renderCounters();
  renderDevices();
  renderCharts();
  renderNotices();
}

function visibleServices() {
  const units = session.user?.units || [];
  return state.services.filter((s) => !units.length || units.includes(s.unit));
}

function renderServices() {
  const body = $('services-body');
  const others = visibleServices();
  const needing = others.filter((s) => attentionOf(s).length).length;
  $('attention-count').textContent = needing ? t('attention_count', { n: needing }) : '';
  const rows = [];
  let unit = null;
  for (const s of others) {
    if (s.unit !== unit) {
      unit = s.unit;
      rows.push(el('tr', { class: 'group' }, el('th', { scope: 'colgroup', colspan: '7' }, s.unit_name || unitName(s.unit))));
    }
    rows.push(serviceRow(s, others));
  }
  keepPlace(body, () => body.replaceChildren(...rows));
}

function serviceRow(s, others) {
  const target = targetMinutes(s.id);
  const longest = longestWait(s.id);
  const over = overTarget(s.id);
  const attention = attentionOf(s);
  const select = el('select', { 'aria-label': t('move_to_for', { service: serviceName(s.id) }), dataset: { keep: 'move-to:' + s.id } },
    el('option', { value: '' }, t('choose_service')),
    others.filter((o) => o.id !== s.id).map((o) => el('option', { value: o.id }, serviceName(o.id))),
  );
  const waiting = waitingCount(s.id);
  const badges = attention.map((a) => el('span', { class: 'badge attention', dataset: { attention: a } }, t(a === 'no_counter' ? 'attention_no_counter_short' : a === 'over_target' ? 'attention_over_target_short' : 'attention_eta_short')));
  return el('tr', { class: attention.length ? 'attention' : '', dataset: { service: s.id } },
    el('th', { scope: 'row' }, el('span', { class: 'svc-name' }, serviceName(s.id)), badges.length ? el('span', { class: 'notes' }, badges) : null),
    el('td', { class: 'num waiting' }, String(waiting)),
    el('td', { class: 'num longest', dataset: { service: s.id } }, waiting ? minutes(longest) : '–', ' / ', target !== null ? t('minutes_short', { n: target }) : '–', over ? el('span', { class: 'sr-only' }, ' ', t('over_target')) : null),
    el('td', { class: 'num' + (attention.includes('eta') ? ' strong' : '') }, s.eta_minutes !== null && s.eta_minutes !== undefined ? t('minutes_short', { n: s.eta_minutes }) : '–'),
    el('td', { class: 'num' + (attention.includes('no_counter') ? ' strong' : '') }, String(countersOpenFor(s.id))),
    el('td', {},
      el('div', { class: 'sv-actions' },
        s.accepting ? el('span', { class: 'quiet-state' }, t('accepting')) : el('span', { class: 'stopped-state' }, t('closed_reason_' + (s.closed_reason || 'closed_by_staff'))),
        el('button', { type: 'button', class: 'small ' + (s.accepting ? 'quiet' : ''), dataset: { action: s.accepting ? 'stop' : 'resume', keep: 'accepting:' + s.id }, onclick: () => setAccepting(s, !s.accepting), 'aria-label': (s.accepting ? t('stop_tickets') : t('resume_tickets')) + ': ' + serviceName(s.id) }, s.accepting ? t('stop_tickets') : t('resume_tickets')),
      ),
    ),
    el('td', {},
      el('div', { class: 'sv-actions' },
        select,
        el('button', { type: 'button', class: 'small', disabled: !waiting, dataset: { keep: 'move:' + s.id }, 'aria-label': t('move_waiting_for', { service: serviceName(s.id) }), onclick: () => moveWaiting(s, select.value) }, t('move')),
      ),
    ),
  );
}

function renderCounters() {
  const body = $('counters-body');
  const units = session.user?.units || [];
  const list = [...state.counters.values()].filter((c) => !units.length || units.includes(c.unit));
  body.replaceChildren(
    ...list.map((c) => {
      const st = counterState(c);
      const cur = currentAt(c.id);
      const since = cur ? (cur.state === 'serving' ? cur.served_at || cur.called_at : cur.called_at) : null;
      return el('tr', { dataset: { counter: c.id } },
        el('th', { scope: 'row' }, pick(c.name, lang) || c.id),
        el('td', {}, unitName(c.unit)),
        el('td', {}, el('span', { class: 'status-dot ' + (st === 'closed' ? 'status-unknown' : 'status-ok'), 'aria-hidden': 'true' }), t('state_' + st)),
        el('td', {}, c.user || '–'),
        el('td', {}, cur ? [numberHtml(cur.number), ' ', el('span', { class: 'hint' }, serviceName(cur.service))] : '–'),
        el('td', { class: 'num since', dataset: { since: since || '' } }, since ? clock((serverNow() - Date.parse(since)) / 1000) : '–'),
      );
    }),
  );
}

/** A printer's or display's status (site snapshot): true when `online`, null when none was reported yet. */
function deviceOk(d) {
  if (!d.status) return null;
  return d.status === 'online';
}

function renderDevices() {
  const rows = [];
  const statusCell = (d) => {
    const ok = deviceOk(d);
    const st = d.status || '';
    const text = ok === true ? t('device_ok') : ok === false ? (t('fault_' + st) !== 'fault_' + st ? t('fault_' + st) : st || t('device_fault')) : t('device_unknown');
    return el('td', {}, el('span', { class: 'status-dot ' + (ok === true ? 'status-ok' : ok === false ? 'status-bad' : 'status-unknown'), 'aria-hidden': 'true' }), text);
  };
  for (const [id, p] of state.printers) rows.push(el('tr', {}, el('th', { scope: 'row' }, deviceLabel(id, p)), el('td', {}, t('kind_printer')), statusCell(p), el('td', {}, seen(p))));
  // A display is `online`, `frozen` (connected, but its page stopped reporting that it renders) or `offline`.
  for (const [id, d] of state.displays) rows.push(el('tr', { 'data-display': id, 'data-status': d.status || '' }, el('th', { scope: 'row' }, id), el('td', {}, t('kind_display')), statusCell(d), el('td', {}, seen(d))));
  $('devices-body').replaceChildren(...rows);
  $('devices-table').hidden = !rows.length;
  $('devices-empty').hidden = rows.length > 0;
}

function seen(d) {
  if (!d.at) return '–';
  return new Date(d.at).toLocaleTimeString(lang === 'en' ? 'en-GB' : lang, { hour: '2-digit', minute: '2-digit' });
}

function renderAlerts() {
  const items = [];
  for (const a of [...state.alerts.values()].sort((x, y) => String(y.at).localeCompare(String(x.at)))) {
    items.push(
      el('li', { class: 'alert alert-' + a.kind, dataset: { alert: a.id } },
        el('span', { class: 'alert-text' }, alertText(a)),
        el('button', { type: 'button', class: 'small', dataset: { keep: 'ack:' + a.id }, 'aria-label': t('ack_alert_n', { what: alertText(a) }), onclick: () => ack(a) }, t('ack')),
      ),
    );
  }
  // A service over its target that the daemon has not (yet) raised is shown as well.
  for (const s of visibleServices()) {
    if (!overTarget(s.id)) continue;
    if ([...state.alerts.values()].some((a) => a.kind === 'long_wait' && a.service === s.id)) continue;
    items.push(el('li', { class: 'alert alert-long_wait', dataset: { service: s.id } }, el('span', { class: 'alert-text' }, t('long_wait_text', { service: serviceName(s.id), wait: minutes(longestWait(s.id)), target: t('minutes_short', { n: targetMinutes(s.id) }) }))));
  }
  for (const [id, p] of state.printers) {
    if (deviceOk(p) !== false) continue;
    if ([...state.alerts.values()].some((a) => a.kind === 'printer' && a.device === id)) continue;
    items.push(el('li', { class: 'alert alert-printer', dataset: { printer: id } }, el('span', { class: 'alert-text' }, printerText(id, p.status))));
  }
  keepPlace($('alert-list'), () => $('alert-list').replaceChildren(...items));
  $('alerts-empty').hidden = items.length > 0;
  $('alert-count').textContent = items.length ? `(${items.length})` : '';
}

function renderCharts() {
  const sel = $('chart-service');
  const prev = sel.value;
  const rows = (state.stats && state.stats.hours) || [];
  const ids = [...new Set(rows.map((r) => r.service))];
  sel.replaceChildren(el('option', { value: '' }, t('all_services')), ...ids.map((id) => el('option', { value: id }, serviceName(id))));
  sel.value = ids.includes(prev) ? prev : '';
  const service = sel.value || null;
  const picked = rows.filter((r) => !service || r.service === service);
  const byHour = new Map();
  for (const r of picked) {
    const h = byHour.get(r.hour) || { arrivals: 0, waitSum: 0, waitN: 0 };
    h.arrivals += r.arrivals || 0;
    if (r.mean_wait_seconds !== null && r.mean_wait_seconds !== undefined) {
      const n = r.served || r.arrivals || 1;
      h.waitSum += r.mean_wait_seconds * n;
      h.waitN += n;
    }
    byHour.set(r.hour, h);
  }
  const present = [...byHour.keys()];
  const lo = Math.min(8, ...present);
  const hi = Math.max(lo + 8, ...present);
  const hours = [];
  for (let h = lo; h <= hi; h++) hours.push(h);
  const arrivals = hours.map((h) => byHour.get(h)?.arrivals ?? 0);
  const waits = hours.map((h) => {
    const x = byHour.get(h);
    return x && x.waitN ? x.waitSum / x.waitN / 60 : null;
  });
  const label = service ? serviceName(service) : t('all_services');
  const total = arrivals.reduce((a, b) => a + b, 0);
  const peak = hours[arrivals.indexOf(Math.max(...arrivals))];
  const arrivalsDesc = total ? t('chart_arrivals_desc', { total, peak: String(peak).padStart(2, '0') }) : t('chart_no_data');
  const fig1 = el('figure', {}, el('figcaption', { id: 'cap-arrivals' }, t('chart_arrivals_title', { service: label })));
  fig1.append(barChart({ id: 'svg-arrivals', title: t('chart_arrivals_title', { service: label }), desc: arrivalsDesc, hours, values: arrivals, format: (v) => String(Math.round(v)) }));
  $('chart-arrivals').replaceChildren(fig1);
  const target = service ? targetMinutes(service) : null;
  const maxWait = Math.max(0, ...waits.filter((w) => w !== null));
  const waitsDesc = waits.some((w) => w !== null) ? t('chart_waits_desc', { max: Math.round(maxWait) }) + (target ? ' ' + t('chart_target_desc', { target }) : '') : t('chart_no_data');
  const fig2 = el('figure', {}, el('figcaption', { id: 'cap-waits' }, t('chart_waits_title', { service: label })));
  fig2.append(barChart({ id: 'svg-waits', title: t('chart_waits_title', { service: label }), desc: waitsDesc, hours, values: waits, format: (v) => String(Math.round(v)), target, targetLabel: target ? t('chart_target', { n: target }) : '', color: '#1d6b31' }));
  $('chart-waits').replaceChildren(fig2);
  $('stats-caption').textContent = t('chart_table_caption', { service: label });
  $('stats-body').replaceChildren(
    ...hours.map((h, i) =>
      el('tr', {},
        el('th', { scope: 'row' }, `${String(h).padStart(2, '0')}–${String(h + 1).padStart(2, '0')}`),
        el('td', { class: 'num' }, String(arrivals[i])),
        el('td', { class: 'num' }, waits[i] === null ? '–' : t('minutes_short', { n: Math.round(waits[i]) })),
      ),
    ),
  );
}

function tick() {
  for (const td of document.querySelectorAll('#counters-body td.since')) if (td.dataset.since) td.textContent = clock((serverNow() - Date.parse(td.dataset.since)) / 1000);
}

// ---- actions ------------------------------------------------------------------------------------

async function setAccepting(s, accepting) {
  try {
    await staffApi(`/api/v1/sites/${encodeURIComponent(state.site.id)}/services/${encodeURIComponent(s.id)}/accepting`, { method: 'POST', body: { accepting } });
    showMessage(accepting ? t('resumed', { service: serviceName(s.id) }) : t('stopped', { service: serviceName(s.id) }), 'info');
    await refresh(false);
    const row = document.querySelector(`#services-body tr[data-service="${CSS.escape(s.id)}"] button[data-action]`);
    if (row) row.focus();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showMessage(errorText(e), 'error');
  }
}

async function moveWaiting(s, to) {
  if (!to) {
    showMessage(t('choose_service_first'), 'error');
    return;
  }
  try {
    await staffApi(`/api/v1/sites/${encodeURIComponent(state.site.id)}/services/${encodeURIComponent(s.id)}/move`, { method: 'POST', body: { to } });
    showMessage(t('moved', { from: serviceName(s.id), to: serviceName(to) }), 'info');
    resubscribe();
    await refresh(false);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showMessage(errorText(e), 'error');
  }
}

function resubscribe() {
  if (!state.live) return;
  const topic = `site:${state.site.id}`;
  state.live.unsubscribe(topic);
  state.live.subscribe(topic);
}

async function endDay() {
  const d = $('end-day-dialog');
  const waiting = [...state.tickets.values()].filter((x) => ['waiting', 'called', 'serving', 'parked'].includes(x.state)).length;
  $('end-day-text').textContent = t('end_day_text', { n: waiting });
  d.returnValue = '';
  d.showModal();
  await new Promise((r) => d.addEventListener('close', r, { once: true }));
  if (d.returnValue !== 'ok') return;
  try {
    await staffApi(`/api/v1/sites/${encodeURIComponent(state.site.id)}/end-day`, { method: 'POST', body: {} });
    showMessage(t('day_ended'), 'info');
    resubscribe();
    await refresh(true);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showMessage(errorText(e), 'error');
  }
}

async function ack(a) {
  try {
    await staffApi(`/api/v1/sites/${encodeURIComponent(state.site.id)}/alerts/${encodeURIComponent(a.id)}/ack`, { method: 'POST', body: {} });
    state.alerts.delete(a.id);
    renderAlerts();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showMessage(errorText(e), 'error');
  }
}

boot();
