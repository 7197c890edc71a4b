// BlazeFace short range (MediaPipe's face_detection_short_range.tflite) in the browser:
// letterboxed 128x128 RGB input in [-1, 1], outputs `regressors` 1x896x16 and `classificators`
// 1x896x1 (logits). The anchors and the box decoding follow MediaPipe's short-range graph
// (SsdAnchorsCalculator + TensorsToDetectionsCalculator + weighted non-max suppression).

import {letterboxBlocks, resample} from './crop.js';

export const INPUT_SIZE = 128;

// SsdAnchorsCalculator options of face_detection_short_range.pbtxt.
const ANCHOR_OPTIONS = {
  numLayers: 4,
  strides: [8, 16, 16, 16],
  anchorOffsetX: 0.5,
  anchorOffsetY: 0.5,
  aspectRatios: [1.0],
  interpolatedScaleAspectRatio: 1.0,
};
// TensorsToDetectionsCalculator options.
const SCALE = 128; // x_scale = y_scale = w_scale = h_scale
const SCORE_CLIP = 100;
const MIN_SCORE = 0.5;
// face_detector.SURE_SCORE: a still image whose whole-frame faces all score under it is searched tile by tile too.
export const SURE_SCORE = 0.65;
const NMS_IOU = 0.3;
export const KEYPOINTS = ['right_eye', 'left_eye', 'nose_tip', 'mouth_center', 'right_ear', 'left_ear'];

/**
 * The 896 anchor centres [x, y] (normalised) of the short-range model: layers with the same
 * stride share one feature map, so stride 8 gives 16x16x2 anchors and the three stride-16
 * layers 8x8x6 (fixed_anchor_size: every anchor is 1x1, only its centre matters).
 */
export function ssdAnchors(opts = ANCHOR_OPTIONS) {
  const anchors = [];
  let layer = 0;
  while (layer < opts.numLayers) {
    let perCell = 0;
    let last = layer;
    while (last < opts.numLayers && opts.strides[last] === opts.strides[layer]) {
      // aspect ratios plus the interpolated scale for each layer of this stride
      perCell += opts.aspectRatios.length + (opts.interpolatedScaleAspectRatio > 0 ? 1 : 0);
      last += 1;
    }
    const stride = opts.strides[layer];
    const fh = Math.ceil(INPUT_SIZE / stride);
    const fw = Math.ceil(INPUT_SIZE / stride);
    for (let y = 0; y < fh; y++) {
      for (let x = 0; x < fw; x++) {
        for (let k = 0; k < perCell; k++) {
          anchors.push([(x + opts.anchorOffsetX) / fw, (y + opts.anchorOffsetY) / fh]);
        }
      }
    }
    layer = last;
  }
  return anchors;
}

export const ANCHORS = ssdAnchors();

/**
 * Letterbox geometry that fits a W x H frame into the 128x128 input (MediaPipe keep_aspect_ratio), in
 * whole pixels as mobile_demo/face_detector.py's letterbox: round(W * scale) x round(H * scale), centred.
 */
export function letterbox(width, height) {
  const scale = INPUT_SIZE / Math.max(width, height);
  const w = Math.max(1, Math.floor(width * scale + 0.5));
  const h = Math.max(1, Math.floor(height * scale + 0.5));
  return {scale, w, h, padX: Math.floor((INPUT_SIZE - w) / 2), padY: Math.floor((INPUT_SIZE - h) / 2)};
}

/**
 * RGBA pixels of a W x H frame -> the Float32Array 1x128x128x3 input in [-1, 1]: the frame shrunk by
 * crop.js's pixel-area resample (no rounding), the border 0 (mid grey), as face_detector.letterbox.
 */
export function toInput(rgba, width, height, out = new Float32Array(INPUT_SIZE * INPUT_SIZE * 3)) {
  const lb = letterbox(width, height);
  out.fill(0);
  const k = width / lb.w;
  if (Number.isInteger(k) && k > 1 && height === lb.h * k) {
    return letterboxBlocks(rgba, width, lb, k, out) ? out : blockInput(rgba, width, lb, k, out);
  }
  const region = resample(rgba, width, height, 3, 4, 0, 0, width, height, lb.w, lb.h, 'replicate');
  for (let y = 0; y < lb.h; y++) {
    for (let x = 0; x < lb.w; x++) {
      const i = (y * lb.w + x) * 3;
      const o = ((y + lb.padY) * INPUT_SIZE + x + lb.padX) * 3;
      out[o] = region[i] / 127.5 - 1;
      out[o + 1] = region[i + 1] / 127.5 - 1;
      out[o + 2] = region[i + 2] / 127.5 - 1;
    }
  }
  return out;
}

/**
 * toInput when the frame is a whole k times the letterbox (640x480 -> 128x96, 1280x720 -> 128x72): the
 * pixel-area resample is then the mean of each k x k block, summed in integers (the same values as
 * resample's weighted sums up to float rounding, ~1e-13), reading every frame pixel once.
 */
export function blockInput(rgba, width, lb, k, out) {
  const rowR = new Int32Array(lb.w);
  const rowG = new Int32Array(lb.w);
  const rowB = new Int32Array(lb.w);
  const inv = 1 / (k * k * 127.5);
  for (let y = 0; y < lb.h; y++) {
    rowR.fill(0);
    rowG.fill(0);
    rowB.fill(0);
    for (let dy = 0; dy < k; dy++) {
      let i = (y * k + dy) * width * 4;
      for (let x = 0; x < lb.w; x++) {
        let r = 0;
        let g = 0;
        let b = 0;
        for (let dx = 0; dx < k; dx++, i += 4) {
          r += rgba[i];
          g += rgba[i + 1];
          b += rgba[i + 2];
        }
        rowR[x] += r;
        rowG[x] += g;
        rowB[x] += b;
      }
    }
    for (let x = 0; x < lb.w; x++) {
      const o = ((y + lb.padY) * INPUT_SIZE + x + lb.padX) * 3;
      out[o] = rowR[x] * inv - 1;
      out[o + 1] = rowG[x] * inv - 1;
      out[o + 2] = rowB[x] * inv - 1;
    }
  }
  return out;
}

