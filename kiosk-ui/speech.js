// Speech for blind and low-vision customers: plays audio files rendered by the daemon
// (GET /api/v1/audio/speech?lang=..&text=..), never speechSynthesis, which is unreliable on kiosks.
// All clips of an utterance are fetched at once and played in order; a new utterance cuts the old one off.

export function speechUrl(lang, text) {
  return `/api/v1/audio/speech?lang=${encodeURIComponent(lang)}&text=${encodeURIComponent(text)}`;
}

/** The daemon renders at most 300 characters at a time: long texts are cut at sentence ends. */
export function splitText(text, max = 280) {
  if (text.length <= max) return [text];
  const out = [];
  let cur = '';
  for (const part of text.split(/(?<=[.!?。！？؟])\s*/u)) {
    if (cur && (cur + ' ' + part).length > max) {
      out.push(cur);
      cur = part;
    } else cur = cur ? `${cur} ${part}` : part;
  }
  if (cur) out.push(cur);
  return out.flatMap((p) => (p.length > max ? p.match(new RegExp(`.{1,${max}}`, 'gsu')) : [p]));
}

export class Speaker {
  /** token(): the kiosk's device token; only a kiosk may have speech rendered. */
  constructor({ maxClipMs = 30000, token = () => null } = {}) {
    this.maxClipMs = maxClipMs;
    this.token = token;
    this.cache = new Map(); // url -> Promise<blob URL | null>
    this.gen = 0;
    this.audio = null;
    this.noVoice = new Set(); // languages the daemon has no voice for
  }

  _fetchClip(lang, text) {
    const url = speechUrl(lang, text);
    if (this.cache.has(url)) return this.cache.get(url);
    const tk = this.token();
    const p = fetch(url, { credentials: 'same-origin', headers: tk ? { Authorization: `Bearer ${tk}` } : {} })
      .then(async (res) => {
        if (!res.ok) {
          // 422: the daemon has no voice for this language (Somali with espeak-ng); our texts are cut to
          // fit the length limit, so that is not the reason. 503: no speech at all on this server.
          // 429: this kiosk asked for too much at once; the next utterance tries again.
          if (res.status === 422 || res.status === 503) this.noVoice.add(lang);
          return null;
        }
        return URL.createObjectURL(await res.blob());
      })
      .catch(() => null);
    p.then((u) => {
      if (u === null) this.cache.delete(url); // try again next time
    });
    this.cache.set(url, p);
    if (this.cache.size > 300) {
      const [oldest] = this.cache.keys();
      this.cache.get(oldest).then((u) => u && URL.revokeObjectURL(u));
      this.cache.delete(oldest);
    }
    return p;
  }

  /** A clip in the item's language, or in English (item.en, else the same text) when there is no voice. */
  _clip(item) {
    const fallback = () => (item.lang === 'en' ? Promise.resolve(null) : this._fetchClip('en', item.en || item.text));
    if (this.noVoice.has(item.lang)) return fallback();
    return this._fetchClip(item.lang, item.text).then((u) => (u !== null ? u : this.noVoice.has(item.lang) ? fallback() : null));
  }

  /**
   * Speaks the items [{lang, text, en?}] in order, cutting off anything still playing. `en` is the same
   * message in English, spoken when the daemon has no voice for `lang`.
   */
  say(items) {
    this.stop();
    const gen = this.gen;
    const parts = [];
    for (const i of items) {
      if (!i || !i.text || !String(i.text).trim()) continue;
      const texts = splitText(String(i.text).trim());
      const ens = i.en ? splitText(String(i.en).trim()) : [];
      texts.forEach((text, k) => parts.push({ lang: i.lang, text, en: ens.length === texts.length ? ens[k] : k === 0 ? i.en : undefined }));
    }
    const clips = parts.map((p) => this._clip(p));
    const playNext = async (k) => {
      if (gen !== this.gen || k >= clips.length) return;
      const src = await clips[k];
      if (gen !== this.gen) return;
      if (!src) return playNext(k + 1);
      await this._play(src, gen);
      playNext(k + 1);
    };
    playNext(0);
  }

  _play(src, gen) {
    return new Promise((resolve) => {
      if (gen !== this.gen) return resolve();
      const a = new Audio(src);
      this.audio = a;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(finish, this.maxClipMs);
      a.onended = finish;
      a.onerror = finish;
      a.onpause = () => gen !== this.gen && finish();
      a.play().catch(finish);
    });
  }

  stop() {
    this.gen++;
    if (this.audio) {
      this.audio.pause();
      this.audio = null;
    }
  }
}

/** Plays a short sound file once (the inactivity warning tone). */
export function playSound(src) {
  try {
    const a = new Audio(src);
    a.play().catch(() => {});
    return a;
  } catch (e) {
    return null;
  }
}
