// The live emoji in the keyboard page: camera frame -> face mesh (tracked from the previous frame's mesh,
// BlazeFace only to find the face again) -> expression probabilities of the crop of the mesh's face box, and
// the face's smoothed, calibrated coefficients -> the drawn emoji and a 2-second APNG sticker of it.
// As mobile_demo/emojify.py's process_live and face_mesh.MeshTracker (one face), on the page's twins
// (face_mesh.js, face_geometry.js, live_emoji.js). Everything runs here: no frame leaves the device.
import {encodeApng} from './apng.js';
import {cropRect} from './crop.js';
import {Calibration, CoefficientFilter, MEASURES, coefficients, measure} from './face_geometry.js';
import {INPUT_SIZE, MIN_SCORE, NUM_LANDMARKS, cropInput, faceFromMesh, landmarksToFrame, roiFromFace, roiFromMesh, sigmoid}
  from './face_mesh.js';
import {drawLiveEmoji} from './live_emoji.js';

export const CALIBRATION_SECONDS = 2;
export const NEUTRAL_KEY = 'emotekit.live.neutral';
export const STICKER_SIZE = 128;
export const RECORD_SECONDS = 2;
export const MIN_STICKER_FRAMES = 10;
// The frame rectangle read on a tracked frame: the mesh ROI's and the last expression crop's, this much of the
// ROI's side wider on each side (the face moves between frames; a crop outside it reads its own rectangle).
const GRAB_MARGIN = 0.03;

/**
 * The whole-pixel rectangle {x, y, w, h} of a W x H frame that face_mesh.js cropInput reads for `roi`: every
 * bilinear tap, clamped to the frame as cropInput clamps, so that cropInput on these pixels alone (the ROI
 * moved by x, y) samples the same pixels with the same weights as on the whole frame.
 */
export function meshRect(roi, W, H, size = INPUT_SIZE) {
  const half = (roi.side * (0.5 - 0.5 / size)) * (Math.abs(roi.c) + Math.abs(roi.s));
  const span = (centre, n) => {
    const lo = Math.min(Math.max(Math.floor(centre - half - 0.5), 0), n - 1);
    const hi = Math.min(Math.max(Math.floor(centre + half - 0.5) + 1, 0), n - 1);
    return [lo, hi - lo + 1];
  };
  const [x, w] = span(roi.cx, W);
  const [y, h] = span(roi.cy, H);
  return {x, y, w, h};
}

/** The smallest rectangle holding `a` and `b` (either may be null or empty), grown by `pad` pixels, inside W x H. */
export function unionRect(a, b, pad, W, H) {
  const rs = [a, b].filter((r) => r && r.w > 0 && r.h > 0);
  const x0 = Math.max(0, Math.floor(Math.min(...rs.map((r) => r.x)) - pad));
  const y0 = Math.max(0, Math.floor(Math.min(...rs.map((r) => r.y)) - pad));
  const x1 = Math.min(W, Math.ceil(Math.max(...rs.map((r) => r.x + r.w)) + pad));
  const y1 = Math.min(H, Math.ceil(Math.max(...rs.map((r) => r.y + r.h)) + pad));
  return {x: x0, y: y0, w: x1 - x0, h: y1 - y0};
}

function contains(outer, inner) {
  return inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.w <= outer.x + outer.w && inner.y + inner.h <= outer.y + outer.h;
}

/**
 * One face's mesh and expression per camera frame, on a FacePipeline's detector, classifier, crop contract and
 * frame reader (suggest.js) and the mesh model (runtime.js Runner of face_mesh.js MESH_URL). A tracked frame reads
 * one rectangle of the frame (the mesh ROI from the previous mesh, with the last expression crop's); a frame
 * without a track (or whose track the mesh loses) reads the whole frame once for BlazeFace, the mesh and the crop.
 */
export class LiveTracker {
  constructor(pipeline, mesh) {
    this.pipeline = pipeline;
    this.mesh = mesh;
    this.input = new Float32Array(INPUT_SIZE * INPUT_SIZE * 3);
    this.landmarks = null; // the previous frame's mesh (frame pixels): the track
    this.lastCrop = null; // the previous frame's expression crop rectangle
    this.tracks = 0; // tracks started (a new one: the geometry's filter starts again)
  }

