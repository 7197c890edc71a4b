// The crop contract in the page: a detector box -> the expression model's grey size x size input.
// A line-by-line twin of core/crop.py (read its docstring for the steps): the same float64 operations
// in the same order, so the page and `emojify` give the same pixels. The contract itself comes from the
// model's entry in /models/manifest.json ("crop"); DEFAULT_CONTRACT (core.crop.CropContract's defaults,
// checked by tests/test_browser.py) is only for a manifest written before contracts existed.

export const DEFAULT_CONTRACT = Object.freeze({
  size: 48,
  scale: 1.15,
  shift: -0.095,
  border: 'replicate',
  fill: 128,
  grey: [0.299, 0.587, 0.114],
  grey_bits: 14,
  resize: 'area',
  box: 'blazeface-short-range',
  roll: 'eyes',
});

const BORDERS = ['replicate', 'constant'];
const RESIZES = ['area'];
const ROLLS = ['keep', 'eyes'];

/** The contract of a manifest entry's "crop" (missing keys: DEFAULT_CONTRACT's), checked against the model's input side. */
export function contractFrom(crop, size = null) {
  // No "roll" in a manifest's contract: one written before the key existed, whose square stays upright.
  const c = {...DEFAULT_CONTRACT, roll: crop ? 'keep' : DEFAULT_CONTRACT.roll,
    ...(size && !(crop && 'size' in crop) ? {size} : {}), ...(crop || {})};
  const bad = [];
  if (!Number.isInteger(c.size) || c.size < 1) bad.push(`size ${c.size}`);
  if (size && c.size !== size) bad.push(`size ${c.size} but the model takes ${size}x${size}`);
  if (!(c.scale >= 0.1 && c.scale <= 10)) bad.push(`scale ${c.scale}`);
  if (!(Math.abs(c.shift) <= 2)) bad.push(`shift ${c.shift}`);
  if (!BORDERS.includes(c.border)) bad.push(`border ${c.border}`);
  if (!RESIZES.includes(c.resize)) bad.push(`resize ${c.resize}`);
  if (!ROLLS.includes(c.roll)) bad.push(`roll ${c.roll}`);
  if (!Array.isArray(c.grey) || c.grey.length !== 3) bad.push('grey weights');
  if (!Number.isInteger(c.grey_bits) || c.grey_bits < 8 || c.grey_bits > 20) bad.push(`grey_bits ${c.grey_bits}`);
  if (bad.length) throw new Error(`bad crop contract in the manifest: ${bad.join('; ')}`);
  return c;
}

export function greyCoefficients(c) {
  return c.grey.map((w) => Math.floor(w * 2 ** c.grey_bits + 0.5));
}

/** The crop square {x, y, side} (frame pixels, fractional) for a detector box. */
export function square(c, x, y, w, h) {
  const side0 = Math.max(w, h);
  const side = c.scale * side0;
  const cx = x + w / 2;
  const cy = y + h / 2 + c.shift * side0;
  return {x: cx - side / 2, y: cy - side / 2, side};
}

/** core.crop.CropContract.turned_square: {cx, cy, side, c, s} of the square turned with the eye line. */
export function turnedSquare(c, x, y, w, h, keypoints = null) {
  let cos = 1;
  let sin = 0;
  if (keypoints) {
    const dx = keypoints[1][0] - keypoints[0][0];
    const dy = keypoints[1][1] - keypoints[0][1];
    const r = Math.sqrt(dx * dx + dy * dy);
    if (r > 0) {
      cos = dx / r;
      sin = dy / r;
    }
  }
  const m = Math.max(w, h);
  const d = c.shift * m;
  return {cx: x + w / 2 - d * sin, cy: y + h / 2 + d * cos, side: m * c.scale, c: cos, s: sin};
}

/** core.crop.CropContract.turned_grid: {big, m}, the upright square around the turned one and its grid. */
export function turnedGrid(c, side, cos, sin) {
  const spread = Math.abs(cos) + Math.abs(sin);
  return {big: side * spread, m: Math.ceil(2 * c.size * spread)};
}

/**
 * What the crop of a detector box resamples: {x, y, side, n} (the upright square read, resampled to n x n)
 * and `turn` (roll "eyes": the turned square, sampled from that n x n grid), or a plain `square` (roll "keep").
 */
export function cropPlan(c, x, y, w, h, keypoints = null) {
  if (c.roll !== 'eyes') return {...square(c, x, y, w, h), n: c.size, turn: null};
  const t = turnedSquare(c, x, y, w, h, keypoints);
  const g = turnedGrid(c, t.side, t.c, t.s);
  return {x: t.cx - g.big / 2, y: t.cy - g.big / 2, side: g.big, n: g.m, turn: t};
}

