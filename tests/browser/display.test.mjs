// Browser tests of the hall and counter displays (display-ui/) in Debian's headless Chromium against the
// real daemon with the demo hall. Run: cd tests/browser && node --test --test-concurrency=1 display.test.mjs
// VUORO_SCREENSHOTS=1 also writes docs/screenshots/display-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, launchBrowser, originBoundPage, axeViolations, apiCall, login, signIn, repo } from './lib.mjs';
import { addRecent, pruneRecent, RECENT_KEEP_MS, FRESH_MS, volumeNow, fontSizes, pxPerMm, toCall, isFresh, laneView, rowFontPx, RECENT_ROWS } from '../../display-ui/model.js';

const SITE = 'iso-omena';
const HD = { width: 1920, height: 1080 };
const screenshots = process.env.VUORO_SCREENSHOTS === '1';
const hasEspeak = spawnSync('espeak-ng', ['--version']).status === 0;

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** A fresh daemon and the clients a test needs to make calls; `config` replaces the demo hall's config. */
async function hall({ config } = {}) {
  const d = await startDaemon(config ? { config } : {});
  const staff = await login(d.url, 'agent2');
  const kiosk = (await apiCall(d.url, '/api/v1/demo/device-token?device=kiosk-1')).data.token;
  assert.ok(kiosk, 'demo kiosk token');
  const post = async (path, body, token = staff) => {
    const r = await apiCall(d.url, path, { method: 'POST', body, token });
    assert.ok(r.status >= 200 && r.status < 300, `${path}: ${r.status} ${JSON.stringify(r.data)}`);
    return r.data;
  };
  return {
    d,
    url: d.url,
    open: (c) => post(`/api/v1/counters/${c}/open`, {}),
    close: (c) => post(`/api/v1/counters/${c}/close`, {}),
    finish: (c) => post(`/api/v1/counters/${c}/finish`, {}),
    recall: (c) => post(`/api/v1/counters/${c}/recall`, {}),
    ticket: async (service, lang = 'fi') => (await post(`/api/v1/sites/${SITE}/tickets`, { service, lang }, kiosk)).number,
    callNext: async (c) => (await post(`/api/v1/counters/${c}/call-next`, {})).ticket.number,
    async stop() {
      await this.d.stop();
      this.d.cleanup();
    },
  };
}

/**
 * Opens a display page with its audio instrumented: every HTMLMediaElement.play() is recorded with its
 * source and the times it started and ended, and every number that becomes the presented call is recorded
 * with the time it appeared (a MutationObserver, independent of the display's own code).
 */
async function openDisplay(url, path, contextOpts = {}, { wsSwitch = false } = {}) {
  const { page, context, foreign } = await originBoundPage(browser, url, { viewport: HD, ...contextOpts });
  // With wsSwitch, the display's WebSocket goes through a switch (routeWebSocket must be set before the
  // page loads): while `sw.blocked`, new connections are closed at once, as if the daemon were unreachable.
  const sw = { blocked: false };
  if (wsSwitch) {
    await page.routeWebSocket('**/api/v1/ws', (ws) => {
      if (sw.blocked) ws.close();
      else ws.connectToServer();
    });
  }
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // When the display last heard anything from the daemon (any WebSocket frame, heartbeats included).
  const ws = { lastFrame: 0 };
  page.on('websocket', (sock) => sock.on('framereceived', () => (ws.lastFrame = Date.now())));
  await context.addInitScript(() => {
    // Audio: each play() with its source, start and end. A file that is replaced (new src) or joined by
    // another play() while it is still playing is marked `cut`: an overlap or a cut-off announcement.
    window.__plays = [];
    const els = [];
    const settle = (i, now) => {
      const r = window.__plays[i];
      if (r.end !== null) return;
      if (els[i].ended) r.end = now; // finished; its 'ended' event may not have been dispatched yet
      else if (!els[i].paused) r.cut = true;
    };
    const srcProp = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, 'src');
    Object.defineProperty(HTMLMediaElement.prototype, 'src', {
      get() {
        return srcProp.get.call(this);
      },
      set(v) {
        const now = Date.now();
        els.forEach((el, i) => el === this && settle(i, now));
        srcProp.set.call(this, v);
      },
      configurable: true,
    });
    const play = HTMLMediaElement.prototype.play;
    HTMLMediaElement.prototype.play = function () {
      const now = Date.now();
      els.forEach((_, i) => settle(i, now));
      const rec = { src: new URL(this.src, location.href).pathname, start: now, end: null, error: null, cut: false };
      window.__plays.push(rec);
      els.push(this);
      const ended = () => {
        if (rec.end === null) rec.end = Date.now();
        off();
      };
      const failed = () => {
        rec.error = (this.error && this.error.code) || 'error';
        rec.end = Date.now();
        off();
      };
      const off = () => {
        this.removeEventListener('ended', ended);
        this.removeEventListener('error', failed);
      };
      this.addEventListener('ended', ended);
      this.addEventListener('error', failed);
      return play.call(this);
    };
    window.__presented = [];
    window.__seen = {};
    const watch = () => {
      new MutationObserver(() => {
        for (const el of document.querySelectorAll('.lane .current[data-number]')) {
          if (el.__logged) continue;
          el.__logged = true;
          window.__presented.push({ number: el.dataset.number, lane: el.closest('.lane').dataset.lane, t: Date.now() });
        }
        for (const el of document.querySelectorAll('[data-number]')) {
          if (!(el.dataset.number in window.__seen)) window.__seen[el.dataset.number] = Date.now();
        }
      }).observe(document.body, { childList: true, subtree: true });
    };
    if (document.body) watch();
    else addEventListener('DOMContentLoaded', watch);
  });
  await page.goto(url + path);
  return { page, context, foreign, errors, ws, sw };
}

async function waitLive(page) {
  await page.waitForFunction(() => document.body.dataset.status === 'live', null, { timeout: 10000 });
}

