#!/usr/bin/env node
// Checks a screenshot of a `laminator bench --html` page taken by a real browser (scripts/test runs
// headless chromium): every chart the page promises was drawn. Each chart's plot area has its own
// tint (app/bench_report.cpp) and the series are drawn in the palette's colours, so a chart that
// did not render (no SVG support, a broken element, an empty plot) leaves its tint or its lines
// missing from the pixels.
//
//   node scripts/check-bench-report.mjs SCREENSHOT.png bars latency throughput
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';

const [file, ...charts] = process.argv.slice(2);
if (!file || charts.length === 0) {
  console.error('usage: check-bench-report.mjs SCREENSHOT.png CHART...');
  process.exit(2);
}

/** Decodes an 8-bit, non-interlaced RGB or RGBA PNG into {width, height, rgb(x, y)}. */
function decodePng(buf) {
  if (buf.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let pos = 8, width = 0, height = 0, type = 0;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const kind = buf.toString('ascii', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (kind === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0) throw new Error('only 8-bit non-interlaced PNGs');
      type = data[9];
    } else if (kind === 'IDAT') {
      idat.push(data);
    }
    pos += 12 + len;
  }
  const bpp = type === 6 ? 4 : type === 2 ? 3 : 0;
  if (bpp === 0) throw new Error(`colour type ${type} not handled`);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const px = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? px[y * stride + i - bpp] : 0;
      const b = y > 0 ? px[(y - 1) * stride + i] : 0;
      const c = i >= bpp && y > 0 ? px[(y - 1) * stride + i - bpp] : 0;
      let v = line[i];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      px[y * stride + i] = v & 0xff;
    }
  }
  return { width, height, at: (x, y) => px.subarray(y * stride + x * bpp, y * stride + x * bpp + 3) };
}

const hex = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
const tints = { bars: hex('#f0f6ff'), latency: hex('#fff4f4'), throughput: hex('#f1fbf3') };
const series = ['#2563eb', '#dc2626', '#16a34a'].map(hex);

const img = decodePng(readFileSync(file));
// For each tint: its pixels, and the box of the rows where it runs wide (a plot area is hundreds of
// pixels across; a stray pixel of a similar colour elsewhere must not stretch the box over another
// chart, whose series would then be counted for this one).
const near = (p, c, tol) => Math.abs(p[0] - c[0]) <= tol && Math.abs(p[1] - c[1]) <= tol && Math.abs(p[2] - c[2]) <= tol;
const found = {};
for (const [name, t] of Object.entries(tints)) {
  const rows = new Array(img.height).fill(0);
  let n = 0;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      if (near(img.at(x, y), t, 1)) rows[y]++;
    }
    n += rows[y];
  }
  const f = { n, x0: 1e9, y0: 1e9, x1: -1, y1: -1 };
  for (let y = 0; y < img.height; y++) {
    if (rows[y] < 200) continue;
    f.y0 = Math.min(f.y0, y); f.y1 = Math.max(f.y1, y);
    for (let x = 0; x < img.width; x++) {
      if (near(img.at(x, y), t, 1)) { f.x0 = Math.min(f.x0, x); f.x1 = Math.max(f.x1, x); }
    }
  }
  found[name] = f;
}
let failed = 0;
for (const name of charts) {
  const f = found[name];
  if (!f) {
    console.error(`unknown chart ${name}`);
    process.exit(2);
  }
  let drawn = 0;
  for (let y = Math.max(0, f.y0); y <= f.y1; y++) {
    for (let x = Math.max(0, f.x0); x <= f.x1; x++) {
      if (series.some((c) => near(img.at(x, y), c, 24))) drawn++;
    }
  }
  const ok = f.n >= 5000 && drawn >= 200;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: plot area ${f.n} px` +
    (f.n ? ` at ${f.x0},${f.y0}-${f.x1},${f.y1}` : '') + `, series ${drawn} px`);
  if (!ok) failed++;
}
console.log(`check-bench-report: ${charts.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