function iou(a, b) {
  const x0 = Math.max(a.xMin, b.xMin);
  const y0 = Math.max(a.yMin, b.yMin);
  const x1 = Math.min(a.xMin + a.width, b.xMin + b.width);
  const y1 = Math.min(a.yMin + a.height, b.yMin + b.height);
  const inter = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
  const union = a.width * a.height + b.width * b.height - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Decodes raw outputs into faces in the letterboxed input's normalised coordinates:
 * [{score, xMin, yMin, width, height, keypoints: [[x, y] x 6]}], best first, after weighted NMS.
 */
export function decode(regressors, logits, minScore = MIN_SCORE) {
  const candidates = [];
  for (let i = 0; i < ANCHORS.length; i++) {
    const logit = Math.max(-SCORE_CLIP, Math.min(SCORE_CLIP, logits[i]));
    const score = 1 / (1 + Math.exp(-logit));
    if (score < minScore) continue;
    const r = i * 16;
    const [ax, ay] = ANCHORS[i];
    const xc = regressors[r] / SCALE + ax;
    const yc = regressors[r + 1] / SCALE + ay;
    const w = regressors[r + 2] / SCALE;
    const h = regressors[r + 3] / SCALE;
    const keypoints = [];
    for (let k = 0; k < 6; k++) {
      keypoints.push([regressors[r + 4 + 2 * k] / SCALE + ax, regressors[r + 5 + 2 * k] / SCALE + ay]);
    }
    candidates.push({score, xMin: xc - w / 2, yMin: yc - h / 2, width: w, height: h, keypoints});
  }
  candidates.sort((a, b) => b.score - a.score);
  // Weighted NMS: each kept face is the score-weighted mean of the boxes that overlap it.
  const faces = [];
  let remaining = candidates;
  while (remaining.length) {
    const top = remaining[0];
    const group = [];
    const rest = [];
    for (const c of remaining) (iou(top, c) > NMS_IOU ? group : rest).push(c);
    let total = 0;
    const acc = {xMin: 0, yMin: 0, width: 0, height: 0, keypoints: top.keypoints.map(() => [0, 0])};
    for (const c of group) {
      total += c.score;
      acc.xMin += c.xMin * c.score;
      acc.yMin += c.yMin * c.score;
      acc.width += c.width * c.score;
      acc.height += c.height * c.score;
      c.keypoints.forEach((p, k) => {
        acc.keypoints[k][0] += p[0] * c.score;
        acc.keypoints[k][1] += p[1] * c.score;
      });
    }
    faces.push({
      score: top.score,
      xMin: acc.xMin / total,
      yMin: acc.yMin / total,
      width: acc.width / total,
      height: acc.height / total,
      keypoints: acc.keypoints.map(([x, y]) => [x / total, y / total]),
    });
    remaining = rest;
  }
  return faces;
}

/**
 * The second pass's tiles [{x, y, w, h}] of a W x H frame, as mobile_demo/face_detector.py's tiles_of: squares
 * of side 2/3 of the short side, overlapping by half a tile; none for small frames.
 */
export function tiles(width, height) {
  const side = Math.floor((Math.min(width, height) * 2) / 3 + 0.5);
  if (side < INPUT_SIZE || Math.max(width, height) / side < 1.25) return [];
  const ny = Math.max(1, Math.ceil((height - side) / (side / 2)) + 1);
  const nx = Math.max(1, Math.ceil((width - side) / (side / 2)) + 1);
  const out = [];
  for (let j = 0; j < ny; j++) {
    const y = ny === 1 ? 0 : Math.floor((j * (height - side)) / (ny - 1) + 0.5);
    for (let i = 0; i < nx; i++) {
      const x = nx === 1 ? 0 : Math.floor((i * (width - side)) / (nx - 1) + 0.5);
      out.push({x, y, w: side, h: side});
    }
  }
  return out;
}

/** Faces found in overlapping tiles, as face_detector.merge_faces: best first, one dropped where it overlaps a better one. */
export function mergeFaces(faces) {
  const box = (f) => ({xMin: f.x, yMin: f.y, width: f.width, height: f.height});
  const kept = [];
  for (const f of [...faces].sort((a, b) => b.score - a.score)) {
    if (kept.every((k) => iou(box(k), box(f)) <= NMS_IOU)) kept.push(f);
  }
  return kept;
}

/** Maps a face from letterboxed-input coordinates to pixels of the original W x H frame. */
export function toFrame(face, width, height) {
  const lb = letterbox(width, height);
  const px = (u) => (u * INPUT_SIZE - lb.padX) / lb.scale;
  const py = (v) => (v * INPUT_SIZE - lb.padY) / lb.scale;
  return {
    score: face.score,
    x: px(face.xMin),
    y: py(face.yMin),
    width: (face.width * INPUT_SIZE) / lb.scale,
    height: (face.height * INPUT_SIZE) / lb.scale,
    keypoints: face.keypoints.map(([u, v]) => [px(u), py(v)]),
  };
}
