// The counter display: /display/counter.html?site=iso-omena&counter=c5[&langs=fi,sv,en]
//
// A small screen above one counter: its name, and the number called there now, or "closed". Fed by the
// public topic calls:{site}. Without `site`, the first site the daemon lists is used.

import { Live, api, pick, numberHtml } from '/shared/vuoro.js';
import { loadAll, multi, tr, setStaleBanner, setPageLang } from './common.js';

const params = new URLSearchParams(location.search);
const counterId = params.get('counter') || '';
let siteId = params.get('site') || '';

const $ = (id) => document.getElementById(id);
const S = { langs: ['fi', 'sv', 'en'], strings: {}, counter: null, key: null, stale: false, lastMessage: Date.now() };

window.vuoroDisplay = {
  get status() {
    return document.body.dataset.status;
  },
  get counter() {
    return S.counter ? { ...S.counter } : null;
  },
};

async function boot() {
  let site = null;
  for (;;) {
    try {
      const { sites } = await api('/api/v1/sites');
      site = siteId ? sites.find((s) => s.id === siteId) : sites[0];
      break;
    } catch (e) {
      await new Promise((r) => setTimeout(r, 5000));
    }
  }
  const fromParam = (params.get('langs') || '').split(',').map((s) => s.trim()).filter(Boolean);
  S.langs = fromParam.length ? fromParam : site ? site.languages.slice(0, 3) : S.langs;
  S.strings = await loadAll(S.langs);
  setPageLang(S.langs[0]);
  if (!site || !counterId) {
    $('counter-name').replaceChildren(multi(S.langs, (l) => tr(S.strings, l, 'counter_not_found')));
    return;
  }
  siteId = site.id;
  $('counter-now').replaceChildren(multi(S.langs, (l) => tr(S.strings, l, 'connecting'), { tag: 'p', className: 'state' }));

  const live = new Live({
    onSnapshot: (topic, data) => {
      const c = data.counters.find((x) => x.id === counterId);
      S.counter = c ? { ...c } : null;
      render(false);
    },
    onEvent: (topic, ev) => onEvent(ev),
    // The counter's name or services may have changed: the page loads afresh.
    onConfigChanged: () => setTimeout(() => location.reload(), 500 + Math.random() * 1500),
    onStatus,
  });
  // As on the hall display: 'stale' is shown once nothing has come for 15 s, not at the first close.
  let timer = null;
  function onStatus(status) {
    clearTimeout(timer);
    if (status === 'stale') {
      const wait = (live.lastMessage || 0) + 15000 - Date.now();
      if (wait > 0) {
        timer = setTimeout(() => onStatus('stale'), wait);
        return;
      }
    }
    S.stale = status === 'stale';
    if (status === 'live') document.body.dataset.status = 'live';
    setStaleBanner($('stale'), S.stale, S.langs, S.strings, live.lastMessage || Date.now());
    render(false);
  }
  live.subscribe(`calls:${siteId}`);
  live.start();
}

/**
 * A calls-topic event: `counter` is always the counter's id. A call (`ticket_called`, `ticket_recalled`)
 * has its `counter_name`, `location` and the called `number`; every other kind is a counter after it
 * changed, as `counter_state` (PublicCounter).
 */
function onEvent(ev) {
  if (ev.kind === 'ticket_called' || ev.kind === 'ticket_recalled') {
    if (ev.counter !== counterId) return;
    S.counter = { ...(S.counter || { id: counterId }), name: ev.counter_name, location: ev.location, state: 'calling', current: ev.number };
    render(true);
    return;
  }
  if (ev.counter !== counterId) return;
  S.counter = { ...ev.counter_state };
  render(false);
}

function render(flash) {
  const c = S.counter;
  if (!c) {
    $('counter-name').replaceChildren(multi(S.langs, (l) => tr(S.strings, l, 'counter_not_found')));
    $('counter-now').replaceChildren();
    return;
  }
  $('counter-name').replaceChildren(multi(S.langs, (l) => pick(c.name, l) || c.id));
  $('counter-location').replaceChildren(c.location && Object.keys(c.location).length ? multi(S.langs, (l) => pick(c.location, l)) : '');
  const now = $('counter-now');
  const key = c.state === 'closed' ? 'closed' : c.current ? `n:${c.current}` : 'open';
  if (key === S.key && !flash) {
    const box = now.querySelector('.current');
    if (box) box.classList.toggle('is-stale', S.stale);
    return;
  }
  S.key = key;
  if (c.state === 'closed') {
    now.replaceChildren(multi(S.langs, (l) => tr(S.strings, l, 'closed'), { tag: 'p', className: 'state closed' }));
  } else if (c.current) {
    const box = document.createElement('div');
    box.className = 'current' + (flash && !S.stale ? ' flash' : '') + (S.stale ? ' is-stale' : '');
    box.dataset.number = c.current;
    box.append(numberHtml(c.current));
    now.replaceChildren(multi(S.langs, (l) => tr(S.strings, l, 'now_serving'), { tag: 'p', className: 'label' }), box);
  } else {
    now.replaceChildren(multi(S.langs, (l) => tr(S.strings, l, 'open'), { tag: 'p', className: 'state' }));
  }
}

boot().catch((e) => console.error(e));