/** Public call events, each with its announcement, as an independent client sees them (a WebSocket in a blank same-origin page). */
async function observeCalls(url) {
  const { page, context } = await originBoundPage(browser, url);
  await page.goto(url + '/display/i18n/en.json');
  await page.evaluate(
    (topics) =>
      new Promise((resolve, reject) => {
        window.__events = [];
        window.__announcements = {};
        let snapshots = 0;
        const ws = new WebSocket(`ws://${location.host}/api/v1/ws`);
        ws.onopen = () => topics.forEach((topic) => ws.send(JSON.stringify({ type: 'subscribe', topic })));
        ws.onmessage = (m) => {
          const msg = JSON.parse(m.data);
          if (msg.type === 'snapshot' && ++snapshots === topics.length) resolve();
          if (msg.type !== 'event') return;
          // What to play follows each call on announcements:, with the call's seq.
          if (msg.topic.startsWith('announcements:')) window.__announcements[msg.seq] = msg.event;
          else window.__events.push({ ...msg.event, seq: msg.seq });
        };
        setTimeout(() => reject(new Error('no snapshots in 5 s')), 5000);
      }),
    [`calls:${SITE}`, `announcements:${SITE}`],
  );
  return {
    // The calls so far, each with its announcement's fields (`audio`, `announce_lang`, ...): waits for
    // every call's announcement.
    calls: async () => {
      const isCall = (e) => e.kind === 'ticket_called' || e.kind === 'ticket_recalled';
      await page.waitForFunction((calls) => window.__events.filter((e) => calls.includes(e.kind)).every((e) => e.seq in window.__announcements),
        ['ticket_called', 'ticket_recalled'], { timeout: 10000 });
      const [events, anns] = await page.evaluate(() => [window.__events, window.__announcements]);
      return events.filter(isCall).map((e) => {
        const a = anns[e.seq];
        return { ...e, audio: a.audio, announce_lang: a.announce_lang, chime_only: a.chime_only, duration_ms: a.duration_ms };
      });
    },
    close: () => context.close(),
  };
}

const plays = (page) => page.evaluate(() => window.__plays);
const presented = (page) => page.evaluate(() => window.__presented);

