// The reports screen: the figures of a date range from GET /api/v1/reports as charts and a table, and the
// same report as a CSV file (a plain same-origin link: the session cookie goes with it, nothing secret is
// put in the address). Signing in, the language switch and the idle lock are shared with the supervisor
// view (common.js); the daemon decides who may see what (supervisors and admins, their own units).
import {
  t, lang, initLang, el, announce, showMessage, errorText, pick, session, staffApi, resumeSession, showScreen,
  signOut, isSupervisor, idleLock, queryNumber, ApiError,
} from '/desk/common.js';
import { categoryChart } from '/desk/charts.js';

const $ = (id) => document.getElementById(id);

/** The "every site" choice in the site list (not a site id: ids are letters, digits and dashes). */
const ALL = '*';
const GROUPS = ['service', 'unit', 'counter', 'staff', 'hour', 'day', 'week', 'month', 'site'];
const TIME_GROUPS = new Set(['hour', 'day', 'week', 'month']);
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;

/** Label columns the API may answer; every other column is a figure. */
const KEY_COLUMNS = new Set(['service', 'service_name', 'unit', 'unit_name', 'counter', 'counter_name', 'staff', 'hour', 'date', 'week_start', 'week', 'month_start', 'month', 'site', 'site_name']);
/** The column that names a row (its row header), per group. */
const NAME_COLUMN = { service: 'service_name', unit: 'unit_name', counter: 'counter_name', staff: 'staff', hour: 'hour', day: 'date', week: 'week', month: 'month', site: 'site_name' };
/** Figure columns in families, shown as a header row above the column names. */
const FAMILIES = [
  { key: 'rp_fam_customers', cols: ['arrivals', 'called', 'served', 'no_shows', 'cancelled', 'day_ended', 'transfers', 'pass_ons'] },
  { key: 'rp_fam_wait', cols: ['wait_mean_minutes', 'wait_median_minutes', 'wait_p90_minutes', 'within_target_share'] },
  { key: 'rp_fam_service', cols: ['service_mean_minutes', 'service_median_minutes'] },
  { key: 'rp_fam_counter', cols: ['open_hours', 'busy_hours', 'idle_hours', 'idle_share'] },
  { key: 'rp_fam_site', cols: ['opening_hours', 'visits_per_opening_hour'] },
  { key: 'rp_fam_feedback', cols: ['feedback', 'feedback_mean'] },
];
const COLORS = { a: '#005a9c', b: '#1d6b31', c: '#8a4f00' };

const state = {
  sites: [],
  built: false,
  last: null, // { params, data }: the report on screen
  request: 0, // the newest request; older answers are dropped
  units: new Map(), // unit id -> name object, of the sites reported on
};

/** Id columns shown by their name instead: the id stays in the CSV and in each row's data-key only. */
const NAMED_BY = { service: 'service_name', counter: 'counter_name', site: 'site_name', unit: 'unit_name' };

// ---- dates (local dates of the site, as 'YYYY-MM-DD' strings) ----------------------------------------

function siteTimeZone(siteId) {
  const s = state.sites.find((x) => x.id === siteId) || state.sites[0];
  return (s && s.timezone) || undefined;
}

