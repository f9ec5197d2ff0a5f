// Pure logic of the displays, with no DOM and no imports, so that it can be tested on its own (Node imports
// this file directly in tests/browser/display.test.mjs).

/** How long a call stays in the recent list: at least 5 minutes is promised; we keep 10. */
export const RECENT_KEEP_MS = 10 * 60 * 1000;
/** A call is announced and highlighted only if it is at most this old by the server's clock. */
export const FRESH_MS = 30 * 1000;
/** A recall or new call is blinked at most this long (then it stays highlighted, still). */
export const BLINK_MS = 10000;

/**
 * Character heights for a viewing distance, in millimetres (the rule is in docs/staff-guide.md, "Hall
 * displays"):
 * - `primary`, the called number: digit height >= distance / 100 (1 cm per metre), at least 40 mm. About
 *   four times what a person with normal sight can just read, so people with reduced vision find it from
 *   the far side of the hall.
 * - `secondary`, everything else a waiting customer reads from a seat (recent numbers, destinations, queue
 *   names and counts, the clock): cap and digit height >= distance / 300, at least 15 mm. That is the
 *   signage rule of 25 mm of letter height per 7.5 m (1 inch per 25 feet) for text read, not just seen.
 */
export function digitHeightMm(distanceM) {
  const d = Number(distanceM) > 0 ? Number(distanceM) : 8;
  return { primary: Math.max(40, d * 10), secondary: Math.max(15, (d * 1000) / 300) };
}

/** The standard layout shows at least this many recent calls at once, never paged. */
export const RECENT_ROWS = 6;

/**
 * Font size (CSS px) of the recent list's rows: the secondary rule's size, unless `rows` rows of `lineEm`
 * line height with `gapPx` between them would not fit `listPx`; then the largest that fits.
 */
export function rowFontPx(rulePx, listPx, { rows = RECENT_ROWS, lineEm = 1.12, gapPx = 6 } = {}) {
  const fit = (listPx - gapPx * (rows - 1)) / rows / lineEm;
  return Math.max(0, Math.min(rulePx, fit));
}

/**
 * What one lane shows, from the recent list (newest first): the newest call as the current one, and
 * every other call of the lane, newest first. The current call never lags behind the list: a call that
 * arrives is shown large at once, and the call it replaces moves to the top of the list.
 */
export function laneView(recent, laneId = '*') {
  const mine = recent.filter((c) => laneId === '*' || c.zone === laneId);
  return { current: mine[0] || null, rows: mine.slice(1) };
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

/**
 * A call as the display keeps it, from a `Call` of the calls topic's snapshot or a call event (which adds
 * the announcement: `audio`, `duration_ms`, `chime_only`). `at` in ms since the epoch.
 */
export function toCall(raw, { missed = false } = {}) {
  return {
    number: String(raw.number),
    counter: raw.counter,
    counterName: raw.counter_name || {},
    location: raw.location || {},
    zone: raw.zone ?? null,
    at: Date.parse(raw.at) || 0,
    recall: !!raw.recall,
    audio: raw.audio || null,
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
  out.unshift(call); // before calls of the same instant: the later arrival is the newer call
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