  reset() {
    this.landmarks = null;
    this.lastCrop = null;
    this.pipeline.reset();
  }

  /** The mesh of `roi` from RGBA pixels of the frame's rectangle `rect`: {landmarks, score, roi}; ms gains its times. */
  async runMesh(rgba, rect, roi, ms) {
    let t = performance.now();
    cropInput(rgba, rect.w, rect.h, {...roi, cx: roi.cx - rect.x, cy: roi.cy - rect.y}, INPUT_SIZE, this.input);
    ms.mesh_crop += performance.now() - t;
    t = performance.now();
    const outs = await this.mesh.run(this.input);
    ms.mesh_model += performance.now() - t;
    t = performance.now();
    const raw = outs.find((o) => o.data.length === NUM_LANDMARKS * 3);
    const logit = outs.find((o) => o.data.length === 1);
    if (!raw || !logit) throw new Error('the face mesh model gives no 468 landmarks and score');
    const out = {landmarks: landmarksToFrame(raw.data, roi), score: sigmoid(logit.data[0]), roi};
    ms.mesh_crop += performance.now() - t;
    return out;
  }

  /**
   * One frame: {face, box, crop, probs, landmarks, score, detected, newTrack, ms} (face null when none is in view).
   * ms: grab, letterbox, detector, decode (BlazeFace), mesh_crop, mesh_model, crop, classifier, and the stages
   * track (reading the frame, finding the face: grab + the detector's three), mesh (mesh_crop + mesh_model),
   * classify (crop + classifier), detect (everything before the expression crop, as Stats shows it), total.
   */
  async process(source, width, height) {
    const t0 = performance.now();
    const p = this.pipeline;
    const ms = {grab: 0, letterbox: 0, detector: 0, decode: 0, mesh_crop: 0, mesh_model: 0, crop: 0, classifier: 0};
    let found = null;
    let rgba = null;
    let rect = null;
    let detected = false;
    let newTrack = false;
    if (this.landmarks) {
      const roi = roiFromMesh(this.landmarks);
      rect = unionRect(meshRect(roi, width, height), this.lastCrop, GRAB_MARGIN * roi.side, width, height);
      const t = performance.now();
      rgba = await p.grab(source, rect);
      ms.grab += performance.now() - t;
      found = await this.runMesh(rgba, rect, roi, ms);
      if (found.score < MIN_SCORE) found = null;
    }
    if (!found && p.detector) {
      detected = true;
      rect = {x: 0, y: 0, w: width, h: height};
      const t = performance.now();
      rgba = await p.grab(source, rect);
      ms.grab += performance.now() - t;
      const faces = await p.detectLive(rgba, width, height, ms); // without a track: the whole frame and the tiles in turn
      if (faces.length) {
        found = await this.runMesh(rgba, rect, roiFromFace(faces[0]), ms);
        if (found.score < MIN_SCORE) found = null;
        else {
          newTrack = true;
          this.tracks += 1;
        }
      }
    }
    this.landmarks = found ? found.landmarks : null;
    const t1 = performance.now();
    const stages = (total) => ({...ms, track: ms.grab + ms.letterbox + ms.detector + ms.decode, mesh: ms.mesh_crop + ms.mesh_model,
      classify: ms.crop + ms.classifier, detect: t1 - t0, total});
    if (!found) {
      this.lastCrop = null;
      return {face: null, box: null, crop: null, probs: null, landmarks: null, score: 0, detected, newTrack, ms: stages(t1 - t0)};
    }
    const face = faceFromMesh(found.landmarks, found.score);
    const box = p.cropBox(face, width, height);
    const origin = cropRect(p.contract, box, width, height);
    let t = performance.now();
    let pixels;
    let read = origin;
    if (!origin.w || !origin.h) pixels = new Uint8ClampedArray(0);
    else if (contains(rect, origin)) { // the crop reads its rectangle out of the one the mesh read
      pixels = rgba;
      read = rect;
    } else {
      // The face moved past the rectangle read: the crop's own, as RGBA too, so that every frame's grey is the same.
      pixels = await p.grab(source, origin);
      ms.grab += performance.now() - t;
      t = performance.now();
    }
    const crop = p.crop(pixels, width, height, box, read);
    ms.crop = performance.now() - t;
    this.lastCrop = origin;
    t = performance.now();
    const probs = await p.classify(crop);
    ms.classifier = performance.now() - t;
    return {face, box, crop, probs, landmarks: found.landmarks, score: found.score, detected, newTrack,
      ms: stages(performance.now() - t0)};
  }
}