const SUBSAMPLES = [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]];

/** core.crop.crop_turned's step b: the n x n float grid of plan `p` -> the size x size crop (before rounding). */
export function sampleTurned(grid, p, size) {
  const {side, c: cos, s: sin} = p.turn;
  const big = p.side;
  const m = p.n;
  const k = m / big;
  const out = new Float64Array(size * size);
  for (const [a, b] of SUBSAMPLES) {
    for (let i = 0; i < size; i++) {
      const v = (i + b) / size - 0.5;
      for (let j = 0; j < size; j++) {
        const u = (j + a) / size - 0.5;
        const qx = (big / 2 + side * (u * cos - v * sin)) * k - 0.5;
        const qy = (big / 2 + side * (u * sin + v * cos)) * k - 0.5;
        const x0 = Math.floor(qx);
        const y0 = Math.floor(qy);
        const tx = qx - x0;
        const ty = qy - y0;
        const xa = Math.min(Math.max(x0, 0), m - 1);
        const xb = Math.min(Math.max(x0 + 1, 0), m - 1);
        const ya = Math.min(Math.max(y0, 0), m - 1) * m;
        const yb = Math.min(Math.max(y0 + 1, 0), m - 1) * m;
        out[i * size + j] += (1 - ty) * ((1 - tx) * grid[ya + xa] + tx * grid[ya + xb])
          + ty * ((1 - tx) * grid[yb + xa] + tx * grid[yb + xb]);
      }
    }
  }
  for (let i = 0; i < out.length; i++) out[i] *= 0.25;
  return out;
}

/** RGBA pixels (W x H) -> grey Uint8Array, integer fixed point as core.crop.to_grey. */
export function toGrey(rgba, width, height, c, out = new Uint8Array(width * height)) {
  const [cr, cg, cb] = greyCoefficients(c);
  const bits = c.grey_bits;
  const half = 2 ** (bits - 1);
  const n = width * height;
  for (let i = 0, j = 0; j < n; i += 4, j++) {
    out[j] = Math.min(255, Math.floor((cr * rgba[i] + cg * rgba[i + 1] + cb * rgba[i + 2] + half) / 2 ** bits));
  }
  return out;
}

/** Y' -> grey (Uint8Array(256)) for a Y'CbCr frame's luma plane, as core.crop.luma_table. */
export function lumaTable(fullRange = false) {
  const t = new Uint8Array(256);
  for (let y = 0; y < 256; y++) t[y] = fullRange ? y : Math.min(255, Math.max(0, Math.floor(((y - 16) * 510 + 219) / 438)));
  return t;
}

/** A luma plane (W x H bytes) through lumaTable: the grey of a Y'CbCr frame. */
export function lumaToGrey(plane, width, height, table, out = new Uint8Array(width * height)) {
  for (let i = 0; i < width * height; i++) out[i] = table[plane[i]];
  return out;
}

// The last few axisTaps results: a tracked frame asks for the same taps twice (cropRect, then the crop).
const TAPS_MEMO = [];

/**
 * Taps along one axis, as core.crop.axis_taps: {taps, idx: Int32Array(nOut * taps), w: Float64Array(nOut * taps)}
 * (the same object for the same arguments as one of the last few calls: not to be written to).
 */
export function axisTaps(start, length, nOut, nSrc, border) {
  for (const e of TAPS_MEMO) {
    if (e.start === start && e.length === length && e.nOut === nOut && e.nSrc === nSrc && e.border === border) return e.taps;
  }
  const taps = computeTaps(start, length, nOut, nSrc, border);
  TAPS_MEMO.unshift({start, length, nOut, nSrc, border, taps});
  if (TAPS_MEMO.length > 4) TAPS_MEMO.pop();
  return taps;
}

function computeTaps(start, length, nOut, nSrc, border) {
  const f = length / nOut;
  const taps = f >= 1 ? Math.ceil(f) + 1 : 2;
  const idx = new Int32Array(nOut * taps);
  const w = new Float64Array(nOut * taps);
  for (let j = 0; j < nOut; j++) {
    if (f >= 1) {
      const a = start + j * f;
      const b = start + (j + 1) * f;
      const k0 = Math.floor(a);
      for (let t = 0; t < taps; t++) {
        const k = k0 + t;
        idx[j * taps + t] = k;
        w[j * taps + t] = Math.max(Math.min(b, k + 1) - Math.max(a, k), 0) / f;
      }
    } else {
      const centre = start + (j + 0.5) * f - 0.5;
      const k0 = Math.floor(centre);
      const t = centre - k0;
      idx[j * taps] = k0;
      idx[j * taps + 1] = k0 + 1;
      w[j * taps] = 1 - t;
      w[j * taps + 1] = t;
    }
  }
  for (let i = 0; i < idx.length; i++) {
    if (border === 'replicate') idx[i] = Math.min(Math.max(idx[i], 0), nSrc - 1);
    else if (idx[i] < 0 || idx[i] >= nSrc) idx[i] = -1;
  }
  return {taps, idx, w};
}

