// QR codes (ISO/IEC 18004), byte mode, error correction level M, versions 1 to 40, the best of the eight
// mask patterns by the standard's penalty rules. The kiosk draws the ticket's tracking address with it, so
// the daemon does not encode a QR code for every ticket it hands out (docs/benchmarks.md). Written for this
// project from the standard; tests/browser/qr.test.mjs reads codes of many lengths back with zbarimg.

// Level M, per version (index 0 unused): error correction codewords per block, and blocks.
const EC_PER_BLOCK = [0, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26,
  26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28];
const BLOCKS = [0, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21,
  23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49];
const FORMAT_LEVEL_M = 0; // the two level bits of the format information

/** Modules left for data and error correction codewords in a version (all but the function patterns). */
function rawModules(ver) {
  let n = (16 * ver + 128) * ver + 64;
  if (ver >= 2) {
    const align = Math.floor(ver / 7) + 2;
    n -= (25 * align - 10) * align - 55;
    if (ver >= 7) n -= 36;
  }
  return n;
}

const dataCodewords = (ver) => Math.floor(rawModules(ver) / 8) - EC_PER_BLOCK[ver] * BLOCKS[ver];

/** Centres of the alignment patterns along one axis. */
function alignmentPositions(ver) {
  if (ver === 1) return [];
  const size = ver * 4 + 17;
  const count = Math.floor(ver / 7) + 2;
  const step = ver === 32 ? 26 : Math.ceil((ver * 4 + 4) / (count * 2 - 2)) * 2;
  const out = [6];
  for (let pos = size - 7; out.length < count; pos -= step) out.splice(1, 0, pos);
  return out;
}

// Arithmetic in GF(2^8) modulo x^8 + x^4 + x^3 + x^2 + 1.
const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
for (let i = 0, x = 1; i < 255; i++) {
  EXP[i] = x;
  LOG[x] = i;
  x <<= 1;
  if (x & 0x100) x ^= 0x11d;
}
for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255];
const mul = (a, b) => (a && b ? EXP[LOG[a] + LOG[b]] : 0);

/** The generator polynomial of degree n, highest term (always 1) left out, highest first. */
function generator(n) {
  let g = [1];
  for (let i = 0; i < n; i++) {
    const next = new Array(g.length + 1).fill(0);
    for (let j = 0; j < g.length; j++) {
      next[j] ^= g[j];
      next[j + 1] ^= mul(g[j], EXP[i]);
    }
    g = next;
  }
  return g.slice(1);
}

/** Reed-Solomon error correction codewords of `data`. */
function remainder(data, gen) {
  const rem = new Array(gen.length).fill(0);
  for (const b of data) {
    const factor = b ^ rem.shift();
    rem.push(0);
    for (let i = 0; i < gen.length; i++) rem[i] ^= mul(gen[i], factor);
  }
  return rem;
}

/** The data bits of `bytes` in byte mode, terminated and padded to the version's data codewords. */
function dataBits(bytes, ver) {
  const bits = [];
  const put = (value, len) => {
    for (let i = len - 1; i >= 0; i--) bits.push((value >>> i) & 1);
  };
  put(0b0100, 4);
  put(bytes.length, ver < 10 ? 8 : 16);
  for (const b of bytes) put(b, 8);
  const capacity = dataCodewords(ver) * 8;
  put(0, Math.min(4, capacity - bits.length));
  put(0, (8 - (bits.length % 8)) % 8);
  const out = [];
  for (let i = 0; i < bits.length; i += 8) out.push(parseInt(bits.slice(i, i + 8).join(''), 2));
  for (let pad = 0xec; out.length < capacity / 8; pad ^= 0xec ^ 0x11) out.push(pad);
  return out;
}

/** Data split into blocks, each followed by its error correction, interleaved as the symbol holds them. */
function codewords(data, ver) {
  const blocks = BLOCKS[ver];
  const ecLen = EC_PER_BLOCK[ver];
  const raw = Math.floor(rawModules(ver) / 8);
  const short = blocks - (raw % blocks);
  const shortLen = Math.floor(raw / blocks) - ecLen;
  const gen = generator(ecLen);
  const split = [];
  for (let i = 0, at = 0; i < blocks; i++) {
    const len = shortLen + (i < short ? 0 : 1);
    const d = data.slice(at, at + len);
    at += len;
    split.push({ d, ec: remainder(d, gen) });
  }
  const out = [];
  for (let i = 0; i <= shortLen; i++) for (const b of split) if (i < b.d.length) out.push(b.d[i]);
  for (let i = 0; i < ecLen; i++) for (const b of split) out.push(b.ec[i]);
  return out;
}

