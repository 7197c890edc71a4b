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

/** Taps along one axis, as core.crop.axis_taps: {taps, idx: Int32Array(nOut * taps), w: Float64Array(nOut * taps)}. */
export function axisTaps(start, length, nOut, nSrc, border) {
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

/**
 * The frame pixels that the crop of square `sq` reads: the whole-pixel rectangle {x, y, w, h} inside the
 * W x H frame that holds every tap of both axes (w or h 0 when the square lies wholly outside the frame).
 */
export function cropRect(c, sq, W, H) {
  const span = (start, n) => {
    const t = axisTaps(start, sq.side, sq.n || c.size, n, c.border).idx;
    let lo = n;
    let hi = -1;
    for (const k of t) {
      if (k >= 0) {
        lo = Math.min(lo, k);
        hi = Math.max(hi, k);
      }
    }
    return hi >= lo ? [lo, hi - lo + 1] : [0, 0];
  };
  const [x, w] = span(sq.x, W);
  const [y, h] = span(sq.y, H);
  return {x, y, w: h ? w : 0, h: w ? h : 0};
}

/**
 * The square {x, y, side} of an RGBA frame as the contract's size x size grey Uint8Array (core.crop.crop_square),
 * or a cropPlan's (core.crop.crop_turned where it turns). With `origin` (a cropRect of the frame), `rgba`
 * holds only that rectangle's pixels: only they are read and turned grey, with the same result as from the
 * whole frame.
 */
export function cropSquare(rgba, width, height, sq, c, grey = null, origin = null) {
  const n = origin ? origin.w * origin.h : width * height;
  const g = toGrey(rgba, origin ? origin.w : width, origin ? origin.h : height, c, grey && grey.length >= n ? grey : undefined);
  const m = sq.n || c.size;
  const v = resample(g, width, height, 1, 1, sq.x, sq.y, sq.side, sq.side, m, m, c.border, c.fill, origin);
  return roundToUint8(sq.turn ? sampleTurned(v, sq, c.size) : v);
}

/** The model's input for a detector box {x, y, width, height, keypoints?} (core.crop.crop). */
export function cropBox(rgba, width, height, box, c) {
  return cropSquare(rgba, width, height, cropPlan(c, box.x, box.y, box.width, box.height, box.keypoints), c);
}
