// Speech for blind and low-vision customers: plays audio files rendered by the daemon
// (GET /api/v1/audio/speech?lang=..&text=..), never speechSynthesis, which is unreliable on kiosks.
// All clips of an utterance are fetched at once and played in order; a new utterance cuts the old one off.

export function speechUrl(lang, text) {
  return `/api/v1/audio/speech?lang=${encodeURIComponent(lang)}&text=${encodeURIComponent(text)}`;
}

export class Speaker {
  /** fallbackFor(lang, text) may return {lang, text} to use when the daemon has no voice for `lang`. */
  constructor({ fallbackFor = () => null, maxClipMs = 30000 } = {}) {
    this.fallbackFor = fallbackFor;
    this.maxClipMs = maxClipMs;
    this.cache = new Map(); // url -> Promise<blob URL | null>
    this.gen = 0;
    this.audio = null;
    this.noVoice = new Set(); // languages the daemon answered no_speech for
  }

  _fetchClip(lang, text) {
    const url = speechUrl(lang, text);
    if (this.cache.has(url)) return this.cache.get(url);
    const p = fetch(url, { credentials: 'same-origin' })
      .then(async (res) => {
        if (!res.ok) {
          if (res.status === 503) this.noVoice.add(lang);
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

  _clip({ lang, text }) {
    const fb = this.noVoice.has(lang) ? this.fallbackFor(lang, text) : null;
    if (fb) return this._fetchClip(fb.lang, fb.text);
    return this._fetchClip(lang, text).then((u) => {
      if (u !== null) return u;
      const fb2 = this.noVoice.has(lang) ? this.fallbackFor(lang, text) : null;
      return fb2 ? this._fetchClip(fb2.lang, fb2.text) : null;
    });
  }

  /** Speaks the items [{lang, text}] in order, cutting off anything still playing. */
  say(items) {
    this.stop();
    const gen = this.gen;
    const clips = items.filter((i) => i && i.text && String(i.text).trim()).map((i) => this._clip({ lang: i.lang, text: String(i.text).trim() }));
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
