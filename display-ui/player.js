// The display's announcement player: one HTMLAudioElement, one queue. A call's files (chime, then speech)
// play one after another and calls follow each other, so announcements never overlap or cut each other off.

import { volumeNow } from './model.js';

/** Longest a single file may take before the player moves on (a broken file must not stall the queue). */
const FILE_TIMEOUT_MS = 20000;
/** Silence between two calls' announcements. */
const GAP_MS = 400;
/** If this much is already queued, further calls get the chime only (the daemon caps airtime per zone;
 *  a display showing several zones also caps its own queue). */
const MAX_QUEUED_MS = 45000;
export const CHIME_URL = '/api/v1/audio/chime.wav';

export class Player {
  /** volumeFor(zone) -> schedule or percent; onBlocked() when the browser refuses to play without a tap. */
  constructor({ volumeFor = () => 100, onBlocked = () => {}, onPlaying = () => {} } = {}) {
    this.el = new Audio();
    this.el.preload = 'auto';
    this.volumeFor = volumeFor;
    this.onBlocked = onBlocked;
    this.onPlaying = onPlaying;
    this.queue = []; // [{urls, zone, durationMs}]
    this.busy = false;
    this.blocked = false;
  }

  /**
   * Queues a call's announcement. `call.audio` lists the files in order; an empty list means silence (a
   * counter outside every zone); no list at all (an older daemon) means the chime.
   */
  enqueue(call) {
    let urls = Array.isArray(call.audio) ? call.audio.slice() : [CHIME_URL];
    if (!urls.length) return;
    const queuedMs = this.queue.reduce((s, q) => s + (q.durationMs || 5000), 0);
    if (queuedMs > MAX_QUEUED_MS) urls = [urls[0]];
    this.queue.push({ urls, zone: call.zone, durationMs: call.durationMs, number: call.number });
    this._next();
  }

  /** Drops what has not started (the display went stale: those calls are no longer current). */
  clear() {
    this.queue = [];
  }

  async _next() {
    if (this.busy) return;
    const item = this.queue.shift();
    if (!item) return;
    this.busy = true;
    try {
      for (const url of item.urls) await this._play(url, item.zone);
      await new Promise((r) => setTimeout(r, GAP_MS));
    } finally {
      this.busy = false;
    }
    this._next();
  }

  _play(url, zone) {
    const el = this.el;
    return new Promise((resolve) => {
      let timer = null;
      const done = () => {
        clearTimeout(timer);
        el.removeEventListener('ended', done);
        el.removeEventListener('error', done);
        resolve();
      };
      el.addEventListener('ended', done);
      el.addEventListener('error', done);
      timer = setTimeout(done, FILE_TIMEOUT_MS);
      el.src = url;
      el.volume = volumeNow(this.volumeFor(zone), new Date()) / 100;
      const p = el.play();
      this.onPlaying(url);
      if (p && p.catch) {
        p.then(
          () => {
            if (this.blocked) {
              this.blocked = false;
              this.onBlocked(false);
            }
          },
          (e) => {
            if (e && e.name === 'NotAllowedError') {
              this.blocked = true;
              this.onBlocked(true);
            }
            done();
          },
        );
      }
    });
  }
}