/** WCAG contrast ratio of two CSS rgb() colours. */
function contrast(a, b) {
  const lum = (c) => {
    const [r, g, bl] = c.match(/[\d.]+/g).slice(0, 3).map(Number).map((v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [l1, l2] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (l1 + 0.05) / (l2 + 0.05);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// ---- pure logic ----------------------------------------------------------------------------------

test('model: the recent list keeps a call for at least five minutes, one row per number, newest first', () => {
  const t0 = Date.parse('2026-11-23T10:00:00Z');
  const call = (number, at, counter = 'c5') => toCall({ number, counter, counter_name: {}, zone: 'main', at: new Date(at).toISOString() });
  let list = [];
  list = addRecent(list, call('Y001', t0), t0);
  list = addRecent(list, call('Y002', t0 + 1000), t0 + 1000);
  list = addRecent(list, call('Y001', t0 + 2000, 'c6'), t0 + 2000); // called again elsewhere
  assert.deepEqual(list.map((c) => [c.number, c.counter]), [['Y001', 'c6'], ['Y002', 'c5']]);
  assert.ok(RECENT_KEEP_MS >= 5 * 60 * 1000);
  assert.equal(pruneRecent(list, t0 + 1000 + 5 * 60 * 1000).length, 2, 'still there after five minutes');
  assert.deepEqual(pruneRecent(list, t0 + 2000 + RECENT_KEEP_MS + 1), [], 'gone after the keep time');
  assert.ok(isFresh(call('Y003', t0), t0 + FRESH_MS) && !isFresh(call('Y003', t0), t0 + FRESH_MS + 1));
  // The large call is the newest of its lane at once; the rest follow newest first.
  const view = laneView(list);
  assert.deepEqual([view.current.number, ...view.rows.map((c) => c.number)], ['Y001', 'Y002']);
  const l = addRecent(list, toCall({ number: 'L001', counter: 'l1', zone: 'health', at: new Date(t0 + 3000).toISOString() }), t0 + 3000);
  assert.equal(laneView(l).current.number, 'L001');
  assert.equal(laneView(l, 'main').current.number, 'Y001');
  assert.deepEqual(laneView([], 'main'), { current: null, rows: [] });
});

test('model: volume schedule and number size rule', () => {
  const at = (h, m) => new Date(2026, 10, 23, h, m);
  const sched = ['18:00=55', '08:00=70', 'bad'];
  assert.equal(volumeNow(sched, at(7, 59)), 55);
  assert.equal(volumeNow(sched, at(8, 0)), 70);
  assert.equal(volumeNow(sched, at(18, 30)), 55);
  assert.equal(volumeNow([], at(12, 0)), 100);
  assert.equal(volumeNow(40, at(12, 0)), 40);
  const pxmm = pxPerMm(55, 1920, 1080);
  const f = fontSizes(10, pxmm);
  assert.equal(f.primaryMm, 100, 'the called number: distance / 100');
  assert.ok(Math.abs(f.secondaryMm - 10000 / 300) < 1e-9, 'read from a seat: distance / 300');
  assert.equal(fontSizes(3, pxmm).secondaryMm, 15, 'at least 15 mm');
  assert.ok(Math.abs((f.primaryPx * 0.729) / pxmm - 100) < 0.01);
  assert.ok(fontSizes(10, pxmm, { maxPrimaryPx: 100 }).clamped);
  // Six rows fit the list: the rule's size when there is room, else the largest that fits.
  assert.equal(RECENT_ROWS, 6);
  assert.equal(rowFontPx(72, 1000), 72);
  const px = rowFontPx(72, 400);
  assert.ok(px < 72 && Math.abs(6 * px * 1.12 + 5 * 6 - 400) < 1e-9);
});

test('every display string file has the same keys as English, each filled', () => {
  const dir = join(repo, 'display-ui', 'i18n');
  const en = JSON.parse(readFileSync(join(dir, 'en.json'), 'utf8'));
  for (const l of ['fi', 'sv', 'ar', 'ru', 'et', 'uk', 'zh']) {
    const s = JSON.parse(readFileSync(join(dir, `${l}.json`), 'utf8'));
    assert.deepEqual(Object.keys(s).sort(), Object.keys(en).sort(), l);
    for (const [k, v] of Object.entries(s)) assert.ok(typeof v === 'string' && v.length > 0, `${l}.${k}`);
    for (const k of Object.keys(en)) for (const ph of en[k].match(/\{\w+\}/g) || []) assert.ok(s[k].includes(ph), `${l}.${k} keeps ${ph}`);
  }
});

// ---- the hall display ----------------------------------------------------------------------------

test('a call appears on the hall display with its destination, measured latency', async () => {
  const h = await hall();
  try {
    await h.open('c5');
    const { page, foreign, errors } = await openDisplay(h.url, `/display/?site=${SITE}&id=hall`);
    await waitLive(page);
    const latencies = [];
    let first = null;
    let last = null;
    for (let i = 0; i < 5; i++) {
      const number = await h.ticket('joint-service');
      const sent = Date.now();
      await h.callNext('c5');
      const answered = Date.now();
      await page.waitForFunction((n) => n in window.__seen, number, { timeout: 5000, polling: 20 });
      const seen = await page.evaluate((n) => window.__seen[n], number);
      latencies.push({ fromRequest: seen - sent, fromAnswer: seen - answered });
      first ??= number;
      last = number;
      await page.waitForTimeout(300);
    }
    const fromAnswer = latencies.map((l) => l.fromAnswer);
    console.log(
      `call -> on screen: median ${median(fromAnswer)} ms, max ${Math.max(...fromAnswer)} ms after the call-next answer; ` +
        `max ${Math.max(...latencies.map((l) => l.fromRequest))} ms after the request (n=${latencies.length})`,
    );
    assert.ok(Math.max(...fromAnswer) < 1000, `every call on screen within 1 s: ${JSON.stringify(latencies)}`);

    // The newest call is the one shown large, with its destination in the three languages and its location.
    const box = page.locator(`.lane .current[data-number="${last}"]`);
    await box.waitFor({ timeout: 5000 });
    const text = await box.innerText();
    for (const s of ['Palvelupiste 5', 'Servicepunkt 5', 'Counter 5', 'Keskellä toria', 'Mitt på torget', 'Centre of the square']) {
      assert.ok(text.includes(s), `"${s}" in ${JSON.stringify(text)}`);
    }
    assert.equal(await box.locator('[lang="sv"]', { hasText: 'Servicepunkt 5' }).count(), 1, 'Swedish text marked lang="sv"');
    assert.equal(await box.locator('bdi[dir="ltr"]').innerText(), last);
    assert.equal(await page.getAttribute('.recent-item >> nth=-1', 'data-number'), first, 'the first call is at the end of the list');
    assert.deepEqual(foreign, []);
    assert.deepEqual(errors, []);
  } finally {
    await h.stop();
  }
});

/** Length of a PCM WAV file in ms, from its fmt and data chunks. */
function wavMs(buf) {
  let off = 12;
  let byteRate = 0;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === 'fmt ') byteRate = buf.readUInt32LE(off + 16);
    if (id === 'data') return byteRate ? Math.round((Math.min(size, buf.length - off - 8) / byteRate) * 1000) : 0;
    off += 8 + size + (size % 2);
  }
  return 0;
}

test('two calls in the same second are both shown and announced in order, never overlapping; a recall repeats', async () => {
  const h = await hall();
  try {
    await h.open('c5');
    await h.open('c6');
    const a = await h.ticket('joint-service');
    const b = await h.ticket('joint-service');
    const obs = await observeCalls(h.url);
    const { page, foreign, errors } = await openDisplay(h.url, `/display/?site=${SITE}&id=hall`);
    await waitLive(page);
    await Promise.all([h.callNext('c5'), h.callNext('c6')]);
    // Both are on screen at once: the later one large, the earlier one at the top of the recent list.
    await page.waitForFunction(() => window.__presented.length >= 2, null, { timeout: 5000 });
    const shown = await presented(page);
    const events = await obs.calls();
    assert.deepEqual(events.map((e) => e.number).sort(), [a, b].sort());
    assert.deepEqual(shown.map((p) => p.number), events.map((e) => e.number), 'presented in the order of the events');
    assert.equal(await page.getAttribute('.lane .current', 'data-number'), events[1].number, 'the newest call is the large one');
    assert.equal(await page.getAttribute('.recent-item >> nth=0', 'data-number'), events[0].number, 'the earlier one heads the list');

    // Every file of both announcements played, in order, each after the previous one ended.
    const expected = events.flatMap((e) => e.audio);
    assert.ok(expected.length >= 2, `announcements: ${JSON.stringify(events.map((e) => e.audio))}`);
    if (hasEspeak) {
      assert.ok(events.every((e) => !e.chime_only && e.audio.length === 2), 'spoken (espeak-ng is installed)');
      assert.deepEqual(events.map((e) => e.announce_lang), ['fi', 'sv'], 'zone main alternates fi and sv');
    }
    await page.waitForFunction((n) => window.__plays.length >= n && window.__plays.every((p) => p.end), expected.length, { timeout: 40000 });
    let log = await plays(page);
    assert.deepEqual(log.map((p) => p.src), expected);
    assert.ok(log.every((p) => !p.error && !p.cut), `no playback errors, nothing cut off: ${JSON.stringify(log)}`);
    for (let i = 1; i < log.length; i++) {
      assert.ok(log[i].start >= log[i - 1].end, `play ${i} started ${log[i - 1].end - log[i].start} ms before play ${i - 1} ended`);
    }
    const total = log[log.length - 1].end - log[0].start;
    // The files' real lengths, from their WAV headers (an announcement's duration_ms is an estimate
    // until its speech has been rendered once).
    let real = 0;
    for (const src of expected) {
      const buf = Buffer.from(await (await fetch(h.url + src)).arrayBuffer());
      real += wavMs(buf);
    }
    const announced = events.reduce((s, e) => s + e.duration_ms, 0);
    console.log(`two calls: ${log.length} files played in ${total} ms (files ${real} ms, announced ${announced} ms)`);
    assert.ok(total >= real * 0.9, 'files played to their end, not cut off');
    assert.ok(announced >= real * 0.9 && announced <= real * 1.5, `announced ${announced} ms for ${real} ms of audio`);

    // A recall repeats: highlighted again and announced again.
    await h.recall('c5');
    await page.waitForFunction(() => window.__presented.length >= 3, null, { timeout: 15000 });
    const recall = (await obs.calls()).find((e) => e.kind === 'ticket_recalled');
    assert.ok(recall, 'a ticket_recalled event');
    assert.equal((await presented(page))[2].number, recall.number);
    await page.waitForFunction((n) => window.__plays.length >= n && window.__plays.every((p) => p.end), expected.length + recall.audio.length, {
      timeout: 30000,
    });
    log = await plays(page);
    assert.deepEqual(log.slice(expected.length).map((p) => p.src), recall.audio);
    assert.ok(log[expected.length].start >= log[expected.length - 1].end);
    assert.deepEqual(foreign, []);
    assert.deepEqual(errors, []);
    await obs.close();
  } finally {
    await h.stop();
  }
});

test('the recent list shows earlier calls newest first with their destinations', async () => {
  const h = await hall();
  try {
    await h.open('c5');
    await h.open('c6');
    const { page, foreign } = await openDisplay(h.url, `/display/?site=${SITE}&id=hall`);
    await waitLive(page);
    const called = [];
    for (const c of ['c5', 'c6', 'c5']) {
      await h.ticket('joint-service');
      called.push({ number: await h.callNext(c), counter: c });
    }
    const last = called[called.length - 1];
    await page.waitForFunction((n) => document.querySelector(`.lane .current[data-number="${n}"]`), last.number, { timeout: 30000 });
    const rows = await page.$$eval('.recent-item', (els) => els.map((e) => ({ number: e.dataset.number, counter: e.dataset.counter, text: e.innerText })));
    assert.deepEqual(
      rows.map((r) => r.number),
      called.slice(0, -1).reverse().map((c) => c.number),
      'older calls, newest first, the presented one not repeated',
    );
    for (const r of rows) {
      const n = r.counter.slice(1);
      assert.ok(r.text.includes(`Palvelupiste ${n}`) && r.text.includes(`Counter ${n}`), r.text);
      assert.match(r.text, /\d\d[.:]\d\d/, 'with the time called');
    }
    assert.deepEqual(foreign, []);
  } finally {
    await h.stop();
  }
});

test('standard layout: seven quick calls, the newest large at once and the six others all on screen, never paged; sized for 10 m; the clock in the site time zone', async () => {
  const h = await hall();
  try {
    for (const c of ['c5', 'c6', 'l1', 'l2']) await h.open(c);
    for (let i = 0; i < 4; i++) await h.ticket('joint-service');
    for (let i = 0; i < 3; i++) await h.ticket('lab-sample');
    // The display PC's clock is set to New York; the hall is in Helsinki.
    const { page, foreign, errors, context } = await openDisplay(h.url, `/display/?site=${SITE}&id=hall&panel=55`, { timezoneId: 'America/New_York', bypassCSP: true });
    await waitLive(page);
    const called = [];
    for (const c of ['c5', 'c6', 'l1', 'l2', 'c5', 'c6', 'l1']) called.push(await h.callNext(c));
    const lastAt = Date.now();
    const newest = called[called.length - 1];
    // The large call is the newest one within moments, not after every earlier call has had its turn.
    await page.waitForFunction((n) => document.querySelector(`.lane .current[data-number="${n}"]`), newest, { timeout: 5000, polling: 50 });
    const lag = Date.now() - lastAt;
    assert.ok(lag < 2500, `the newest call took ${lag} ms to be shown large`);

    // The six others, newest first, every one visible inside the list at once, and still all there 9 s later.
    const visible = () =>
      page.evaluate(() => {
        const list = document.querySelector('.recent-list').getBoundingClientRect();
        return [...document.querySelectorAll('.recent-item')]
          .filter((li) => {
            const r = li.getBoundingClientRect();
            return !li.hidden && r.height > 0 && r.top >= list.top - 0.5 && r.bottom <= list.bottom + 0.5 && r.bottom <= innerHeight;
          })
          .map((li) => li.dataset.number);
      });
    const want = called.slice(0, -1).reverse();
    await page.waitForFunction((n) => document.querySelectorAll('.recent-item').length >= n, want.length);
    assert.deepEqual(await visible(), want, 'all six earlier calls on screen, newest first');
    assert.equal(await page.locator('.recent .pager').count(), 0, 'no pager on the recent calls');
    await page.waitForTimeout(9000);
    assert.deepEqual(await visible(), want, 'still all on screen 9 s later (no paging)');

    // Number first, then destination, on every row.
    const order = await page.$$eval('.recent-item', (els) => els.map((li) => li.querySelector('.recent-number').getBoundingClientRect().right <= li.querySelector('.dest').getBoundingClientRect().left));
    assert.ok(order.every(Boolean), 'number before destination');

    // Sizes for a 10 m viewing distance on a 55" panel: the called number 1 cm per metre, everything read
    // from a seat (recent numbers and destinations, queue names and counts, the clock) distance / 300.
    const m = await page.evaluate(() => {
      const px = (sel) => parseFloat(getComputedStyle(document.querySelector(sel)).fontSize);
      return {
        pxmm: Number(document.body.dataset.pxPerMm),
        called: px('.lane .current .current-number'),
        recent: px('.recent-item .recent-number'),
        dest: px('.recent-item .dest-name .primary'),
        queue: px('.queue-item .queue-name'),
        count: px('.queue-item .queue-count'),
        clock: px('#clock'),
        clamped: document.body.dataset.sizeClamped,
      };
    });
    const mm = (fontPx) => (fontPx * 0.729) / m.pxmm;
    console.log(`hall at 10 m on 55": called ${mm(m.called).toFixed(0)} mm, recent ${mm(m.recent).toFixed(1)} mm, queues ${mm(m.queue).toFixed(1)} mm, clock ${mm(m.clock).toFixed(1)} mm (clamped ${m.clamped})`);
    assert.ok(mm(m.called) >= 99, `called number ${mm(m.called)} mm`);
    for (const [what, px] of Object.entries({ recent: m.recent, dest: m.dest, queue: m.queue, count: m.count, clock: m.clock })) {
      assert.ok(mm(px) >= 10000 / 300 - 0.2, `${what}: ${mm(px).toFixed(1)} mm, the rule asks ${(10000 / 300).toFixed(1)} mm`);
    }
    assert.equal(m.clamped, 'false');

    // The clock shows Helsinki's time, not the display PC's.
    const tz = await page.evaluate(() => window.vuoroDisplay.timeZone);
    assert.equal(tz, 'Europe/Helsinki');
    const fmt = (ms) => new Intl.DateTimeFormat('fi-FI', { hour: '2-digit', minute: '2-digit', timeZone: 'Europe/Helsinki' }).format(new Date(ms));
    const clock = (await page.textContent('#clock')).trim();
    assert.ok([fmt(Date.now()), fmt(Date.now() - 6000)].includes(clock), `clock ${clock}, Helsinki ${fmt(Date.now())}`);
    const pcTime = await page.evaluate(() => new Intl.DateTimeFormat('fi-FI', { hour: '2-digit', minute: '2-digit' }).format(new Date()));
    assert.notEqual(clock, pcTime, 'not the PC time zone');

    await page.waitForTimeout(1500); // the blink is over: a calm picture
    if (screenshots) await page.screenshot({ path: join(repo, 'docs', 'screenshots', 'display-hall.png') });
    assert.deepEqual(await axeViolations(page), []);
    assert.deepEqual(foreign, []);
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await h.stop();
  }
});

test('a hall display whose first language is Arabic reads right to left, numbers left to right, Latin digits in the clock', async () => {
  // The demo hall with its standard display in Arabic, Finnish and English.
  const demo = readFileSync(join(repo, 'config', 'demo.toml'), 'utf8');
  const entry = '[[site.display]]\nid = "hall"\nzones = ["main", "health", "library"]\nlanguages = ["fi", "sv", "en"]';
  assert.ok(demo.includes(entry), 'the demo hall display entry');
  const dir = mkdtempSync(join(tmpdir(), 'vuoro-display-ar-'));
  const config = join(dir, 'hall-ar.toml');
  writeFileSync(config, demo.replace(entry, entry.replace('["fi", "sv", "en"]', '["ar", "fi", "en"]')));
  const h = await hall({ config });
  try {
    for (const c of ['c5', 'l1']) await h.open(c);
    await h.ticket('joint-service', 'ar');
    await h.ticket('lab-sample', 'ar');
    const { page, foreign, errors, context } = await openDisplay(h.url, `/display/?site=${SITE}&id=hall`, { bypassCSP: true });
    await waitLive(page);
    const a = await h.callNext('c5');
    const b = await h.callNext('l1');
    await page.waitForFunction((n) => document.querySelector(`.lane .current[data-number="${n}"]`), b, { timeout: 5000 });
    await page.waitForSelector(`.recent-item[data-number="${a}"]`);
    assert.equal(await page.getAttribute('html', 'dir'), 'rtl');
    assert.equal(await page.getAttribute('html', 'lang'), 'ar');
    const heading = page.locator('#now-h [lang="ar"]');
    assert.equal((await heading.innerText()).trim(), 'يُنادى الآن');
    assert.equal(await heading.getAttribute('dir'), 'rtl');
    assert.equal(await page.getAttribute('#now-h [lang="fi"]', 'dir'), 'ltr');
    // The ticket number stays left to right, and reads as issued.
    assert.equal(await page.locator('.lane .current bdi[dir="ltr"]').innerText(), b);
    // Times with Latin digits, as on the tickets.
    assert.match((await page.textContent('#clock')).trim(), /^\d\d[.:]\d\d$/);
    // The arrow points the way Arabic reads.
    assert.match(await page.$eval('.recent-item .arrow', (e) => getComputedStyle(e).transform), /matrix\(-1/);
    await page.waitForTimeout(10500); // after the blink, a calm picture
    if (screenshots) await page.screenshot({ path: join(repo, 'docs', 'screenshots', 'display-hall-ar.png') });
    assert.deepEqual(await axeViolations(page), []);
    assert.deepEqual(foreign, []);
    assert.deepEqual(errors, []);
    await context.close();

    // The counter display in Arabic first, too.
    const counter = await openDisplay(h.url, `/display/counter.html?site=${SITE}&counter=c5&langs=ar,fi,en`, { bypassCSP: true });
    await counter.page.waitForSelector(`[data-number="${a}"]`, { timeout: 8000 });
    assert.equal(await counter.page.getAttribute('html', 'dir'), 'rtl');
    assert.equal(await counter.page.locator('bdi[dir="ltr"]').first().innerText(), a);
    if (screenshots) await counter.page.screenshot({ path: join(repo, 'docs', 'screenshots', 'display-counter-ar.png') });
    assert.deepEqual(await axeViolations(counter.page), []);
    assert.deepEqual(counter.errors, []);
    await counter.context.close();
  } finally {
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('stale banner when the daemon stops; after it is back, resync from the snapshot and missed calls listed, not announced', async () => {
  let h = await hall();
  try {
    await h.open('c5');
    const before = await h.ticket('joint-service');
    const { page, foreign, ws, sw } = await openDisplay(h.url, `/display/?site=${SITE}&id=hall`, {}, { wsSwitch: true });
    await waitLive(page);
    await h.callNext('c5');
    await page.locator(`.lane .current[data-number="${before}"]`).waitFor({ timeout: 5000 });
    await page.waitForFunction(() => window.__plays.length && window.__plays.every((p) => p.end), null, { timeout: 20000 });
    const playsBefore = (await plays(page)).length;

    const stoppedAt = Date.now();
    await h.d.stop();
    await page.locator('#stale').waitFor({ state: 'visible', timeout: 20000 });
    const shownAt = Date.now();
    const silence = shownAt - ws.lastFrame;
    console.log(`stale banner ${shownAt - stoppedAt} ms after the daemon stopped, ${silence} ms after the last message (a heartbeat comes after 5 to 10 s of silence)`);
    assert.ok(silence >= 14900 && silence <= 16500, `banner after ${silence} ms without a message (rule: 15 s)`);
    const bannerText = await page.locator('#stale').innerText();
    assert.ok(bannerText.includes('ei ole ajan tasalla') || bannerText.includes('eivät ole ajan tasalla'), bannerText);
    assert.ok(bannerText.includes('not up to date'), bannerText);
    // The last call is no longer presented as current: no highlight, no blinking, a note.
    const cur = page.locator('.lane .current');
    assert.ok(await cur.evaluate((el) => el.classList.contains('is-stale') && !el.classList.contains('flash')));
    const bg = await cur.evaluate((el) => getComputedStyle(el).backgroundColor);
    assert.notEqual(bg, 'rgb(255, 210, 63)', 'not the highlight colour');
    assert.ok((await cur.innerText()).includes('Viimeisin tieto'));

    // Back on the same port; a call is made while the display cannot reach it yet, and becomes old.
    sw.blocked = true;
    const d2 = await h.d.restart();
    h = { ...h, d: d2, url: d2.url };
    const staff = await login(d2.url, 'agent2');
    const kiosk = (await apiCall(d2.url, '/api/v1/demo/device-token?device=kiosk-1')).data.token;
    const t = await apiCall(d2.url, `/api/v1/sites/${SITE}/tickets`, { method: 'POST', body: { service: 'joint-service', lang: 'fi' }, token: kiosk });
    assert.equal(t.status, 201);
    const missed = (await apiCall(d2.url, '/api/v1/counters/c5/call-next', { method: 'POST', body: {}, token: staff })).data.ticket.number;
    await page.waitForTimeout(FRESH_MS + 1500);
    assert.ok(await page.locator('#stale').isVisible(), 'still stale while it cannot connect');
    assert.equal(await page.locator(`[data-number="${missed}"]`).count(), 0);

    const unblocked = Date.now();
    sw.blocked = false;
    await page.locator('#stale').waitFor({ state: 'hidden', timeout: 30000 });
    console.log(`resynced ${Date.now() - unblocked} ms after the daemon became reachable (reconnect back-off)`);
    const row = page.locator(`.recent-item[data-number="${missed}"], .lane .current[data-number="${missed}"]`);
    await row.first().waitFor({ timeout: 5000 });
    assert.ok(await row.first().evaluate((el) => el.classList.contains('missed')), 'marked as called during the outage');
    assert.ok((await row.first().innerText()).includes('katkon aikana'));
    assert.equal(await page.locator('.lane .current.flash').count(), 0, 'nothing blinks after a resync');
    await page.waitForTimeout(1500);
    assert.equal((await plays(page)).length, playsBefore, 'nothing announced for calls made while stale');
    assert.deepEqual(foreign, []);
  } finally {
    await h.d.stop();
    h.d.cleanup();
  }
});

test('a display for one zone (health) shows only that zone; the hall shows both', async () => {
  const h = await hall();
  try {
    await h.open('c5');
    await h.open('l1');
    const health = await openDisplay(h.url, `/display/?site=${SITE}&id=health`);
    const hallPage = await openDisplay(h.url, `/display/?site=${SITE}&id=hall`);
    await waitLive(health.page);
    await waitLive(hallPage.page);
    const obs = await observeCalls(h.url);
    await h.ticket('joint-service');
    await h.ticket('lab-sample', 'sv');
    const main = await h.callNext('c5'); // zone main
    const lab = await h.callNext('l1'); // zone health
    await hallPage.page.waitForFunction((ns) => ns.every((n) => n in window.__seen), [main, lab], { timeout: 15000 });
    await health.page.waitForFunction((n) => n in window.__seen, lab, { timeout: 15000 });
    await health.page.waitForTimeout(1500);
    assert.equal(await health.page.locator(`[data-number="${main}"]`).count(), 0, 'the main zone call is not on the health display');
    assert.ok(!(main in (await health.page.evaluate(() => window.__seen))), 'and never was');
    assert.ok((await health.page.locator(`.lane .current[data-number="${lab}"]`).innerText()).includes('Näytteenotto 1'));
    // Only the health call is announced there.
    const events = await obs.calls();
    const labEvent = events.find((e) => e.number === lab);
    const mainEvent = events.find((e) => e.number === main);
    if (hasEspeak) assert.equal(labEvent.announce_lang, 'sv', 'zone health speaks the customer\'s language');
    await health.page.waitForFunction((n) => window.__plays.length >= n && window.__plays.every((p) => p.end), labEvent.audio.length, { timeout: 20000 });
    await health.page.waitForTimeout(1000);
    const heard = (await plays(health.page)).map((p) => p.src);
    assert.deepEqual(heard, labEvent.audio);
    assert.ok(!mainEvent.audio.some((u) => u.includes('/speech/') && heard.includes(u)));
    // Queues: sensitive services only under their neutral group, never by their own name.
    const queues = await hallPage.page.locator('#queue-list').evaluate((el) => el.textContent);
    const ids = await hallPage.page.$$eval('.queue-item', (els) => els.map((e) => e.dataset.queue));
    assert.ok(ids.includes('group-h') && ids.includes('group-l'), ids.join(' '));
    for (const secret of ['Mielenterveyspalvelut', 'Mentalvårdstjänster', 'Mental health services', 'Päihdepalvelut', 'Missbrukartjänster',
      'Substance abuse', 'näytteenotto', 'provtagning', 'samples', 'röntgen', 'X-ray']) {
      assert.ok(!queues.includes(secret), `"${secret}" in the queue list`);
    }
    assert.deepEqual(health.foreign, []);
    assert.deepEqual(hallPage.foreign, []);
    await obs.close();
  } finally {
    await h.stop();
  }
});

test('the called number is sized for the viewing distance, contrast at least 7:1 while it blinks, blink at most 10 s, none with reduced motion', async () => {
  const h = await hall();
  try {
    await h.open('c5');
    await h.open('l1');
    const hallPage = await openDisplay(h.url, `/display/?site=${SITE}&id=hall&panel=55`);
    const healthPage = await openDisplay(h.url, `/display/?site=${SITE}&id=health&panel=55`, { reducedMotion: 'reduce' });
    await waitLive(hallPage.page);
    await waitLive(healthPage.page);
    await h.ticket('joint-service');
    await h.ticket('lab-sample');
    await h.callNext('c5');
    await h.callNext('l1');
    const { page } = hallPage;
    const box = page.locator('.lane .current.flash');
    await box.waitFor({ timeout: 5000 });

    const size = await page.evaluate(() => {
      const n = document.querySelector('.lane .current .current-number');
      return { fontPx: parseFloat(getComputedStyle(n).fontSize), pxmm: Number(document.body.dataset.pxPerMm), mm: Number(document.body.dataset.digitMm), clamped: document.body.dataset.sizeClamped };
    });
    const digitMm = (size.fontPx * 0.729) / size.pxmm;
    console.log(`hall (10 m, 55"): number font ${size.fontPx.toFixed(0)} px, digits ${digitMm.toFixed(0)} mm (rule ${size.mm} mm, clamped ${size.clamped})`);
    assert.equal(size.mm, 100, '1 cm per metre at 10 m');
    assert.ok(digitMm >= 60 && digitMm <= 101, `digits ${digitMm} mm`);
    if (size.clamped === 'false') assert.ok(Math.abs(digitMm - 100) < 1);

    // Contrast of the number against its box, sampled through two blink cycles.
    const samples = [];
    for (let i = 0; i < 12; i++) {
      samples.push(
        await page.evaluate(() => {
          const box = document.querySelector('.lane .current');
          const num = box.querySelector('.ticket-number');
          return { fg: getComputedStyle(num).color, bg: getComputedStyle(box).backgroundColor };
        }),
      );
      await page.waitForTimeout(350);
    }
    const ratios = samples.map((s) => contrast(s.fg, s.bg));
    assert.ok(new Set(samples.map((s) => s.bg)).size > 1, 'it does blink');
    assert.ok(Math.min(...ratios) >= 7, `contrast ${Math.min(...ratios).toFixed(1)}:1`);
    const anim = await box.evaluate((el) => {
      const s = getComputedStyle(el);
      return { name: s.animationName, dur: parseFloat(s.animationDuration), n: Number(s.animationIterationCount) };
    });
    assert.ok(anim.dur * anim.n <= 10, `blinks ${anim.dur * anim.n} s`);
    assert.ok(anim.dur / 2 >= 1, 'at most one change a second');
    // Ten seconds after the last call was presented it is still highlighted, no longer blinking.
    await page.waitForFunction(() => window.__presented.length >= 2, null, { timeout: 10000 });
    const lastShown = (await presented(page)).at(-1).t;
    await page.waitForTimeout(Math.max(0, lastShown + 10300 - Date.now()));
    assert.equal(await page.locator('.lane .current').evaluate((el) => el.getAnimations().length), 0);

    // Reduced motion: no blinking at all; a smaller number for 6 m.
    const h2 = healthPage.page;
    const cur = h2.locator('.lane .current');
    await cur.waitFor({ timeout: 5000 });
    assert.equal(await cur.evaluate((el) => getComputedStyle(el).animationName), 'none');
    const healthMm = await h2.evaluate(() => Number(document.body.dataset.digitMm));
    assert.equal(healthMm, 60);
    const healthFont = await h2.evaluate(() => parseFloat(getComputedStyle(document.querySelector('.current-number')).fontSize));
    assert.ok(healthFont < size.fontPx, 'nearer display, smaller number');
  } finally {
    await h.stop();
  }
});

test('busy layout: one column per zone, numbers fit their boxes', async () => {
  const h = await hall();
  try {
    for (const c of ['c5', 'c6', 'l1', 'l2']) await h.open(c);
    const { page, foreign } = await openDisplay(h.url, `/display/?site=${SITE}&id=hall-busy`);
    await waitLive(page);
    const byZone = { main: [], health: [] };
    for (const [svc, c, z] of [['joint-service', 'c5', 'main'], ['lab-sample', 'l1', 'health'], ['parking', 'c6', 'main'], ['lab-sample', 'l2', 'health'], ['joint-service', 'c5', 'main']]) {
      await h.ticket(svc);
      byZone[z].push(await h.callNext(c));
    }
    const cols = await page.$$eval('.zone-col', (els) => els.map((e) => e.dataset.zone));
    assert.deepEqual(cols, ['main', 'health', 'library']);
    // Each zone's newest call is presented in its own column.
    await page.waitForFunction(
      (z) => Object.entries(z).every(([zone, ns]) => document.querySelector(`.zone-col[data-zone="${zone}"] .current[data-number="${ns[ns.length - 1]}"]`)),
      byZone,
      { timeout: 30000 },
    );
    for (const [zone, numbers] of Object.entries(byZone)) {
      const inCol = await page.$$eval(`.zone-col[data-zone="${zone}"] [data-number]`, (els) => els.map((e) => e.dataset.number));
      assert.deepEqual([...inCol].sort(), [...numbers].sort(), `column ${zone}`);
    }
    const overflow = await page.$$eval('.current-number, .recent-number', (els) =>
      els.filter((e) => e.offsetParent && e.getBoundingClientRect().right > e.closest('.zone-col').getBoundingClientRect().right + 0.5).map((e) => e.innerText),
    );
    assert.deepEqual(overflow, [], 'numbers inside their columns');
    await page.waitForTimeout(11000); // after the blink, for a calm screenshot
    if (screenshots) await page.screenshot({ path: join(repo, 'docs', 'screenshots', 'display-hall-busy.png') });
    assert.deepEqual(foreign, []);
  } finally {
    await h.stop();
  }
});

// ---- the counter display -------------------------------------------------------------------------

test('counter display: the counter name and its current number, or closed', async () => {
  const h = await hall();
  try {
    const { page, foreign, errors } = await openDisplay(h.url, `/display/counter.html?site=${SITE}&counter=c5`, {
      viewport: { width: 1280, height: 720 },
      bypassCSP: true, // for axe-core's inline script
    });
    await waitLive(page);
    const now = page.locator('#counter-now');
    assert.ok((await page.locator('#counter-name').innerText()).includes('Palvelupiste 5'));
    await page.waitForFunction(() => document.querySelector('#counter-now').innerText.includes('Suljettu'), null, { timeout: 5000 });
    await h.open('c5');
    await page.waitForFunction(() => document.querySelector('#counter-now').innerText.includes('Avoinna'), null, { timeout: 5000 });
    await h.ticket('joint-service');
    const n = await h.callNext('c5');
    await page.locator(`#counter-now .current[data-number="${n}"]`).waitFor({ timeout: 5000 });
    assert.ok((await now.innerText()).includes(n));
    const c = await page.locator('#counter-now .current').evaluate((el) => ({ fg: getComputedStyle(el.querySelector('.ticket-number')).color, bg: getComputedStyle(el).backgroundColor }));
    assert.ok(contrast(c.fg, c.bg) >= 7);
    if (screenshots) {
      await page.waitForTimeout(10500);
      await page.screenshot({ path: join(repo, 'docs', 'screenshots', 'display-counter.png') });
    }
    assert.deepEqual(await axeViolations(page), []);
    await h.finish('c5');
    await page.waitForFunction(() => document.querySelector('#counter-now').innerText.includes('Avoinna'), null, { timeout: 5000 });
    await h.close('c5');
    await page.waitForFunction(() => document.querySelector('#counter-now').innerText.includes('Suljettu'), null, { timeout: 5000 });
    assert.equal(await page.locator('#counter-now .current').count(), 0);
    assert.deepEqual(foreign, []);
    assert.deepEqual(errors, []);
  } finally {
    await h.stop();
  }
});

test('a hall display whose page freezes with its socket open is shown frozen to supervisors, and online again once it renders', async () => {
  // The demo hall with a short timeout: frozen after 3 s without a rendering report (the page reports
  // every second, the daemon tells it so in the display's entry).
  const demo = readFileSync(join(repo, 'config', 'demo.toml'), 'utf8');
  assert.ok(demo.includes('demo = true\n'), 'the demo [server] table');
  const dir = mkdtempSync(join(tmpdir(), 'vuoro-display-frozen-'));
  const config = join(dir, 'hall-frozen.toml');
  writeFileSync(config, demo.replace('demo = true\n', 'demo = true\ndisplay_frozen_seconds = 3\n'));
  const h = await hall({ config });
  // The daemon's figure for the hall display, read by the test itself (loopback may read /metrics).
  const frozenMetric = async () => {
    const text = await (await fetch(h.url + '/metrics')).text();
    const m = text.match(/^vuoro_display_frozen\{site="iso-omena",display="hall"\} (\d)$/m);
    assert.ok(m, text);
    return m[1];
  };
  try {
    const { page, context, errors, foreign } = await openDisplay(h.url, `/display/?site=${SITE}&id=hall`, { bypassCSP: true });
    await waitLive(page);
    await page.waitForFunction(() => window.vuoroDisplay.renderingReports >= 2, null, { timeout: 5000 });
    // The supervisor view in a browser context of its own: its own renderer, which the display's blocked
    // main thread does not hold up.
    const sup = await originBoundPage(browser, h.url, { viewport: { width: 1366, height: 768 }, locale: 'en-GB', bypassCSP: true });
    const supErrors = [];
    sup.page.on('pageerror', (e) => supErrors.push(e.message));
    await sup.page.goto(h.url + '/desk/supervisor.html');
    await signIn(sup.page, 'supervisor');
    const row = '#devices-body tr[data-display="hall"]';
    await sup.page.waitForSelector(`${row}[data-status="online"]`, { timeout: 8000 });
    // Reports go on while the page renders: still online after longer than the timeout.
    await sup.page.waitForTimeout(3500);
    assert.equal(await sup.page.getAttribute(row, 'data-status'), 'online');
    assert.equal(await frozenMetric(), '0');

    // The display's main thread blocked for 8 s, as a hung script would; its socket stays open. Not
    // awaited: the page can answer nothing meanwhile.
    const blockedAt = Date.now();
    const blocked = page.evaluate(() => {
      const end = Date.now() + 8000;
      while (Date.now() < end) {
        /* busy */
      }
    });
    await sup.page.waitForSelector(`${row}[data-status="frozen"]`, { timeout: 7000 });
    assert.ok(Date.now() - blockedAt < 8000, 'seen frozen while the page is still blocked');
    assert.equal(await frozenMetric(), '1');
    // Said in words, in the supervisor's language, not only by colour.
    const words = { en: 'connected, but its screen has stopped updating', fi: 'yhteys on, mutta näytön kuva ei päivity', sv: 'ansluten, men skärmbilden uppdateras inte' };
    assert.match(await sup.page.innerText(row), new RegExp(words.en));
    await sup.page.selectOption('#lang', 'fi');
    await sup.page.waitForFunction(([sel, w]) => document.querySelector(sel)?.innerText.includes(w), [row, words.fi], { timeout: 3000 });
    await sup.page.selectOption('#lang', 'sv');
    await sup.page.waitForFunction(([sel, w]) => document.querySelector(sel)?.innerText.includes(w), [row, words.sv], { timeout: 3000 });
    assert.deepEqual(await axeViolations(sup.page), [], 'the supervisor view with a frozen display');

    // The page recovers: it draws again, reports, and is online.
    await blocked;
    await sup.page.waitForSelector(`${row}[data-status="online"]`, { timeout: 5000 });
    assert.equal(await frozenMetric(), '0');
    assert.deepEqual(errors, []);
    assert.deepEqual(supErrors, []);
    assert.deepEqual(foreign, []);
    assert.deepEqual(sup.foreign, []);
    await sup.context.close();
    await context.close();
  } finally {
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- accessibility -------------------------------------------------------------------------------

test('axe-core finds nothing on the hall, busy, health and counter displays with calls on them', async () => {
  const h = await hall();
  try {
    for (const c of ['c5', 'l1']) await h.open(c);
    await h.ticket('joint-service');
    await h.ticket('lab-sample');
    await h.callNext('c5');
    await h.callNext('l1');
    for (const path of [`/display/?site=${SITE}&id=hall`, `/display/?site=${SITE}&id=hall-busy`, `/display/?site=${SITE}&id=health`, `/display/counter.html?site=${SITE}&counter=c5`]) {
      const { page, foreign, context } = await openDisplay(h.url, path, { bypassCSP: true });
      await waitLive(page);
      await page.locator('[data-number]').first().waitFor({ timeout: 5000 });
      assert.deepEqual(await axeViolations(page), [], path);
      assert.deepEqual(foreign, [], path);
      await context.close();
    }
    // An unknown display says so, in the display languages, and is still accessible.
    const { page } = await openDisplay(h.url, `/display/?site=${SITE}&id=nope`, { bypassCSP: true });
    await page.waitForFunction(() => document.querySelector('#message').innerText.includes('not in the configuration'), null, { timeout: 5000 });
    assert.deepEqual(await axeViolations(page), []);
  } finally {
    await h.stop();
  }
});
