// Small inline-SVG bar charts for the supervisor view: no library, no requests. Each chart is an image
// with a title and a description for screen readers; the page also offers the same numbers as a table.

const NS = 'http://www.w3.org/2000/svg';

function svgEl(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A "nice" step: 1, 2 or 5 times a power of ten, at least `raw`. */
export function niceStep(raw) {
  if (!(raw > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw - 1e-9) return m * p;
  return 10 * p;
}

/** Axis ticks from 0 with whole, nice steps (at most about five lines), covering `max`. */
export function axis(max, minStep = 1) {
  const step = Math.max(minStep, niceStep(Math.max(max, minStep) / 4));
  const top = Math.max(step, Math.ceil(max / step) * step);
  const ticks = [];
  for (let v = 0; v <= top + 1e-9; v += step) ticks.push(v);
  return { top, ticks };
}

/**
 * A bar chart of values by hour.
 *   id: unique id prefix; title, desc: text for the image; hours: [8, 9, ...]; values: numbers (null = none);
 *   format(v): axis and label text; target: optional value drawn as a dashed line, with targetLabel.
 * Returns an <svg> element (role img).
 */
export function barChart({ id, title, desc, hours, values, format = String, target = null, targetLabel = '', color = '#005a9c', overColor = '#b3261e' }) {
  const W = 640;
  const H = 280;
  const m = { l: 56, r: 16, t: 16, b: 40 };
  const iw = W - m.l - m.r;
  const ih = H - m.t - m.b;
  const { top: max, ticks } = axis(Math.max(0, ...values.filter((v) => v !== null), target || 0));
  const y = (v) => m.t + ih - (v / max) * ih;
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${id}-title ${id}-desc`, focusable: 'false' });
  svg.append(svgEl('title', { id: `${id}-title` }, title), svgEl('desc', { id: `${id}-desc` }, desc));
  // Grid and y axis labels.
  for (const v of ticks) {
    const yy = y(v);
    svg.append(svgEl('line', { x1: m.l, x2: W - m.r, y1: yy, y2: yy, stroke: v === 0 ? '#1a1f24' : '#d0d7de', 'stroke-width': v === 0 ? 1.5 : 1 }));
    svg.append(svgEl('text', { x: m.l - 8, y: yy + 5, 'text-anchor': 'end', 'font-size': 14, fill: '#3d454d' }, format(v)));
  }
  const n = Math.max(1, hours.length);
  const slot = iw / n;
  const bw = Math.max(4, Math.min(40, slot * 0.7));
  hours.forEach((h, i) => {
    const cx = m.l + slot * i + slot / 2;
    const v = values[i];
    if (v !== null && v !== undefined && v > 0) {
      const over = target !== null && v > target;
      svg.append(svgEl('rect', { x: cx - bw / 2, y: y(v), width: bw, height: m.t + ih - y(v), fill: over ? overColor : color, rx: 2 }));
    }
    if (n <= 16 || i % 2 === 0) svg.append(svgEl('text', { x: cx, y: H - m.b + 20, 'text-anchor': 'middle', 'font-size': 14, fill: '#3d454d' }, String(h).padStart(2, '0')));
  });
  if (target !== null && target > 0) {
    const yy = y(target);
    svg.append(svgEl('line', { x1: m.l, x2: W - m.r, y1: yy, y2: yy, stroke: '#1a1f24', 'stroke-width': 2, 'stroke-dasharray': '8 5' }));
    svg.append(svgEl('text', { x: W - m.r - 4, y: yy - 6, 'text-anchor': 'end', 'font-size': 14, 'font-weight': 700, fill: '#1a1f24' }, targetLabel));
  }
  return svg;
}

/** Shortens a label for an axis; the full text stays in the table and in a <title> tooltip. */
function shorten(s, max) {
  s = String(s);
  return s.length <= max ? s : s.slice(0, max - 1) + '…';
}

/**
 * Bars of one or more series per category (the reports screen).
 *   id: unique id prefix; title, desc: the image's accessible name and description;
 *   labels: category labels (axis text); series: [{ name, values: [number|null], color }];
 *   format(v): value text; horizontal: categories down the left (for names), else along the bottom
 *   (for hours, days, weeks, months); minStep: smallest axis step; valueLabels: write each value at its bar.
 * Returns an <svg> element (role img). The legend is left to the page (HTML, outside the image).
 */
export function categoryChart({ id, title, desc, labels, series, format = String, horizontal = false, minStep = 1, valueLabels = horizontal }) {
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  const { top: max, ticks } = axis(Math.max(0, ...all), minStep);
  const n = Math.max(1, labels.length);
  const k = Math.max(1, series.length);
  const W = 720;
  let H;
  let m;
  if (horizontal) {
    const bh = k === 1 ? 20 : 15;
    const gap = 10;
    m = { l: 236, r: 56, t: 28, b: 12 };
    H = m.t + m.b + n * (k * bh + gap);
    const iw = W - m.l - m.r;
    const x = (v) => m.l + (v / max) * iw;
    const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${id}-title ${id}-desc`, focusable: 'false', 'data-chart': id });
    svg.append(svgEl('title', { id: `${id}-title` }, title), svgEl('desc', { id: `${id}-desc` }, desc));
    for (const v of ticks) {
      const xx = x(v);
      svg.append(svgEl('line', { x1: xx, x2: xx, y1: m.t - 4, y2: H - m.b, stroke: v === 0 ? '#1a1f24' : '#d0d7de', 'stroke-width': v === 0 ? 1.5 : 1 }));
      svg.append(svgEl('text', { x: xx, y: m.t - 10, 'text-anchor': 'middle', 'font-size': 14, fill: '#3d454d' }, format(v)));
    }
    labels.forEach((label, i) => {
      const y0 = m.t + i * (k * bh + gap) + gap / 2;
      const text = svgEl('text', { x: m.l - 8, y: y0 + (k * bh) / 2 + 5, 'text-anchor': 'end', 'font-size': 15, fill: '#1a1f24' }, shorten(label, 24));
      svg.append(text);
      series.forEach((s, j) => {
        const v = s.values[i];
        if (v === null || v === undefined || !Number.isFinite(v)) return;
        const yy = y0 + j * bh;
        if (v > 0) svg.append(svgEl('rect', { x: m.l, y: yy + 1, width: Math.max(1, x(v) - m.l), height: bh - 2, fill: s.color, rx: 2 }));
        if (valueLabels) svg.append(svgEl('text', { x: x(v) + 4, y: yy + bh - 3, 'font-size': 13, fill: '#1a1f24' }, format(v)));
      });
    });
    return svg;
  }
  H = 300;
  m = { l: 56, r: 16, t: 16, b: 44 };
  const iw = W - m.l - m.r;
  const ih = H - m.t - m.b;
  const y = (v) => m.t + ih - (v / max) * ih;
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${id}-title ${id}-desc`, focusable: 'false', 'data-chart': id });
  svg.append(svgEl('title', { id: `${id}-title` }, title), svgEl('desc', { id: `${id}-desc` }, desc));
  for (const v of ticks) {
    const yy = y(v);
    svg.append(svgEl('line', { x1: m.l, x2: W - m.r, y1: yy, y2: yy, stroke: v === 0 ? '#1a1f24' : '#d0d7de', 'stroke-width': v === 0 ? 1.5 : 1 }));
    svg.append(svgEl('text', { x: m.l - 8, y: yy + 5, 'text-anchor': 'end', 'font-size': 14, fill: '#3d454d' }, format(v)));
  }
  const slot = iw / n;
  const groupW = Math.max(1, Math.min(48 * k, slot * 0.8));
  const bw = groupW / k;
  // At most about twelve labels along the axis.
  const every = Math.max(1, Math.ceil(n / 12));
  labels.forEach((label, i) => {
    const cx = m.l + slot * i + slot / 2;
    series.forEach((s, j) => {
      const v = s.values[i];
      if (v === null || v === undefined || !Number.isFinite(v) || v <= 0) return;
      svg.append(svgEl('rect', { x: cx - groupW / 2 + j * bw, y: y(v), width: Math.max(0.8, bw - (k > 1 ? 1 : 0)), height: m.t + ih - y(v), fill: s.color, rx: bw > 4 ? 2 : 0 }));
    });
    if (i % every === 0) svg.append(svgEl('text', { x: cx, y: H - m.b + 22, 'text-anchor': 'middle', 'font-size': 14, fill: '#3d454d' }, shorten(label, 10)));
  });
  return svg;
}