const MASKS = [
  (x, y) => (x + y) % 2 === 0,
  (x, y) => y % 2 === 0,
  (x) => x % 3 === 0,
  (x, y) => (x + y) % 3 === 0,
  (x, y) => (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0,
  (x, y) => ((x * y) % 2) + ((x * y) % 3) === 0,
  (x, y) => (((x * y) % 2) + ((x * y) % 3)) % 2 === 0,
  (x, y) => (((x + y) % 2) + ((x * y) % 3)) % 2 === 0,
];

/** A symbol of `ver` with its function patterns drawn and `cw` placed, before masking. */
function layout(ver, cw) {
  const size = ver * 4 + 17;
  const dark = new Uint8Array(size * size);
  const fixed = new Uint8Array(size * size);
  const set = (x, y, on) => {
    dark[y * size + x] = on ? 1 : 0;
    fixed[y * size + x] = 1;
  };
  for (let i = 0; i < size; i++) {
    set(6, i, i % 2 === 0);
    set(i, 6, i % 2 === 0);
  }
  const finder = (cx, cy) => {
    for (let dy = -4; dy <= 4; dy++) {
      for (let dx = -4; dx <= 4; dx++) {
        const x = cx + dx;
        const y = cy + dy;
        const d = Math.max(Math.abs(dx), Math.abs(dy));
        if (x >= 0 && x < size && y >= 0 && y < size) set(x, y, d !== 2 && d !== 4);
      }
    }
  };
  finder(3, 3);
  finder(size - 4, 3);
  finder(3, size - 4);
  const align = alignmentPositions(ver);
  for (const ay of align) {
    for (const ax of align) {
      const onFinder = (ax === 6 && ay === 6) || (ax === 6 && ay === size - 7) || (ax === size - 7 && ay === 6);
      if (onFinder) continue;
      for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) set(ax + dx, ay + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
    }
  }
  // Reserve the format information (written per mask) and the dark module.
  for (let i = 0; i < 9; i++) {
    if (i === 6) continue; // the timing patterns cross there
    set(8, i, false);
    set(i, 8, false);
  }
  for (let i = 0; i < 8; i++) {
    set(size - 1 - i, 8, false);
    set(8, size - 1 - i, false);
  }
  set(8, size - 8, true);
  if (ver >= 7) {
    let rem = ver;
    for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
    const bits = (ver << 12) | rem;
    for (let i = 0; i < 18; i++) {
      const on = ((bits >>> i) & 1) === 1;
      const a = size - 11 + (i % 3);
      const b = Math.floor(i / 3);
      set(a, b, on);
      set(b, a, on);
    }
  }
  // Codewords, two columns at a time, up and down from the bottom right, around the timing column.
  let i = 0;
  for (let right = size - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5;
    const upward = ((right + 1) & 2) === 0;
    for (let v = 0; v < size; v++) {
      const y = upward ? size - 1 - v : v;
      for (let j = 0; j < 2; j++) {
        const x = right - j;
        if (fixed[y * size + x]) continue;
        if (i < cw.length * 8) dark[y * size + x] = (cw[i >>> 3] >>> (7 - (i & 7))) & 1;
        i++;
      }
    }
  }
  return { size, dark, fixed };
}

function withMask({ size, dark, fixed }, mask) {
  const out = dark.slice();
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) if (!fixed[y * size + x] && MASKS[mask](x, y)) out[y * size + x] ^= 1;
  }
  let rem = (FORMAT_LEVEL_M << 3) | mask;
  const data = rem;
  for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
  const bits = ((data << 10) | rem) ^ 0x5412;
  const bit = (i) => (bits >>> i) & 1;
  const put = (x, y, b) => {
    out[y * size + x] = b;
  };
  for (let i = 0; i <= 5; i++) put(8, i, bit(i));
  put(8, 7, bit(6));
  put(8, 8, bit(7));
  put(7, 8, bit(8));
  for (let i = 9; i < 15; i++) put(14 - i, 8, bit(i));
  for (let i = 0; i < 8; i++) put(size - 1 - i, 8, bit(i));
  for (let i = 8; i < 15; i++) put(8, size - 15 + i, bit(i));
  return out;
}