/**
 * The rectangle (left, top, width, height) of a W x H image with `channels` values per pixel, `stride`
 * apart (RGBA: channels 3, stride 4; grey: 1, 1), resampled to outW x outH x channels (Float64Array),
 * along x then along y, as core.crop.resample.
 */
export function resample(src, W, H, channels, stride, left, top, width, height, outW, outH, border, fill = 0, origin = null) {
  const X = axisTaps(left, width, outW, W, border);
  const Y = axisTaps(top, height, outH, H, border);
  // `src` may hold only the rectangle `origin` {x, y, w, h} of the W x H frame (cropRect: every pixel the
  // taps read): the taps are computed in frame coordinates as above (the same floats as Python's), then
  // moved into the rectangle.
  const ox = origin ? origin.x : 0;
  const oy = origin ? origin.y : 0;
  const rowW = origin ? origin.w : W;
  let rmin = H;
  let rmax = -1;
  for (const r of Y.idx) {
    if (r >= 0) {
      rmin = Math.min(rmin, r);
      rmax = Math.max(rmax, r);
    }
  }
  const nr = rmax >= rmin ? rmax - rmin + 1 : 0;
  const rowLen = outW * channels;
  const horiz = new Float64Array((nr + 1) * rowLen); // the last row: a row of `fill` outside the frame
  for (let r = 0; r <= nr; r++) {
    const base = (rmin + r - oy) * rowW - ox;
    for (let j = 0; j < outW; j++) {
      for (let c = 0; c < channels; c++) {
        let acc = 0;
        for (let t = 0; t < X.taps; t++) {
          const col = X.idx[j * X.taps + t];
          const v = r < nr && col >= 0 ? src[(base + col) * stride + c] : fill;
          acc += X.w[j * X.taps + t] * v;
        }
        horiz[r * rowLen + j * channels + c] = acc;
      }
    }
  }
  const out = new Float64Array(outH * rowLen);
  for (let i = 0; i < outH; i++) {
    for (let k = 0; k < rowLen; k++) {
      let acc = 0;
      for (let t = 0; t < Y.taps; t++) {
        const row = Y.idx[i * Y.taps + t];
        acc += Y.w[i * Y.taps + t] * horiz[(row >= 0 ? row - rmin : nr) * rowLen + k];
      }
      out[i * rowLen + k] = acc;
    }
  }
  return out;
}

/** Round half up and clip to 0..255, as core.crop.round_to_uint8. */
export function roundToUint8(values, out = new Uint8Array(values.length)) {
  for (let i = 0; i < values.length; i++) out[i] = Math.min(255, Math.max(0, Math.floor(values[i] + 0.5)));
  return out;
}

/** [first, count] of the in-frame indices (>= 0) of a tap table, [0, 0] where every tap is outside. */
function tapSpan(idx) {
  let lo = 0x7fffffff;
  let hi = -1;
  for (let i = 0; i < idx.length; i++) {
    const k = idx[i];
    if (k >= 0) {
      if (k < lo) lo = k;
      if (k > hi) hi = k;
    }
  }
  return hi >= 0 ? [lo, hi - lo + 1] : [0, 0];
}

/**
 * The frame pixels that the crop of square `sq` reads: the whole-pixel rectangle {x, y, w, h} inside the
 * W x H frame that holds every tap of both axes (w or h 0 when the square lies wholly outside the frame).
 */
export function cropRect(c, sq, W, H) {
  const span = (start, n) => tapSpan(axisTaps(start, sq.side, sq.n || c.size, n, c.border).idx);
  const [x, w] = span(sq.x, W);
  const [y, h] = span(sq.y, H);
  return {x, y, w: h ? w : 0, h: w ? h : 0};
}

// The same steps in WebAssembly (mobile_demo/wasm/crop.c, built by `make wasm`): the same integer grey and
// float64 operations in the same order, so the same bits, in a fraction of the time. Until useCropWasm or
// loadCropWasm succeeds (or where WebAssembly is missing), cropSquare runs the JavaScript above.
let wasm = null; // {ex: the module's exports, base: its first free byte}