/** Today in the site's time zone (the daemon counts in it too). */
function todayIn(timeZone) {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(new Date());
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get('year')}-${get('month')}-${get('day')}`;
}

const asDate = (s) => new Date(s + 'T00:00:00Z');
const iso = (d) => d.toISOString().slice(0, 10);
function addDays(s, n) {
  const d = asDate(s);
  d.setUTCDate(d.getUTCDate() + n);
  return iso(d);
}
function validDate(s) {
  return DATE_RE.test(s || '') && !Number.isNaN(asDate(s).getTime()) && iso(asDate(s)) === s;
}

/** The from-to of a quick pick, ending today at the latest. */
function quickRange(name, today) {
  const d = asDate(today);
  const monday = addDays(today, -((d.getUTCDay() + 6) % 7));
  const first = today.slice(0, 8) + '01';
  switch (name) {
    case 'today':
      return [today, today];
    case 'yesterday':
      return [addDays(today, -1), addDays(today, -1)];
    case 'this-week':
      return [monday, today];
    case 'last-7':
      return [addDays(today, -6), today];
    case 'last-30':
      return [addDays(today, -29), today];
    case 'this-month':
      return [first, today];
    case 'last-month': {
      const end = addDays(first, -1);
      return [end.slice(0, 8) + '01', end];
    }
    case 'this-year':
      return [today.slice(0, 5) + '01-01', today];
    default:
      return null;
  }
}

// ---- formatting ------------------------------------------------------------------------------------

const locale = () => (lang === 'en' ? 'en-GB' : lang);
function num(v, digits = 0) {
  return new Intl.NumberFormat(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v);
}
function dateText(s, opts = { day: 'numeric', month: 'numeric', year: 'numeric' }) {
  if (!validDate(s)) return String(s);
  return asDate(s).toLocaleDateString(locale(), { timeZone: 'UTC', ...opts });
}
const hourText = (h) => `${String(h).padStart(2, '0')}–${String((Number(h) + 1) % 24 || 24).padStart(2, '0')}`;
function monthText(m) {
  return /^\d{4}-\d{2}$/.test(m) ? dateText(m + '-01', { month: 'long', year: 'numeric' }) : String(m);
}

const isMinutes = (c) => c.endsWith('_minutes');
const isShare = (c) => c.endsWith('_share');
const isHours = (c) => c.endsWith('_hours') && c !== 'visits_per_opening_hour';

/** A figure as text for the table (null: no value). Shares as percentages. */
function figureText(col, v) {
  if (v === null || v === undefined) return null;
  if (isShare(col)) return num(v * 100, 1);
  if (isMinutes(col) || isHours(col) || col === 'visits_per_opening_hour' || col === 'feedback_mean') return num(v, 2);
  return num(v, 0);
}

/** A label column's value as text. */
function labelText(col, v) {
  if (v === null || v === undefined || v === '') return null;
  if (col === 'hour') return hourText(v);
  if (col === 'date') return dateText(v, { weekday: 'short', day: 'numeric', month: 'numeric', year: 'numeric' });
  if (col === 'week_start' || col === 'month_start') return dateText(v);
  if (col === 'month') return monthText(v);
  if (col === 'unit' && state.units.has(v)) return pick(state.units.get(v), lang) || String(v);
  return String(v);
}

/** A short label for a chart axis. */
function axisLabel(group, row) {
  switch (group) {
    case 'hour':
      return String(row.hour).padStart(2, '0');
    case 'day':
      return dateText(row.date, { day: 'numeric', month: 'numeric' });
    case 'week':
      return String(row.week || '').replace(/^\d{4}-/, '');
    case 'month':
      return dateText(row.month_start, { month: 'short' });
    default:
      return rowName(group, row);
  }
}

/** The name of a row, for charts and sentences. */
function rowName(group, row) {
  const col = NAME_COLUMN[group];
  const v = labelText(col, row[col]);
  if (v) return v;
  const id = row[group] ?? row.site;
  return id === null || id === undefined ? '' : String(id);
}

function colLabel(col) {
  if (col === 'unit' && state.units.size) col = 'unit_name'; // shown by its name (labelText)
  const key = 'rp_col_' + col;
  const s = t(key);
  return s === key ? col : s;
}

function noValue() {
  return [el('span', { 'aria-hidden': 'true' }, '–'), el('span', { class: 'sr-only' }, t('rp_no_value'))];
}

// ---- start ---------------------------------------------------------------------------------------

async function boot() {
  await initLang($('lang'), onLangChange);
  session.onSignedIn = afterSignIn;
  idleLock({
    idleSecs: queryNumber('idle', 900),
    warnSecs: queryNumber('warn', 60),
    isActive: () => !!session.user,
  });
  $('sign-out').addEventListener('click', () => signOut(null));
  $('report-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit();
  });
  $('r-site').addEventListener('change', syncGroupChoices);
  for (const b of document.querySelectorAll('[data-range]')) b.addEventListener('click', () => quickPick(b.dataset.range));
  for (const id of ['r-from', 'r-to']) $(id).addEventListener('input', () => $(id).removeAttribute('aria-invalid'));
  await resumeSession(afterSignIn);
}

async function afterSignIn(user) {
  showMessage('');
  if (!isSupervisor(user)) {
    showScreen('denied');
    return;
  }
  try {
    if (!state.sites.length) state.sites = (await staffApi('/api/v1/sites')).sites || [];
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showMessage(errorText(e), 'error');
    return;
  }
  showScreen('reports');
  if (!state.built) {
    buildForm();
    state.built = true;
    fillFromHash();
  }
  if (state.last) {
    await run({ ...state.last.params, lang: langFor(state.last.params.site) });
    return;
  }
  const r = readForm();
  if (r.error) showFormError(r.error, r.fields);
  else await run(r.params);
}

function onLangChange() {
  if (!state.built) return;
  buildForm();
  if (state.last) {
    run({ ...state.last.params, lang: langFor(state.last.params.site) });
  }
}

// ---- the form --------------------------------------------------------------------------------------

/** Fills the site and grouping lists in the UI language, keeping what was chosen. */
function buildForm() {
  const site = $('r-site');
  const group = $('r-group');
  const siteWas = site.value;
  const groupWas = group.value;
  site.replaceChildren(
    ...state.sites.map((s) => el('option', { value: s.id }, pick(s.name, lang) || s.id)),
    el('option', { value: ALL }, t('rp_all_sites')),
  );
  group.replaceChildren(...GROUPS.map((g) => el('option', { value: g }, t('rp_group_' + g))));
  if (siteWas) site.value = siteWas;
  if (groupWas) group.value = groupWas;
  syncGroupChoices();
}

/** Comparing every site is by site only (the daemon's rule); the other groupings come back for one site. */
function syncGroupChoices() {
  const all = $('r-site').value === ALL;
  for (const o of $('r-group').options) o.disabled = all && o.value !== 'site';
  if (all) $('r-group').value = 'site';
  $('r-group-hint').hidden = !all;
}

function defaults() {
  const site = state.sites[0]?.id || '';
  const today = todayIn(siteTimeZone(site));
  return { site, from: addDays(today, -6), to: today, group: 'service' };
}

/** The form from the page address (#site=&from=&to=&group=), else the last 7 days by service. */
function fillFromHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  const d = defaults();
  const site = h.get('site');
  const v = {
    site: site === ALL || state.sites.some((s) => s.id === site) ? site : d.site,
    from: validDate(h.get('from')) ? h.get('from') : d.from,
    to: validDate(h.get('to')) ? h.get('to') : d.to,
    group: GROUPS.includes(h.get('group')) ? h.get('group') : d.group,
  };
  $('r-site').value = v.site;
  $('r-group').value = v.group;
  $('r-from').value = v.from;
  $('r-to').value = v.to;
  syncGroupChoices();
}

/** The language for names in the report: the UI language where every chosen site offers it. */
function langFor(site) {
  const sites = site === ALL ? state.sites : state.sites.filter((s) => s.id === site);
  return sites.length && sites.every((s) => (s.languages || []).includes(lang)) ? lang : null;
}

/** Reads and checks the form: { params } or { error, fields }. */
function readForm() {
  const site = $('r-site').value;
  const from = $('r-from').value;
  const to = $('r-to').value;
  const group = site === ALL ? 'site' : $('r-group').value;
  if (!validDate(from)) return { error: t('rp_err_from'), fields: ['r-from'] };
  if (!validDate(to)) return { error: t('rp_err_to'), fields: ['r-to'] };
  if (to < from) return { error: t('rp_err_order', { from: dateText(from) }), fields: ['r-to'] };
  return { params: { site, from, to, group, lang: langFor(site) } };
}

function showFormError(text, fields = []) {
  const box = $('form-error');
  box.hidden = !text;
  box.textContent = text || '';
  for (const id of ['r-from', 'r-to']) {
    if (fields.includes(id)) $(id).setAttribute('aria-invalid', 'true');
    else $(id).removeAttribute('aria-invalid');
  }
  const describe = (id) => ['r-dates-hint', fields.includes(id) ? 'form-error' : null].filter(Boolean).join(' ');
  $('r-from').setAttribute('aria-describedby', describe('r-from'));
  $('r-to').setAttribute('aria-describedby', describe('r-to'));
}

async function submit() {
  const r = readForm();
  if (r.error) {
    // Nothing else changes: the report on screen, its CSV link and the address stay as they were.
    showFormError(r.error, r.fields);
    $(r.fields[0]).focus();
    return;
  }
  await run(r.params);
}

function quickPick(name) {
  const site = $('r-site').value;
  const range = quickRange(name, todayIn(siteTimeZone(site === ALL ? null : site)));
  if (!range) return;
  [$('r-from').value, $('r-to').value] = range;
  submit();
}

// ---- fetching ----------------------------------------------------------------------------------------

function query(params, format) {
  const q = new URLSearchParams();
  if (params.site && params.site !== ALL) q.set('site', params.site);
  q.set('from', params.from);
  q.set('to', params.to);
  q.set('group', params.group);
  if (params.lang) q.set('lang', params.lang);
  if (format) q.set('format', format);
  return q.toString();
}

/** The names of a site's units (or of every site's, for a report over all sites), once per page. */
async function loadUnits(siteId) {
  const ids = siteId && siteId !== ALL ? [siteId] : state.sites.map((x) => x.id);
  for (const id of ids) {
    if (state.unitsLoaded?.has(id)) continue;
    try {
      const r = await staffApi(`/api/v1/sites/${encodeURIComponent(id)}/units`);
      for (const u of r.units || []) state.units.set(u.id, u.name);
      (state.unitsLoaded ||= new Set()).add(id);
    } catch (e) {
      // The ids are shown then.
    }
  }
}

async function run(params) {
  const id = ++state.request;
  const results = $('results');
  results.setAttribute('aria-busy', 'true');
  results.classList.add('loading');
  announce(t('rp_loading'));
  let data;
  let comments = null;
  try {
    data = await staffApi('/api/v1/reports?' + query(params), { timeoutMs: 60000 });
    await loadUnits(params.site);
    comments = await loadComments(params);
  } catch (e) {
    if (id !== state.request) return;
    if (e instanceof ApiError && e.status === 401) return; // the login form is back; we resume after it
    showFormError(refusalText(e));
    return;
  } finally {
    if (id === state.request) {
      results.removeAttribute('aria-busy');
      results.classList.remove('loading');
    }
  }
  if (id !== state.request) return;
  showFormError('');
  state.last = { params, data, comments };
  history.replaceState(null, '', '#' + new URLSearchParams({ site: params.site, from: params.from, to: params.to, group: params.group }).toString());
  render();
  announce(t('rp_ready', { n: (data.rows || []).length }));
}

/** The customers' feedback comments of one site and range (null for every site, or when not readable). */
async function loadComments(params) {
  if (!params.site || params.site === ALL) return null;
  const q = new URLSearchParams({ site: params.site, from: params.from, to: params.to });
  if (params.lang) q.set('lang', params.lang);
  try {
    return await staffApi('/api/v1/reports/feedback?' + q.toString());
  } catch (e) {
    return null;
  }
}

function renderComments(comments) {
  const box = $('fb-comments');
  box.hidden = !comments;
  if (!comments) return;
  const list = comments.comments || [];
  $('fb-comments-heading').textContent = t('rp_comments_heading');
  $('fb-comments-note').textContent = t('rp_comments_note');
  $('fb-comments-none').textContent = t('rp_comments_none');
  $('fb-comments-none').hidden = list.length > 0;
  $('fb-comments-list').replaceChildren(
    ...list.map((c) =>
      el('li', {},
        el('p', { class: 'fb-meta' }, `${dateText(c.date)} · ${c.service_name} · ${t('rp_comments_rating', { n: c.rating })}`),
        el('p', { class: 'fb-text' }, c.comment),
      ),
    ),
  );
}

/** What the daemon said when it refused, in plain words (its own reason for a bad request). */
function refusalText(e) {
  if (!(e instanceof ApiError)) return t('error_unknown');
  if (e.code === 'network') return t('error_network');
  if (e.status === 403) return t('rp_err_forbidden');
  if (e.status === 404) return t('rp_err_not_found');
  if (e.status === 400 || e.status === 422) return t('rp_err_refused', { reason: e.message });
  return errorText(e);
}

// ---- rendering ---------------------------------------------------------------------------------------

function siteLabel(params) {
  if (params.site === ALL) return t('rp_all_sites_short');
  const s = state.sites.find((x) => x.id === params.site);
  return s ? pick(s.name, lang) || s.id : params.site;
}

function render() {
  const { params, data } = state.last;
  const rows = data.rows || [];
  const group = data.group || params.group;
  const vars = {
    site: siteLabel(params),
    from: dateText(data.from || params.from),
    to: dateText(data.to || params.to),
    group: t('rp_by_' + group),
  };
  $('results').hidden = false;
  $('results').dataset.query = query(params);
  $('results-heading').textContent = t('rp_results_heading', vars);
  const today = todayIn(siteTimeZone(params.site === ALL ? null : params.site));
  $('provisional').hidden = !((data.to || params.to) >= today && (data.from || params.from) <= today);
  if (params.site !== ALL) $('supervisor-link').href = '/desk/supervisor.html#site=' + encodeURIComponent(params.site);
  const csv = $('csv-link');
  csv.href = '/api/v1/reports?' + query(params, 'csv');
  csv.dataset.site = params.site;
  $('results-empty').hidden = rows.length > 0;
  $('table-wrap').hidden = rows.length === 0;
  renderTable(data, group, vars);
  renderComments(state.last.comments);
  renderCharts(data, group, vars);
  renderBusiest(data, group);
  renderColumnHelp(data.columns || []);
}

function renderTable(data, group, vars) {
  const columns = data.columns || [];
  const nameCol = columns.includes(NAME_COLUMN[group]) ? NAME_COLUMN[group] : columns.find((c) => KEY_COLUMNS.has(c)) || columns[0];
  // An id is shown only where nothing names it: internal ids (`kela-general`) mean nothing to a reader.
  // A unit id left without its name column is shown by name (labelText).
  const keys = [nameCol, ...columns.filter((c) => KEY_COLUMNS.has(c) && c !== nameCol && !(NAMED_BY[c] && columns.includes(NAMED_BY[c])))];
  const figures = columns.filter((c) => !KEY_COLUMNS.has(c));
  const families = FAMILIES.map((f) => ({ key: f.key, cols: f.cols.filter((c) => figures.includes(c)) })).filter((f) => f.cols.length);
  const known = new Set(families.flatMap((f) => f.cols));
  const other = figures.filter((c) => !known.has(c));
  if (other.length) families.push({ key: 'rp_fam_other', cols: other });
  const ordered = [...keys, ...families.flatMap((f) => f.cols)];
  const keyOf = group === 'site' ? 'site' : { day: 'date', week: 'week_start', month: 'month_start' }[group] || group;

  const table = $('report-table');
  $('report-caption').textContent = t('rp_table_caption', vars);
  for (const c of table.querySelectorAll('colgroup')) c.remove();
  const cols = [el('colgroup', { span: String(keys.length) }), ...families.map((f) => el('colgroup', { span: String(f.cols.length) }))];
  $('report-caption').after(...cols);

  const unitNote = (c) => (isMinutes(c) ? t('rp_unit_min') : isShare(c) ? t('rp_unit_percent') : isHours(c) ? t('rp_unit_h') : null);
  const head = (c, attrs = {}) => {
    const u = unitNote(c);
    return el('th', { scope: 'col', class: KEY_COLUMNS.has(c) ? '' : 'num', dataset: { col: c }, ...attrs }, colLabel(c), u ? el('span', { class: 'unit' }, ' (', u, ')') : null);
  };
  $('report-head').replaceChildren(
    el('tr', {}, ...keys.map((c) => head(c, { rowspan: '2' })), ...families.map((f) => el('th', { scope: 'colgroup', colspan: String(f.cols.length), class: 'family' }, t(f.key)))),
    el('tr', {}, ...families.flatMap((f) => f.cols.map((c) => head(c)))),
  );
  $('report-body').replaceChildren(
    ...(data.rows || []).map((row) =>
      el('tr', { dataset: { key: String(row[keyOf] ?? '') } },
        ...ordered.map((c, i) => {
          const text = KEY_COLUMNS.has(c) ? labelText(c, row[c]) : figureText(c, row[c]);
          const cell = i === 0 ? el('th', { scope: 'row', dataset: { col: c } }) : el('td', { class: KEY_COLUMNS.has(c) ? 'key' : 'num', dataset: { col: c } });
          if (text === null) cell.append(...noValue());
          else cell.textContent = text;
          return cell;
        }),
      ),
    ),
  );
}

/** A legend's colour square, coloured through the CSSOM (the pages' CSP allows no inline style). */
function swatch(color) {
  const e = el('span', { class: 'swatch' });
  e.style.background = color;
  return e;
}

/** One chart in a figure with a visible caption and a legend (the SVG itself is an image with a name). */
function figure(id, title, desc, labels, series, opts) {
  const svg = categoryChart({ id, title, desc, labels, series, ...opts });
  const legend = series.length > 1
    ? el('ul', { class: 'legend', 'aria-hidden': 'true' }, ...series.map((s) => el('li', {}, swatch(s.color), s.name)))
    : null;
  return el('div', { class: 'chart', id: 'chart-' + id }, el('figure', {}, el('figcaption', {}, title), svg, legend));
}

/** A sentence per series: its total and where it was highest. */
function totalsDesc(labels, series, fmt) {
  return series
    .map((s) => {
      const vals = s.values.map((v) => v ?? 0);
      const total = vals.reduce((a, b) => a + b, 0);
      const max = Math.max(0, ...vals);
      return max > 0
        ? t('rp_desc_total', { series: s.name, total: fmt(total), top: labels[vals.indexOf(max)], max: fmt(max) })
        : t('rp_desc_none', { series: s.name });
    })
    .join(' ');
}

/** A sentence per series: where it was highest (for waits and rates, which do not add up). */
function maxDesc(labels, series, fmt) {
  return series
    .map((s) => {
      const vals = s.values.map((v) => (v === null || v === undefined ? -Infinity : v));
      const max = Math.max(...vals);
      return Number.isFinite(max) ? t('rp_desc_max', { series: s.name, top: labels[vals.indexOf(max)], max: fmt(max) }) : t('rp_desc_none', { series: s.name });
    })
    .join(' ');
}

/** The rows of a chart: for hours of the day, every hour from the first to the last (at least 08-17), empty ones as zeros. */
function chartRows(rows, group) {
  if (group !== 'hour' || !rows.length) return rows;
  const by = new Map(rows.map((r) => [Number(r.hour), r]));
  const lo = Math.min(8, ...by.keys());
  const hi = Math.max(17, ...by.keys());
  const out = [];
  for (let h = lo; h <= hi; h++) out.push(by.get(h) || { hour: h, arrivals: 0, called: 0, served: 0 });
  return out;
}

function renderCharts(data, group, vars) {
  const box = $('charts');
  if (!(data.rows || []).length) {
    box.replaceChildren();
    return;
  }
  const horizontal = !TIME_GROUPS.has(group);
  const rows = chartRows(data.rows || [], group);
  const labels = rows.map((r) => axisLabel(group, r));
  const names = rows.map((r) => (TIME_GROUPS.has(group) ? labelText(NAME_COLUMN[group], r[NAME_COLUMN[group]]) : rowName(group, r)));
  const has = (c) => (data.columns || []).includes(c) && rows.some((r) => r[c] !== null && r[c] !== undefined);
  const col = (c, list = rows) => list.map((r) => (r[c] === null || r[c] === undefined ? null : Number(r[c])));
  const tableNote = ' ' + t('rp_desc_table');
  const charts = [];

  // Customers: arrivals (or, for counters and staff, where arrivals do not apply, called) and served.
  const first = has('arrivals') || !has('called') ? 'arrivals' : 'called';
  const volume = [
    { name: colLabel(first), values: col(first).map((v) => v ?? 0), color: COLORS.a },
    { name: colLabel('served'), values: col('served').map((v) => v ?? 0), color: COLORS.b },
  ];
  const volTitle = t(first === 'arrivals' ? 'rp_chart_volume' : 'rp_chart_volume_called', vars);
  charts.push(figure('volume', volTitle, totalsDesc(names, volume, (v) => num(v)) + tableNote, labels, volume, { horizontal, format: (v) => num(v) }));

  // Waiting times: mean, median and 90th percentile, for the rows with anyone called.
  const waitCols = ['wait_mean_minutes', 'wait_median_minutes', 'wait_p90_minutes'];
  const withWaits = rows.map((r, i) => i).filter((i) => waitCols.some((c) => rows[i][c] !== null && rows[i][c] !== undefined));
  const waitTitle = t('rp_chart_waits', vars);
  if (withWaits.length) {
    const pickRows = withWaits.map((i) => rows[i]);
    const waits = waitCols.map((c, j) => ({ name: colLabel(c), values: col(c, pickRows), color: [COLORS.a, COLORS.b, COLORS.c][j] }));
    const wLabels = withWaits.map((i) => labels[i]);
    const wNames = withWaits.map((i) => names[i]);
    charts.push(figure('waits', waitTitle, maxDesc(wNames, waits, (v) => t('minutes_short', { n: num(v, 1) })) + tableNote, wLabels, waits, { horizontal, format: (v) => num(v, Number.isInteger(v) ? 0 : 1), minStep: 1 }));
  } else {
    charts.push(el('div', { class: 'chart', id: 'chart-waits' }, el('h3', { class: 'chart-title' }, waitTitle), el('p', { class: 'empty' }, t('rp_no_waits'))));
  }

  // Comparing sites: visits per opening hour (the hours at least one counter was open).
  if (group === 'site' && has('visits_per_opening_hour')) {
    const s = [{ name: colLabel('visits_per_opening_hour'), values: col('visits_per_opening_hour'), color: COLORS.a }];
    charts.push(figure('visits', t('rp_chart_visits', vars), maxDesc(names, s, (v) => num(v, 2)) + tableNote, labels, s, { horizontal, format: (v) => num(v, Number.isInteger(v) ? 0 : 1), minStep: 0.5 }));
  }

  // Counter time: busy and idle hours, per counter or staff member.
  if ((group === 'counter' || group === 'staff') && has('open_hours')) {
    const s = [
      { name: colLabel('busy_hours'), values: col('busy_hours'), color: COLORS.a },
      { name: colLabel('idle_hours'), values: col('idle_hours'), color: COLORS.c },
    ];
    charts.push(figure('counter-time', t('rp_chart_counter_time', vars), totalsDesc(names, s, (v) => t('rp_hours_short', { n: num(v, 1) })) + tableNote, labels, s, { horizontal, format: (v) => num(v, Number.isInteger(v) ? 0 : 1), minStep: 0.5 }));
  }
  box.replaceChildren(...charts);
}

function renderBusiest(data, group) {
  const list = data.busiest_hours || [];
  $('busiest').hidden = !(group === 'hour' && list.length);
  $('busiest-list').replaceChildren(
    ...list.map((b) =>
      el('li', { dataset: { hour: String(b.hour) } },
        el('strong', {}, hourText(b.hour)), ': ',
        t('rp_busiest_item', {
          per_day: num(b.arrivals_per_day, 1),
          wait: b.wait_mean_minutes === null || b.wait_mean_minutes === undefined ? t('rp_no_wait') : t('minutes_short', { n: num(b.wait_mean_minutes, 1) }),
        }),
      ),
    ),
  );
}

function renderColumnHelp(columns) {
  $('columns-list').replaceChildren(
    ...columns.filter((c) => !KEY_COLUMNS.has(c)).flatMap((c) => {
      const key = 'rp_help_' + c;
      const help = t(key);
      return help === key ? [] : [el('dt', {}, colLabel(c)), el('dd', {}, help)];
    }),
  );
}

boot();
