// Vuoro's shared client code, used by the kiosk, the phone page, the displays and the desk:
// API calls with clear errors, the WebSocket client that resumes and resyncs, and translations.
// Plain ES module, no bundler, no requests to other origins.

/** An API error: `status` is the HTTP status, `code` the error code from the daemon (or "network"). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Calls the daemon's API. Returns the parsed JSON body (or null for 204).
 * Options: method, body (JSON), token (Bearer), headers, timeoutMs.
 */
export async function api(path, { method = 'GET', body, token, headers = {}, timeoutMs = 8000 } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (token) h.Authorization = `Bearer ${token}`;
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      signal: ctrl.signal,
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'The service cannot be reached.');
  } finally {
    clearTimeout(timer);
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  if (!res.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(res.status, err.code || 'http_' + res.status, err.message || res.statusText);
  }
  return data;
}

/**
 * A live connection to the daemon's WebSocket. Subscribes to topics, resumes after a drop with `after`,
 * takes fresh snapshots when told, and reports when it is no longer up to date.
 *
 *   const live = new Live({ token, onSnapshot(topic, data, seq), onEvent(topic, event, seq), onStatus(status) });
 *   live.subscribe('calls:iso-omena'); live.start();
 *
 * status is 'connecting', 'live' or 'stale' (no message, not even a heartbeat, for `staleMs`). When the
 * hall's config changes (`config_changed`), every topic is subscribed again for a fresh snapshot and
 * `onConfigChanged(version)` is called.
 */
export class Live {
  constructor({ token = null, hello = null, onSnapshot = () => {}, onEvent = () => {}, onStatus = () => {}, onError = () => {}, onConfigChanged = () => {}, staleMs = 15000 } = {}) {
    this.token = token;
    this.hello = hello; // sent first on every connection, e.g. { type: 'hello', display: 'hall' }
    this.onSnapshot = onSnapshot;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.onError = onError;
    this.onConfigChanged = onConfigChanged;
    this.staleMs = staleMs;
    this.topics = new Map(); // topic -> last seq seen (or null)
    this.ws = null;
    this.attempt = 0;
    this.status = 'connecting';
    this.lastMessage = 0;
    this.stopped = false;
    this.staleTimer = null;
  }

  subscribe(topic) {
    if (!this.topics.has(topic)) this.topics.set(topic, null);
    this._send({ type: 'subscribe', topic });
  }

  unsubscribe(topic) {
    this.topics.delete(topic);
    this._send({ type: 'unsubscribe', topic });
  }

  start() {
    this.stopped = false;
    this._connect();
    clearInterval(this.staleTimer);
    this.staleTimer = setInterval(() => this._checkStale(), 1000);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.staleTimer);
    if (this.ws) this.ws.close();
  }

  _setStatus(s) {
    if (this.status !== s) {
      this.status = s;
      this.onStatus(s);
    }
  }

  _checkStale() {
    if (this.status === 'live' && Date.now() - this.lastMessage > this.staleMs) {
      this._setStatus('stale');
      if (this.ws) this.ws.close();
    }
  }

  /** Sends a control message now if the socket is open (nothing is queued for a later connection). */
  send(msg) {
    this._send(msg);
  }

  _send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  _connect() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/ws`);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.lastMessage = Date.now();
      if (this.token) ws.send(JSON.stringify({ type: 'auth', token: this.token }));
      if (this.hello) ws.send(JSON.stringify(this.hello));
      for (const [topic, seq] of this.topics) {
        const msg = { type: 'subscribe', topic };
        if (seq !== null) msg.after = seq;
        ws.send(JSON.stringify(msg));
      }
    };
    ws.onmessage = (m) => {
      this.lastMessage = Date.now();
      let msg;
      try {
        msg = JSON.parse(m.data);
      } catch (e) {
        return;
      }
      if (msg.type === 'snapshot') {
        this.topics.set(msg.topic, msg.seq);
        this._setStatus('live');
        this.onSnapshot(msg.topic, msg.data, msg.seq);
      } else if (msg.type === 'event') {
        const last = this.topics.get(msg.topic);
        if (last !== null && last !== undefined && msg.seq <= last) return; // already seen
        this.topics.set(msg.topic, msg.seq);
        this._setStatus('live');
        this.onEvent(msg.topic, msg.event, msg.seq);
      } else if (msg.type === 'heartbeat') {
        if ([...this.topics.values()].every((s) => s !== null)) this._setStatus('live');
      } else if (msg.type === 'error') {
        this.onError(msg);
      } else if (msg.type === 'config_changed') {
        // The hall changed (names, hours, counters): every topic's fresh snapshot, then the page's own
        // refresh of what it fetched.
        for (const topic of this.topics.keys()) this._send({ type: 'subscribe', topic });
        this.onConfigChanged(msg.version);
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (this.status === 'live') this._setStatus('stale');
      // Jittered exponential back-off: 0.5 s doubling to 15 s, each +-50 %, so a hall of clients
      // does not reconnect in one burst after a restart.
      const base = Math.min(15000, 500 * 2 ** this.attempt++);
      const delay = base * (0.5 + Math.random());
      setTimeout(() => this._connect(), delay);
    };
    ws.onerror = () => ws.close();
  }
}

/** Translations: loads `${base}/${lang}.json` (a flat object of key -> text with {name} placeholders). */
export async function loadStrings(base, lang) {
  const res = await fetch(`${base}/${lang}.json`, { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`no strings for ${lang}`);
  return res.json();
}

/** Fills {placeholders} in a translated string. */
export function fill(text, vars = {}) {
  return String(text).replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}

/** Picks a language's text from an object keyed by language, with fallbacks. */
export function pick(textByLang, lang, fallback = 'fi') {
  if (!textByLang) return '';
  return textByLang[lang] || textByLang[fallback] || textByLang.en || Object.values(textByLang)[0] || '';
}

/** Writing direction of a language. */
export function dirOf(lang) {
  return ['ar', 'fa', 'he', 'ur'].includes(lang) ? 'rtl' : 'ltr';
}

/** A ticket number for the screen: always left-to-right, even inside right-to-left text. */
export function numberHtml(number) {
  const span = document.createElement('bdi');
  span.setAttribute('dir', 'ltr');
  span.className = 'ticket-number';
  span.textContent = number;
  return span;
}