/** Uses the crop module from its bytes (an ArrayBuffer or typed array), synchronously; false if it cannot run here. */
export function useCropWasm(bytes) {
  try {
    const ex = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
    wasm = {ex, base: (ex.__heap_base.value + 15) & ~15};
    return true;
  } catch (e) {
    wasm = null;
    return false;
  }
}

/** Fetches and uses the crop module (/wasm/crop.wasm); resolves false (the JavaScript crop stays) if it cannot. */
export async function loadCropWasm(url = new URL('../wasm/crop.wasm', import.meta.url)) {
  try {
    const res = await fetch(url);
    return res.ok ? useCropWasm(await res.arrayBuffer()) : false;
  } catch (e) {
    return false;
  }
}

/** Drops the crop module (the JavaScript crop again): for tests and benchmarks of the two. */
export function dropCropWasm() {
  wasm = null;
}

export function cropEngine() {
  return wasm ? 'wasm' : 'js';
}

/**
 * arena() for a call whose pixels are `rgba`: those in cropInput's view are read where they are (in place);
 * others are copied in behind that view, which stays as the grab wrote it (a tile's letterbox between a detection
 * frame's read and its crop must not write over the frame). Returns {inPlace, n (the pixel bytes), offsets}.
 */
function arenaFor(rgba, pixelBytes, sizes) {
  const inPlace = !!wasm.input && rgba === wasm.input.view;
  if (inPlace) return {inPlace, n: wasm.input.bytes, offsets: arena([wasm.input.bytes, ...sizes])};
  const kept = wasm.input ? [wasm.input.bytes] : [];
  return {inPlace, n: pixelBytes, offsets: arena([...kept, pixelBytes, ...sizes]).slice(kept.length)};
}

/** Byte offsets of consecutive blocks of the given sizes in the module's memory (8-aligned), grown to hold them. */
function arena(sizes) {
  const offsets = [];
  let at = wasm.base;
  for (const n of sizes) {
    offsets.push(at);
    at = (at + n + 7) & ~7;
  }
  const mem = wasm.ex.memory;
  if (at > mem.buffer.byteLength) mem.grow(Math.ceil((at - mem.buffer.byteLength) / 65536));
  return offsets;
}

/**
 * A view of `bytes` bytes of the crop module's memory where cropSquare and letterboxBlocks read a frame's pixels
 * without a copy (a grab writes them there), or null without the module. Valid until the next cropInput.
 */
export function cropInput(bytes) {
  if (!wasm) return null;
  // Room behind the pixels for the crop's and the letterbox's blocks too: the memory does not grow (which would
  // detach this view) while the view is in use.
  const [at] = arena([bytes, bytes + CROP_HEADROOM]);
  if (wasm.laid && at + bytes > wasm.laid.from) wasm.laid = null; // the grab will write over the laid taps
  wasm.input = {view: new Uint8Array(wasm.ex.memory.buffer, at, bytes), bytes};
  return wasm.input.view;
}

// Bytes kept free behind cropInput's view: the crop's float blocks of a 1080p frame need under 2 MB.
const CROP_HEADROOM = 4 << 20;

/**
 * blazeface.js blockInput in the module: the RGBA frame shrunk k times by block means into `out` (the detector's
 * Float32Array, already cleared) at the letterbox lb {w, h, padX, padY}; the same values. False without the module.
 */
export function letterboxBlocks(rgba, width, lb, k, out) {
  if (!wasm || lb.w > 512 || out.length !== 128 * 128 * 3) return false;
  const {inPlace, n, offsets: [src, dst]} = arenaFor(rgba, rgba.length, [out.length * 4]);
  wasm.laid = null; // written over below
  const buf = wasm.ex.memory.buffer;
  if (!inPlace) new Uint8Array(buf, src, n).set(rgba);
  const view = new Float32Array(buf, dst, out.length);
  view.set(out);
  wasm.ex.letterbox_blocks(src, width, lb.w, lb.h, k, lb.padX, lb.padY, 1 / (k * k * 127.5), dst);
  out.set(view);
  return true;
}

// The largest crop side the module's turned-square step takes (its column tables).
const WASM_MAX_SIZE = 512;

