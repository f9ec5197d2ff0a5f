// Helpers shared by the hall display and the counter display: strings in several languages at once,
// the server's clock, the stale banner, the wall clock and the reports that the page renders.

import { loadStrings, fill } from '/shared/vuoro.js';

/** Loads display-ui/i18n/<lang>.json for each language; a missing file falls back to English. */
export async function loadAll(langs) {
  const out = {};
  let en = null;
  for (const l of langs) {
    try {
      out[l] = await loadStrings('/display/i18n', l);
    } catch (e) {
      en = en || (await loadStrings('/display/i18n', 'en'));
      out[l] = en;
    }
  }
  return out;
}

const RTL = new Set(['ar', 'fa', 'he', 'ur']);

/** True for a right-to-left language (Arabic, Persian, …). */
export function isRtl(lang) {
  return RTL.has(String(lang || '').split('-')[0]);
}

/** Sets the page's language and direction from the display's first language. */
export function setPageLang(lang) {
  document.documentElement.lang = lang;
  document.documentElement.dir = isRtl(lang) ? 'rtl' : 'ltr';
}

/** An element holding `text` in `lang`, with that language's direction (ticket numbers stay LTR). */
export function inLang(tag, lang, text, className) {
  const el = document.createElement(tag);
  el.lang = lang;
  el.dir = isRtl(lang) ? 'rtl' : 'ltr';
  if (className) el.className = className;
  el.textContent = text;
  return el;
}

/**
 * The same message in every display language, side by side: "Kutsutaan · Nu kallas · Now calling".
 * `textOf(lang)` gives each text; the first language gets class `primary`.
 */
export function multi(langs, textOf, { tag = 'span', sep = ' · ', className = '' } = {}) {
  const wrap = document.createElement(tag);
  if (className) wrap.className = className;
  const seen = new Set();
  langs.forEach((l, i) => {
    const t = textOf(l);
    if (!t || seen.has(t)) return; // "Kela" in three languages is said once
    seen.add(t);
    if (wrap.childNodes.length) {
      const s = document.createElement('span');
      s.className = 'sep';
      s.setAttribute('aria-hidden', 'true');
      s.textContent = sep;
      wrap.append(s);
    }
    wrap.append(inLang('span', l, t, i === 0 ? 'primary' : 'secondary'));
  });
  return wrap;
}

/** A translated string for `lang`. */
export function tr(strings, lang, key, vars) {
  const s = (strings[lang] && strings[lang][key]) ?? (strings.en && strings.en[key]) ?? key;
  return fill(s, vars);
}

/**
 * Fetches JSON and learns the server's clock from the `Date` header, so that the age of a call is judged
 * by the server's time even if this PC's clock is wrong. Returns { status, data, offsetMs }.
 */
export async function fetchJson(path) {
  const sent = Date.now();
  const res = await fetch(path, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  const got = Date.now();
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  const date = Date.parse(res.headers.get('date') || '');
  // The header has whole seconds: take the middle of that second and of the round trip.
  const offsetMs = Number.isFinite(date) ? date + 500 - (sent + got) / 2 : null;
  return { status: res.status, data, offsetMs };
}

let timeZone; // the site's IANA time zone; undefined: the PC's own

/** Shows every time in `tz` (the site's time zone from its display entry), not the display PC's. */
export function setTimeZone(tz) {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz || undefined });
    timeZone = tz || undefined;
  } catch (e) {
    timeZone = undefined; // an unknown zone: the PC's own is the best left
  }
}

/** Formats a time (ms) as HH:MM in a language's locale, in the site's time zone. */
export function hhmm(ms, locale) {
  try {
    return new Intl.DateTimeFormat(locale || 'fi-FI', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone }).format(new Date(ms));
  } catch (e) {
    const d = new Date(ms);
    return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  }
}

/** Keeps #clock showing the time of the site's time zone. */
export function startClock(el, locale) {
  const tick = () => {
    const now = Date.now();
    el.textContent = hhmm(now, locale);
    el.dateTime = new Date(now).toISOString();
  };
  tick();
  setInterval(tick, 5000);
}

/**
 * Shows or hides the "not up to date" banner in every language, with the time of the last message.
 */
export function setStaleBanner(el, stale, langs, strings, lastMs) {
  el.hidden = !stale;
  document.body.dataset.status = stale ? 'stale' : document.body.dataset.status === 'stale' ? 'live' : document.body.dataset.status;
  if (!stale) return;
  el.replaceChildren(
    multi(langs, (l) => tr(strings, l, 'stale'), { className: 'stale-title' }),
    multi(langs, (l) => tr(strings, l, 'last_known', { time: hhmm(lastMs, tr(strings, l, 'locale')) }), { className: 'stale-detail' }),
  );
}

/**
 * Shows items of a list page by page when they do not all fit: the page changes every `everyMs`.
 * Returns { update() } to call after the list's items change (it goes back to the first page).
 */
export function pager(listEl, pagerEl, langs, strings, everyMs = 8000) {
  let page = 0;
  let pages = [[]];
  // Pages are found by layout, so this works for a column of rows and for a wrapping grid alike: show the
  // items not yet on a page, take those that end inside the list's box, repeat.
  const layout = () => {
    const items = [...listEl.children];
    const box = listEl.getBoundingClientRect();
    pages = [];
    let rest = items;
    while (rest.length) {
      for (const it of items) it.hidden = !rest.includes(it);
      let n = 0;
      while (n < rest.length && rest[n].getBoundingClientRect().bottom <= box.bottom + 0.5) n++;
      n = Math.max(1, n);
      pages.push(rest.slice(0, n));
      rest = rest.slice(n);
    }
    if (!pages.length) pages = [[]];
    if (page >= pages.length) page = 0;
    show();
  };
  const show = () => {
    pages.forEach((p, i) => p.forEach((it) => (it.hidden = i !== page)));
    if (pagerEl) {
      pagerEl.hidden = pages.length < 2;
      if (pages.length > 1) {
        pagerEl.replaceChildren(multi(langs, (l) => tr(strings, l, 'page', { n: page + 1, of: pages.length })));
      }
    }
  };
  setInterval(() => {
    if (pages.length < 2) return;
    page = (page + 1) % pages.length;
    show();
  }, everyMs);
  return {
    update(resetPage = true) {
      if (resetPage) page = 0;
      layout();
    },
  };
}

/**
 * Tells the daemon that this page renders: every `everyMs` it asks for one animation frame, and when that
 * frame's callback runs it calls `send({ type: 'rendering' })`. A page whose main thread is blocked, or
 * whose rendering stopped (a hung compositor, a hidden tab), sends nothing while its socket stays open,
 * and the daemon marks the display `frozen` (docs/operations.md, "Displays"). Returns a counter of the
 * reports sent, for diagnostics.
 */
export function reportRendering(send, everyMs) {
  const state = { sent: 0 };
  let asked = false; // a frame asked for and not drawn yet: ask for no other
  setInterval(() => {
    if (asked) return;
    asked = true;
    requestAnimationFrame(() => {
      asked = false;
      send({ type: 'rendering' });
      state.sent++;
    });
  }, everyMs);
  return state;
}
