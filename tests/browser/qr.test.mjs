// The QR encoder the kiosk draws tickets' tracking addresses with (shared-ui/qr.js): codes of every size
// class the kiosk can meet, with every mask pattern, written as images and read back with zbarimg.
// Run: cd tests/browser && node --test qr.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { repo } from './lib.mjs';

const { qrEncode } = await import(join(repo, 'shared-ui', 'qr.js'));
const dir = mkdtempSync(join(tmpdir(), 'vuoro-qr-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

/** The code as a plain PBM image: 4 pixels a module, a quiet zone of 4 modules. */
function scan(code, name) {
  const scale = 4;
  const full = (code.size + 8) * scale;
  const rows = [];
  for (let py = 0; py < full; py++) {
    const y = Math.floor(py / scale) - 4;
    let row = '';
    for (let px = 0; px < full; px++) {
      const x = Math.floor(px / scale) - 4;
      const inside = x >= 0 && y >= 0 && x < code.size && y < code.size;
      row += inside && code.dark(x, y) ? '1' : '0';
    }
    rows.push(row);
  }
  const file = join(dir, `${name}.pbm`);
  writeFileSync(file, `P1\n${full} ${full}\n${rows.join('\n')}\n`);
  return execFileSync('zbarimg', ['--quiet', '--raw', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).replace(/\n$/, '');
}

/** `n` characters of a tracking-address-like text. */
const text = (n) => {
  const base = 'https://jonotus.example.fi/kiosk/track.html#t=0123456789abcdef0123456789abcdef/';
  let s = '';
  while (s.length < n) s += base;
  return s.slice(0, n);
};

test('every capacity edge from version 1 to 13 scans back to its text', () => {
  // Byte-mode capacities at level M: the largest text of each version, then one more character.
  const edges = [[14, 1], [26, 2], [42, 3], [62, 4], [84, 5], [106, 6], [122, 7], [152, 8], [180, 9], [213, 10], [251, 11], [287, 12], [331, 13]];
  for (const [n, ver] of edges) {
    for (const [len, want] of [[n, ver], [n + 1, ver + 1]]) {
      const s = text(len);
      const code = qrEncode(s);
      assert.equal(code.version, want, `${len} characters take version ${want}`);
      assert.equal(code.size, want * 4 + 17);
      assert.equal(scan(code, `len-${len}`), s, `${len} characters (version ${want}) scan back`);
    }
  }
});

test('each of the eight mask patterns scans, with and without version information', () => {
  for (const len of [60, 140]) {
    const s = text(len);
    for (let mask = 0; mask < 8; mask++) {
      assert.equal(scan(qrEncode(s, mask), `mask-${len}-${mask}`), s, `mask ${mask}, ${len} characters`);
    }
  }
});

test('a tracking address of the demo hall, and larger codes up to version 40', () => {
  const url = 'http://127.0.0.1:8080/kiosk/track.html#t=0123456789abcdef0123456789abcdef';
  const code = qrEncode(url);
  assert.equal(code.version, 5);
  assert.equal(scan(code, 'demo'), url);
  for (const len of [500, 1000, 2331]) {
    assert.equal(scan(qrEncode(text(len)), `big-${len}`), text(len), `${len} characters`);
  }
  assert.equal(qrEncode(text(2331)).version, 40);
  assert.equal(qrEncode(text(2332)), null, 'more than version 40 holds at level M is refused');
});