function cropWasm(rgba, width, height, sq, c, origin, luma) {
  const m = sq.n || c.size;
  const X = axisTaps(sq.x, sq.side, m, width, c.border);
  const Y = axisTaps(sq.y, sq.side, m, height, c.border);
  const [c0, cw] = tapSpan(X.idx);
  const [r0, nr] = tapSpan(Y.idx);
  const ox = origin ? origin.x : 0;
  const oy = origin ? origin.y : 0;
  const rowW = origin ? origin.w : width;
  const size = c.size;
  // In place: the pixels a grab wrote into cropInput's view (the first block, whatever the memory grew to since).
  const px = luma ? 1 : 4; // bytes a pixel: luma or RGBA
  const {inPlace, n, offsets: [src, grey, col, xw, row, yw, horiz, grid, acc, out, lut]} = arenaFor(rgba, cw * nr * px, [
    luma ? 0 : cw * nr, X.idx.length * 4, X.w.length * 8, Y.idx.length * 4, Y.w.length * 8, (nr + 1) * m * 8, m * m * 8,
    size * size * 8, size * size, 256 * 8]);
  const buf = wasm.ex.memory.buffer;
  let from = src + ((r0 - oy) * rowW + c0 - ox) * px;
  let rowBytes = rowW * px;
  if (!inPlace && cw && nr) { // only the rows and columns the taps read
    const heap = new Uint8Array(buf, src, n);
    for (let y = 0; y < nr; y++) {
      const at = ((r0 + y - oy) * rowW + c0 - ox) * px;
      heap.set(rgba.subarray(at, at + cw * px), y * cw * px);
    }
    from = src;
    rowBytes = cw * px;
  }
  // The taps in the module's memory: written again only when they changed (a tracked face keeps its box).
  const laid = wasm.laid;
  if (!laid || laid.X !== X || laid.Y !== Y || laid.c0 !== c0 || laid.r0 !== r0 || laid.nr !== nr || laid.col !== col
    || laid.row !== row || laid.buf !== buf) {
    const xi = X.idx;
    const yi = Y.idx;
    const cols = new Int32Array(buf, col, xi.length);
    for (let k = 0; k < xi.length; k++) cols[k] = xi[k] >= 0 ? xi[k] - c0 : -1;
    const rows = new Int32Array(buf, row, yi.length);
    for (let k = 0; k < yi.length; k++) rows[k] = yi[k] >= 0 ? yi[k] - r0 : nr;
    new Float64Array(buf, xw, X.w.length).set(X.w);
    new Float64Array(buf, yw, Y.w.length).set(Y.w);
    wasm.laid = {X, Y, c0, r0, nr, col, row, buf, from: col};
  }
  const ex = wasm.ex;
  const [cr, cg, cb] = greyCoefficients(c);
  if (luma) { // the luma plane read in place, through the table, by the rows step
    new Float64Array(buf, lut, 256).set(luma);
    ex.rows(from, rowBytes, nr, col, xw, X.taps, m, c.fill, lut, horiz);
  } else {
    if (cw && nr) ex.grey(from, rowBytes, cw, nr, grey, cr, cg, cb, c.grey_bits);
    ex.rows(grey, cw, nr, col, xw, X.taps, m, c.fill, 0, horiz);
  }
  ex.cols(horiz, row, yw, Y.taps, m, m, grid);
  if (sq.turn) ex.turned(grid, m, sq.side, sq.turn.side, sq.turn.c, sq.turn.s, size, acc, out);
  else ex.round_out(grid, m * m, out);
  return new Uint8Array(buf, out, size * size).slice();
}

/**
 * The square {x, y, side} of an RGBA frame as the contract's size x size grey Uint8Array (core.crop.crop_square),
 * or a cropPlan's (core.crop.crop_turned where it turns). With `origin` (a cropRect of the frame), `rgba`
 * holds only that rectangle's pixels: only they are read and turned grey, with the same result as from the
 * whole frame. With `luma` (a lumaTable), the pixels are a Y'CbCr frame's luma plane, one byte each.
 * In WebAssembly where the module is loaded (only the pixels the taps read are turned grey).
 */
export function cropSquare(rgba, width, height, sq, c, grey = null, origin = null, luma = null) {
  if (wasm && c.size <= WASM_MAX_SIZE) return cropWasm(rgba, width, height, sq, c, origin, luma);
  const w = origin ? origin.w : width;
  const h = origin ? origin.h : height;
  const out = grey && grey.length >= w * h ? grey : undefined;
  const g = luma ? lumaToGrey(rgba, w, h, luma, out) : toGrey(rgba, w, h, c, out);
  const m = sq.n || c.size;
  const v = resample(g, width, height, 1, 1, sq.x, sq.y, sq.side, sq.side, m, m, c.border, c.fill, origin);
  return roundToUint8(sq.turn ? sampleTurned(v, sq, c.size) : v);
}

/** The model's input for a detector box {x, y, width, height, keypoints?} (core.crop.crop). */
export function cropBox(rgba, width, height, box, c) {
  return cropSquare(rgba, width, height, cropPlan(c, box.x, box.y, box.width, box.height, box.keypoints), c);
}