/** A stored neutral face (NEUTRAL_KEY: every MEASURES value a finite number), else null. */
export function loadNeutral(storage) {
  try {
    const n = JSON.parse(storage?.getItem(NEUTRAL_KEY) || 'null');
    return n && MEASURES.every((k) => Number.isFinite(n[k])) ? n : null;
  } catch {
    return null;
  }
}

/**
 * The face's coefficients frame by frame: relative to the user's neutral face, smoothed (face_geometry.js
 * CoefficientFilter). start() calibrates anew (the median of CALIBRATION_SECONDS of face frames, kept in
 * `storage`, localStorage: it stays on the device); meanwhile the stored neutral face, or the default one, serves.
 */
export class LiveFace {
  constructor(storage = globalThis.localStorage) {
    this.storage = storage;
    this.neutral = loadNeutral(storage);
    this.calibration = null;
    this.filter = new CoefficientFilter();
    this.coeffs = null;
    this.measures = null;
  }

  get calibrating() {
    return this.calibration !== null;
  }

  start() {
    this.calibration = new Calibration(CALIBRATION_SECONDS);
    this.filter.reset();
    this.coeffs = null;
  }

  /** A new track (another face, or the same found again): the filter starts again. */
  restart() {
    this.filter.reset();
  }

  /** The smoothed coefficients of one frame's mesh (flat landmarks) at time `t` (seconds). */
  update(landmarks, t) {
    const m = measure(landmarks);
    this.measures = m;
    if (this.calibration && this.calibration.add(m, t)) {
      this.neutral = this.calibration.neutral();
      this.calibration = null;
      this.filter.reset();
      try {
        this.storage?.setItem(NEUTRAL_KEY, JSON.stringify(this.neutral));
      } catch {
        // storage full or refused (a private window): the neutral face lasts this visit
      }
    }
    this.coeffs = this.filter.apply(coefficients(m, this.neutral), t);
    return this.coeffs;
  }
}

/**
 * A sticker of the live emoji: the frames drawn during RECORD_SECONDS (at least MIN_STICKER_FRAMES) on a
 * transparent STICKER_SIZE square, mirrored as the page shows them, then an APNG (apng.js) with each frame's own delay.
 */
export class Recorder {
  constructor(size = STICKER_SIZE, seconds = RECORD_SECONDS, minFrames = MIN_STICKER_FRAMES) {
    this.size = size;
    this.seconds = seconds;
    this.minFrames = minFrames;
    this.ctx = new OffscreenCanvas(size, size).getContext('2d', {willReadFrequently: true});
    this.frames = null;
    this.t0 = 0;
  }

  get recording() {
    return this.frames !== null;
  }

  start(now) {
    this.frames = [];
    this.t0 = now;
  }

  cancel() {
    this.frames = null;
  }

  /** Draws and keeps one frame of `coeffs` at `now` (ms); true once the recording is long enough. */
  add(coeffs, now) {
    const {ctx, size} = this;
    ctx.clearRect(0, 0, size, size);
    // Mirrored, as the page shows it beside the mirrored camera preview: the sticker is what the user saw.
    ctx.setTransform(-1, 0, 0, 1, size, 0);
    drawLiveEmoji(ctx, coeffs, size);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    const last = this.frames.at(-1);
    if (last) last.delayMs = now - last.t;
    this.frames.push({rgba: ctx.getImageData(0, 0, size, size).data, t: now, delayMs: 0});
    return now - this.t0 >= this.seconds * 1000 && this.frames.length >= this.minFrames;
  }

  /** The APNG Blob of the frames kept (the last one shown as long as the mean frame). */
  async finish() {
    const frames = this.frames;
    this.frames = null;
    if (frames.length > 1) frames.at(-1).delayMs = (frames.at(-1).t - frames[0].t) / (frames.length - 1);
    else if (frames.length) frames[0].delayMs = 100;
    return encodeApng(frames, this.size, this.size);
  }
}
