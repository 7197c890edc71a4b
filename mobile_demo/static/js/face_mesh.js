// The face mesh in the page (MediaPipe's face_landmark.tflite, /vendor/face_landmark.tflite): a face -> the
// model's 192x192 RGB input -> 468 landmarks in frame pixels. A line-by-line twin of the pure functions of
// mobile_demo/face_mesh.py (read its docstring for the ROI, the crop and the way back): the same float64
// operations in the same order, parity-tested in tests/test_browser_mesh.py. Pure functions only: the page
// runs the model (LiteRT.js) and keeps the track.
//
// A live frame: roi = track ? roiFromMesh(previous) : roiFromFace(blazeface face);
// input = cropInput(rgba, W, H, roi); [mesh, score] = the model's two outputs;
// landmarks = landmarksToFrame(mesh, roi); keep the track while sigmoid(score) >= MIN_SCORE.

export const MESH_URL = '/vendor/face_landmark.tflite';
export const INPUT_SIZE = 192;
export const NUM_LANDMARKS = 468;
export const ROI_SCALE = 1.5;
export const MIN_SCORE = 0.5;
export const RIGHT_EYE_OUTER = 33;
export const LEFT_EYE_OUTER = 263;
export const BOX_SIDE_IOD = 2.35;
export const BOX_DOWN_IOD = 0.54;

/** face_mesh.turn_of: {c, s} of the line from (x0, y0) to (x1, y1); {1, 0} for a point. */
export function turnOf(x0, y0, x1, y1) {
  const dx = x1 - x0;
  const dy = y1 - y0;
  const r = Math.sqrt(dx * dx + dy * dy);
  if (r > 0) return {c: dx / r, s: dy / r};
  return {c: 1, s: 0};
}

/** face_mesh.roi_from_face: {cx, cy, side, c, s} of a BlazeFace face {x, y, width, height, keypoints} (frame pixels). */
export function roiFromFace(face, scale = ROI_SCALE) {
  let t = {c: 1, s: 0};
  if (face.keypoints) {
    const kp = face.keypoints;
    t = turnOf(kp[0][0], kp[0][1], kp[1][0], kp[1][1]);
  }
  const w = face.width ?? face.w;
  const h = face.height ?? face.h;
  return {cx: face.x + w / 2, cy: face.y + h / 2, side: Math.max(w, h) * scale, c: t.c, s: t.s};
}

/** face_mesh.roi_from_mesh: the next frame's ROI from landmarks (flat x, y, z, ..., frame pixels). */
export function roiFromMesh(lm, scale = ROI_SCALE) {
  const {c, s} = turnOf(lm[3 * RIGHT_EYE_OUTER], lm[3 * RIGHT_EYE_OUTER + 1], lm[3 * LEFT_EYE_OUTER], lm[3 * LEFT_EYE_OUTER + 1]);
  let aMin = Infinity;
  let bMin = Infinity;
  let aMax = -Infinity;
  let bMax = -Infinity;
  for (let k = 0; k < NUM_LANDMARKS; k++) {
    const x = lm[3 * k];
    const y = lm[3 * k + 1];
    const a = x * c + y * s; // along the eye line
    const b = y * c - x * s; // along the face's down
    aMin = Math.min(aMin, a);
    aMax = Math.max(aMax, a);
    bMin = Math.min(bMin, b);
    bMax = Math.max(bMax, b);
  }
  const am = (aMin + aMax) / 2;
  const bm = (bMin + bMax) / 2;
  return {cx: am * c - bm * s, cy: am * s + bm * c, side: Math.max(aMax - aMin, bMax - bMin) * scale, c, s};
}

/**
 * face_mesh.crop_input: the ROI of an RGBA frame (W x H, 4 bytes a pixel) as the model's size x size x 3
 * Float32Array in [0, 1]: one bilinear sample a pixel, edges replicated.
 */
export function cropInput(rgba, W, H, roi, size = INPUT_SIZE, out = new Float32Array(size * size * 3)) {
  const {cx, cy, side, c, s} = roi;
  for (let i = 0; i < size; i++) {
    const v = (i + 0.5) / size - 0.5;
    for (let j = 0; j < size; j++) {
      const u = (j + 0.5) / size - 0.5;
      const qx = cx + side * (u * c - v * s) - 0.5;
      const qy = cy + side * (u * s + v * c) - 0.5;
      const x0 = Math.floor(qx);
      const y0 = Math.floor(qy);
      const tx = qx - x0;
      const ty = qy - y0;
      const xa = Math.min(Math.max(x0, 0), W - 1) * 4;
      const xb = Math.min(Math.max(x0 + 1, 0), W - 1) * 4;
      const ya = Math.min(Math.max(y0, 0), H - 1) * W * 4;
      const yb = Math.min(Math.max(y0 + 1, 0), H - 1) * W * 4;
      const o = (i * size + j) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const sample = (1 - ty) * ((1 - tx) * rgba[ya + xa + ch] + tx * rgba[ya + xb + ch])
          + ty * ((1 - tx) * rgba[yb + xa + ch] + tx * rgba[yb + xb + ch]);
        out[o + ch] = sample / 255;
      }
    }
  }
  return out;
}

/** face_mesh.to_frame: the model's landmarks (flat, input pixels) in frame pixels (Float64Array, flat x, y, z). */
export function landmarksToFrame(raw, roi, size = INPUT_SIZE, out = new Float64Array(NUM_LANDMARKS * 3)) {
  const {cx, cy, side, c, s} = roi;
  for (let k = 0; k < NUM_LANDMARKS; k++) {
    const u = raw[3 * k] / size - 0.5;
    const v = raw[3 * k + 1] / size - 0.5;
    out[3 * k] = cx + side * (u * c - v * s);
    out[3 * k + 1] = cy + side * (u * s + v * c);
    out[3 * k + 2] = (raw[3 * k + 2] / size) * side;
  }
  return out;
}

/** face_mesh.sigmoid: the face-presence score of the model's logit. */
export function sigmoid(x) {
  return 1 / (1 + Math.exp(-Math.max(-100, Math.min(100, x))));
}

/**
 * face_mesh.face_from_mesh: a BlazeFace-like face {x, y, width, height, score, keypoints} of a mesh, for the
 * expression crop (crop.js cropPlan) on tracked frames, where no detector runs.
 */
export function faceFromMesh(lm, score = 1) {
  const p = (k) => [lm[3 * k], lm[3 * k + 1]];
  const rx = (lm[3 * 33] + lm[3 * 133]) / 2;
  const ry = (lm[3 * 33 + 1] + lm[3 * 133 + 1]) / 2;
  const lx = (lm[3 * 263] + lm[3 * 362]) / 2;
  const ly = (lm[3 * 263 + 1] + lm[3 * 362 + 1]) / 2;
  const {c, s} = turnOf(rx, ry, lx, ly);
  const iod = Math.sqrt((lx - rx) * (lx - rx) + (ly - ry) * (ly - ry));
  const side = BOX_SIDE_IOD * iod;
  const cx = (rx + lx) / 2 - BOX_DOWN_IOD * iod * s;
  const cy = (ry + ly) / 2 + BOX_DOWN_IOD * iod * c;
  const mouth = [(lm[3 * 13] + lm[3 * 14]) / 2, (lm[3 * 13 + 1] + lm[3 * 14 + 1]) / 2];
  return {x: cx - side / 2, y: cy - side / 2, width: side, height: side, score,
    keypoints: [[rx, ry], [lx, ly], p(1), mouth, p(234), p(454)]};
}
