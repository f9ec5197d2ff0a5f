// Pure logic of the displays, with no DOM and no imports, so that it can be tested on its own (Node imports
// this file directly in tests/browser/display.test.mjs).

/** How long a call stays in the recent list: at least 5 minutes is promised; we keep 10. */
export const RECENT_KEEP_MS = 10 * 60 * 1000;
/** A call is announced and highlighted only if it is at most this old by the server's clock. */
export const FRESH_MS = 30 * 1000;
/** Each call is highlighted at least this long before the next queued one replaces it. */
export const MIN_HOLD_MS = 5000;
/** A recall or new call is blinked at most this long (then it stays highlighted, still). */
export const BLINK_MS = 10000;

/**
 * Digit height for a viewing distance. We use 1 cm of digit height per metre for the called number (the
 * number a customer must find from across the hall, including people with reduced vision: about 4x the
 * smallest size a person with normal acuity can read) and 1 cm per 2.5 m, at least 25 mm, for the lists.
 * Returns millimetres.
 */
export function digitHeightMm(distanceM) {
  const d = Number(distanceM) > 0 ? Number(distanceM) : 8;
  return { primary: Math.max(40, d * 10), secondary: Math.max(25, d * 4) };
}

/** CSS pixels per millimetre of a panel with `diagonalInch` and `widthPx` x `heightPx` CSS pixels. */
export function pxPerMm(diagonalInch, widthPx, heightPx) {
  return Math.hypot(widthPx, heightPx) / (diagonalInch * 25.4);
}

/**
 * Font sizes (CSS px) so that digits are `digitHeightMm` tall. `digitRatio` is the digit height of the font
 * in em (DejaVu Sans, Debian's default sans: 0.729). `maxPx` caps the size so the screen still holds the
 * layout; `clamped` says the cap was hit (then the number is smaller than the rule asks: use a bigger panel).
 */
export function fontSizes(distanceM, pxmm, { digitRatio = 0.729, maxPrimaryPx = Infinity, maxSecondaryPx = Infinity } = {}) {
  const mm = digitHeightMm(distanceM);
  const primary = (mm.primary * pxmm) / digitRatio;
  const secondary = (mm.secondary * pxmm) / digitRatio;
  return {
    primaryMm: mm.primary,
    secondaryMm: mm.secondary,
    primaryPx: Math.min(primary, maxPrimaryPx),
    secondaryPx: Math.min(secondary, maxSecondaryPx),
    clamped: primary > maxPrimaryPx || secondary > maxSecondaryPx,
  };
}

/**
 * A zone's volume (percent) at a local time from "HH:MM=percent" entries: the latest entry at or before
 * the time, else the day's last entry (carried over midnight). No valid entry: 100. Same rule as the
 * daemon's audio::volume_now. `schedule` may also be a plain number (the daemon already chose).
 */
export function volumeNow(schedule, date = new Date()) {
  if (typeof schedule === 'number' && Number.isFinite(schedule)) return Math.max(0, Math.min(100, schedule));
  if (!Array.isArray(schedule)) return 100;
  const steps = [];
  for (const e of schedule) {
    const m = /^\s*(\d{1,2}):(\d{2})\s*=\s*(\d+)\s*%?\s*$/.exec(String(e));
    if (!m) continue;
    const h = Number(m[1]);
    const min = Number(m[2]);
    if (h > 23 || min > 59) continue;
    steps.push([h * 60 + min, Math.min(100, Number(m[3]))]);
  }
  if (!steps.length) return 100;
  steps.sort((a, b) => a[0] - b[0]);
  const now = date.getHours() * 60 + date.getMinutes();
  let v = steps[steps.length - 1][1];
  for (const [t, p] of steps) if (t <= now) v = p;
  return v;
}

/** A call as the display keeps it. `at` in ms since the epoch. */
export function toCall(raw, { missed = false } = {}) {
  return {
    number: String(raw.number),
    counter: raw.counter,
    counterName: raw.counter_name || {},
    location: raw.location || {},
    zone: raw.zone ?? null,
    at: Date.parse(raw.at) || 0,
    recall: !!raw.recall || raw.kind === 'ticket_recalled',
    audio: Array.isArray(raw.audio) ? raw.audio : null,
    durationMs: Number(raw.duration_ms) || 0,
    chimeOnly: !!raw.chime_only,
    missed,
  };
}

/**
 * The recent list after `call`: one entry per number (the newest call of it), newest first, without
 * entries older than RECENT_KEEP_MS at `now`. Returns a new array.
 */
export function addRecent(list, call, now) {
  const out = list.filter((c) => c.number !== call.number || c.at > call.at);
  if (out.some((c) => c.number === call.number)) return pruneRecent(out, now);
  out.push(call);
  out.sort((a, b) => b.at - a.at);
  return pruneRecent(out, now);
}

export function pruneRecent(list, now) {
  return list.filter((c) => now - c.at <= RECENT_KEEP_MS);
}

/** True when a call is recent enough (by the server's clock) to be highlighted and announced. */
export function isFresh(call, serverNow) {
  return serverNow - call.at <= FRESH_MS;
}

/** How long a presented call holds the highlight before the next queued call takes it. */
export function holdMs(call) {
  return Math.max(MIN_HOLD_MS, (call.durationMs || 0) + 500);
}