/** The standard's penalty score of a masked symbol: lower is easier to scan. */
function penalty(size, m) {
  let score = 0;
  const at = (x, y) => m[y * size + x];
  const finderLike = [1, 0, 1, 1, 1, 0, 1];
  for (const horizontal of [true, false]) {
    for (let a = 0; a < size; a++) {
      const cell = (b) => (horizontal ? at(b, a) : at(a, b));
      let run = 1;
      for (let b = 1; b <= size; b++) {
        if (b < size && cell(b) === cell(b - 1)) {
          run++;
          continue;
        }
        if (run >= 5) score += run - 2;
        run = 1;
      }
      // A finder-like 1:1:3:1:1 with four light modules on either side (the edge counts as light).
      for (let b = 0; b + 7 <= size; b++) {
        if (!finderLike.every((v, k) => cell(b + k) === v)) continue;
        const light = (from, to) => {
          for (let k = from; k < to; k++) if (k >= 0 && k < size && cell(k)) return false;
          return true;
        };
        if (light(b - 4, b) || light(b + 7, b + 11)) score += 40;
      }
    }
  }
  for (let y = 0; y + 1 < size; y++) {
    for (let x = 0; x + 1 < size; x++) {
      const c = at(x, y);
      if (c === at(x + 1, y) && c === at(x, y + 1) && c === at(x + 1, y + 1)) score += 3;
    }
  }
  const darkCount = m.reduce((s, v) => s + v, 0);
  score += Math.floor(Math.abs(darkCount * 20 - size * size * 10) / (size * size)) * 10;
  return score;
}

/**
 * The QR code of `text` (UTF-8): `{ size, version, dark(x, y) }`, `size` modules a side without the quiet zone, or
 * null when the text does not fit in a version 40 code. `forceMask` (0 to 7) is for tests.
 */
export function qrEncode(text, forceMask) {
  const bytes = new TextEncoder().encode(text);
  let ver = 1;
  while (ver <= 40 && 4 + (ver < 10 ? 8 : 16) + bytes.length * 8 > dataCodewords(ver) * 8) ver++;
  if (ver > 40) return null;
  const symbol = layout(ver, codewords(dataBits(bytes, ver), ver));
  let best = null;
  for (let mask = 0; mask < 8; mask++) {
    if (forceMask !== undefined && mask !== forceMask) continue;
    const m = withMask(symbol, mask);
    const p = penalty(symbol.size, m);
    if (!best || p < best.p) best = { m, p };
  }
  const { size } = symbol;
  return { size, version: ver, dark: (x, y) => best.m[y * size + x] === 1 };
}

/**
 * The QR code of `text` as an SVG element: one path of horizontal runs, a quiet zone of 4 modules; null
 * for an empty text. The ticket's tracking address on the kiosk, an enrolment code in the admin console:
 * the clients encode it themselves, the daemon only sends the text.
 */
export function qrSvg(text) {
  const code = typeof text === 'string' && text ? qrEncode(text) : null;
  if (!code) return null;
  const { size, dark } = code;
  let d = '';
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; ) {
      if (!dark(x, y)) { x++; continue; }
      const start = x;
      while (x < size && dark(x, y)) x++;
      d += `M${start + 4} ${y + 4}h${x - start}v1h${start - x}z`;
    }
  }
  const ns = 'http://www.w3.org/2000/svg';
  const full = size + 8;
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${full} ${full}`);
  svg.setAttribute('shape-rendering', 'crispEdges');
  const bg = document.createElementNS(ns, 'rect');
  Object.entries({ width: full, height: full, fill: '#ffffff' }).forEach(([k, v]) => bg.setAttribute(k, v));
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', '#000000');
  svg.append(bg, path);
  return svg;
}
